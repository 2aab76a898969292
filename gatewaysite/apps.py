from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class GatewaySiteConfig(AppConfig):
    name = "gatewaysite"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from django.core.signals import request_started

        from gatewaysite import checks  # noqa: F401 - registers the system checks
        from gatewaysite.logfilters import request_id_clear

        request_started.connect(request_id_clear, dispatch_uid="gateway_request_id_clear")


class GatewayAdminConfig(admin_apps.AdminConfig):
    """Django's admin app with the gateway's own site as `admin.site`."""

    default = False  # named in INSTALLED_APPS; GatewaySiteConfig is this module's default

    default_site = "gatewaysite.admin_site.GatewayAdminSite"
