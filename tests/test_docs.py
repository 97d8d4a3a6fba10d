"""Meta-tests that keep docs/ in step with the code.

- every hook in :mod:`dokku_tasks.hookspecs` has a docstring and a ``## `name` `` section in
  docs/hooks.md that names its arguments and says whether it is firstresult, and every such
  section names a hook that exists;
- every ``dokku-tasks`` command (and each of its options) is documented in docs/cli.md;
- every relative link in docs/ leads to a file that exists, and to a heading that exists;
- every Python block in docs/ compiles; every example (a ```python block) passes
  ``mypy --strict``, and the tests shown in docs/writing-plugins.md run.  A ```py block is a
  signature listing (a hook spec, a protocol), skipped on purpose, and may hold nothing else.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from dokku_tasks import hookspecs
from dokku_tasks.cli import cli

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
PAGES = sorted(DOCS.glob("*.md"))

#: The heading that starts a hook's section in docs/hooks.md: ``## `hook_name` ``.
HOOK_HEADING = re.compile(r"^## `([A-Za-z_][A-Za-z0-9_]*)`\s*$")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")
#: The first line of a block that is (part of) a file of its own: ``# file: PATH.py``, then
#: optionally a remark.
FILE_MARKER = re.compile(r"^# file: (\S+\.py)(?:\s.*)?$")
#: The fence of a block that only restates an API (a hook spec, a protocol): Python, but no
#: example, so neither type-checked nor run.  Examples are ```python blocks.
SIGNATURE_LANGUAGE = "py"


# -- helpers -----------------------------------------------------------------------------------


def hook_specs() -> dict[str, Callable[..., Any]]:
    """Every hook specification, by name, as pluggy sees them."""
    marker = f"{hookspecs.PROJECT_NAME}_spec"
    return {
        name: function
        for name, function in vars(hookspecs).items()
        if callable(function) and getattr(function, marker, None) is not None
    }


def spec_options(function: Callable[..., Any]) -> dict[str, Any]:
    options: dict[str, Any] = getattr(function, f"{hookspecs.PROJECT_NAME}_spec")
    return options


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` for every line outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def code_blocks(text: str, language: str) -> list[str]:
    """The contents of every fenced block of ``language``, in order."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if current is None:
            if stripped in (f"```{language}", f"~~~{language}"):
                current = []
        elif stripped in ("```", "~~~"):
            blocks.append("\n".join(current) + "\n")
            current = None
        else:
            current.append(line)
    assert current is None, f"unclosed ```{language} block"
    return blocks


def example_files(page: Path) -> dict[str, str]:
    """The ```python blocks of ``page`` as the files they make, by relative path: a block whose
    first line is ``# file: PATH.py`` is (part of) PATH.py, in page order; any other block is a
    module of its own."""
    files: dict[str, str] = {}
    slug = page.stem.replace("-", "_")
    for number, block in enumerate(code_blocks(page.read_text(encoding="utf-8"), "python"), 1):
        match = FILE_MARKER.match(block.splitlines()[0]) if block.strip() else None
        name = match.group(1) if match else f"{slug}_example_{number}.py"
        files[name] = files.get(name, "") + block
    return files


def sections(text: str) -> dict[str, str]:
    """Each heading's text (as written) mapped to the body up to the next heading of its level
    or higher."""
    lines = text.splitlines()
    headings = [
        (number - 1, len(match.group(1)), match.group(2))
        for number, line in prose_lines(text)
        if (match := HEADING.match(line))
    ]
    result = {}
    for index, (start, level, title) in enumerate(headings):
        end = len(lines)
        for later_start, later_level, _ in headings[index + 1 :]:
            if later_level <= level:
                end = later_start
                break
        result[title] = "\n".join(lines[start + 1 : end])
    return result


