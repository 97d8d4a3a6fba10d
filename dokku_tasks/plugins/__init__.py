"""The built-in plugins, registered directly by :func:`dokku_tasks.manager.get_plugin_manager`."""
