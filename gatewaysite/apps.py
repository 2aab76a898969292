from django.apps import AppConfig


class GatewaySiteConfig(AppConfig):
    name = "gatewaysite"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from django.contrib import admin

        from gatewaysite import checks  # noqa: F401 - registers the system checks
        from gatewaysite.login import ThrottledAdminLoginForm

        admin.site.login_form = ThrottledAdminLoginForm
