from django.apps import AppConfig


class OperationsConfig(AppConfig):
    """Health probes and views, the admin health page, /metrics, maintenance mode, ``healthcheck``."""

    name = "operations"

    def ready(self):
        # Link the health page from the admin index, unless something else already chose the
        # index template. Here, once the apps are loaded, rather than as a side effect of
        # importing the views (which only happens when a URLconf does).
        from django.contrib import admin

        if admin.site.index_template is None:
            admin.site.index_template = "operations/admin_index.html"