def github_anchor(title: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a page, with GitHub's ``-1``, ``-2`` suffixes for repeats."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match is None:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def relative_links(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, target)`` for every link outside code that is not a URL."""
    for number, line in prose_lines(path.read_text(encoding="utf-8")):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            target = match.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
                continue
            yield number, target


# -- hooks -------------------------------------------------------------------------------------


HOOKS = hook_specs()
HOOKS_PAGE = (DOCS / "hooks.md").read_text(encoding="utf-8")
HOOK_SECTIONS = {
    match.group(1): body
    for title, body in sections(HOOKS_PAGE).items()
    if (match := HOOK_HEADING.match(f"## {title}"))
}


def test_hookspecs_are_found() -> None:
    assert {"pre_deploy", "release", "post_deploy", "report"} <= set(HOOKS)


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_a_docstring(name: str) -> None:
    doc = inspect.getdoc(HOOKS[name])
    assert doc, f"hook {name} in dokku_tasks/hookspecs.py has no docstring"
    assert doc.startswith("Called"), f"the docstring of {name} should say when it is called"


@pytest.mark.parametrize("name", sorted(HOOKS))
def test_hook_has_a_section_in_the_reference(name: str) -> None:
    assert name in HOOK_SECTIONS, f"docs/hooks.md has no '## `{name}`' section"


@pytest.mark.parametrize("name", sorted(HOOK_SECTIONS))
def test_documented_hook_exists(name: str) -> None:
    assert name in HOOKS, f"docs/hooks.md documents '{name}', which dokku_tasks.hookspecs lacks"


@pytest.mark.parametrize("name", sorted(set(HOOKS) & set(HOOK_SECTIONS)))
def test_hook_section_matches_the_spec(name: str) -> None:
    body = HOOK_SECTIONS[name]
    for argument in inspect.signature(HOOKS[name]).parameters:
        assert f"`{argument}`" in body, f"docs/hooks.md: {name} does not describe `{argument}`"
    firstresult = "yes" if spec_options(HOOKS[name]).get("firstresult") else "no"
    assert f"**firstresult: {firstresult}.**" in body, (
        f"docs/hooks.md: {name} should say '**firstresult: {firstresult}.**'"
    )
    listings = "".join(code_blocks(body, SIGNATURE_LANGUAGE))
    signature = re.search(rf"def {name}\((.*?)\)\s*->", listings, re.DOTALL)
    assert signature is not None, f"docs/hooks.md: {name} shows no signature in a ```py block"
    shown = [part.split(":")[0].strip() for part in signature.group(1).split(",") if part.strip()]
    assert shown == list(inspect.signature(HOOKS[name]).parameters), (
        f"docs/hooks.md: the signature shown for {name} has other arguments than the spec"
    )


# -- the CLI -----------------------------------------------------------------------------------


CLI_PAGE = (DOCS / "cli.md").read_text(encoding="utf-8")
CLI_SECTIONS = {title.strip("`"): body for title, body in sections(CLI_PAGE).items()}


def _all_commands() -> dict[str, click.Command]:
    """The core's commands and those the built-in plugins bring (NS:set, NS:report)."""
    from dokku_tasks.hooks import Hooks
    from dokku_tasks.manager import get_plugin_manager

    ctx = click.Context(cli)
    # The built-in plugins only: an installed example plugin documents its own commands.
    ctx.meta["dokku_tasks.plugins"] = Hooks(get_plugin_manager(entrypoints=False))
    found = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    return {name: command for name, command in found.items() if command is not None}


COMMANDS = _all_commands()


def test_cli_commands_are_found() -> None:
    assert {"deploy", "plugins", "app-json:report", "registry:set"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_cli_command_is_documented(name: str) -> None:
    assert name in CLI_SECTIONS, f"docs/cli.md has no '### `{name}`' (or '## `{name}`') section"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_cli_options_are_documented(name: str) -> None:
    body = CLI_SECTIONS.get(name, "")
    for param in COMMANDS[name].params:
        if not isinstance(param, click.Option) or param.name == "help":
            continue
        for opt in param.opts:
            assert f"`{opt}" in body, f"docs/cli.md: {name} does not document {opt}"


def test_global_options_are_documented() -> None:
    for param in cli.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert any(f"`{opt}" in CLI_PAGE for opt in param.opts), param.opts


# -- links -------------------------------------------------------------------------------------


def test_docs_pages_exist() -> None:
    names = {page.name for page in PAGES}
    assert {
        "index.md",
        "cli.md",
        "hooks.md",
        "writing-plugins.md",
        "differences.md",
        "deploy.md",
    } <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for number, target in relative_links(page):
        path_part, _, fragment = target.partition("#")
        destination = (page.parent / path_part).resolve() if path_part else page
        if not destination.exists():
            broken.append(f"{page.name}:{number}: {target} (no such file)")
        elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
            broken.append(f"{page.name}:{number}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_index_links_every_page() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    for page in PAGES:
        if page.name != "index.md":
            assert f"]({page.name}" in index, f"docs/index.md does not link {page.name}"


# -- examples ----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_python_blocks_compile(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for language in ("python", SIGNATURE_LANGUAGE):
        for number, block in enumerate(code_blocks(text, language), 1):
            compile(block, f"{page.name}, {language} block {number}", "exec")


def _is_ellipsis(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and (node.value.value is Ellipsis)
    )


def _only_signatures(node: ast.AST) -> bool:
    """Whether ``node`` declares and does nothing: a function whose body is ``...`` (after an
    optional docstring), a bare annotation, a class of those (and docstrings)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        return len(body) == 1 and _is_ellipsis(body[0])
    if isinstance(node, ast.ClassDef):
        body = node.body[1:] if ast.get_docstring(node) is not None else node.body
        return all(_only_signatures(statement) for statement in body)
    if isinstance(node, ast.AnnAssign):
        return node.value is None
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_signature_listings_hold_no_code(page: Path) -> None:
    """A ```py block is skipped by the example tests on purpose, so it may only restate an API;
    anything that does something is an example, in a ```python block."""
    text = page.read_text(encoding="utf-8")
    for number, block in enumerate(code_blocks(text, SIGNATURE_LANGUAGE), 1):
        statements = ast.parse(block).body
        assert statements and all(_only_signatures(node) for node in statements), (
            f"{page.name}, py block {number} is more than signatures: make it a ```python example"
        )


def test_writing_plugins_examples_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``# file: NAME.py`` blocks of writing-plugins.md are written out, and the test
    functions of its test module are run, as pytest would run them."""
    monkeypatch.delenv("DOKKU_TASKS_DISABLE_PLUGINS", raising=False)
    files = example_files(DOCS / "writing-plugins.md")
    assert any(name.startswith("test_") for name in files), "no test module in the examples"
    source = tmp_path / "examples"
    source.mkdir()
    for name, block in files.items():
        (source / name).write_text(block, encoding="utf-8")

    modules = [name.removesuffix(".py") for name in files]
    monkeypatch.syspath_prepend(str(source))
    ran = []
    try:
        for module_name in modules:
            if not module_name.startswith("test_"):
                continue
            module = importlib.import_module(module_name)
            for name, function in vars(module).items():
                if not (name.startswith("test_") and inspect.isfunction(function)):
                    continue
                work = tmp_path / name
                work.mkdir()
                arguments = (
                    {"tmp_path": work}
                    if "tmp_path" in inspect.signature(function).parameters
                    else {}
                )
                function(**arguments)
                ran.append(name)
    finally:
        for module_name in modules:
            sys.modules.pop(module_name, None)
    assert len(ran) >= 3, ran


def test_python_examples_pass_mypy_strict(tmp_path: Path) -> None:
    """Every example in docs/ type-checks as a user's code would: one directory a page, holding
    the page's files, all checked in one ``mypy --strict`` run."""
    pages = [page for page in PAGES if example_files(page)]
    assert {"library.md", "writing-plugins.md", "kubernetes.md"} <= {page.name for page in pages}
    roots = []
    for page in pages:
        root = tmp_path / page.stem
        for name, source in example_files(page).items():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_text(source, encoding="utf-8")
        roots.append(root)
    # The plugins that ship with dokku-tasks, for examples that import one; their editable
    # installs use an import hook, which mypy cannot follow.
    plugins = sorted(path for path in (REPO / "plugins").iterdir() if path.is_dir())
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--explicit-package-bases",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            *map(str, roots),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=REPO,
        env={**os.environ, "MYPYPATH": os.pathsep.join(map(str, [*roots, *plugins]))},
    )
    assert done.returncode == 0, done.stdout + done.stderr
