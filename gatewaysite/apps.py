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
        # Routing's failed attempts and cooling changes, counted in /metrics.
        from gatewaysite import metrics
        from upstreams import health

        health.attempt_failed.connect(metrics.on_attempt_failed, dispatch_uid="metrics_attempts")
        health.cooling_changed.connect(metrics.on_cooling_changed, dispatch_uid="metrics_cooling")


class GatewayAdminConfig(admin_apps.AdminConfig):
    """Django's admin app with the gateway's own site as `admin.site`."""

    default = False  # named in INSTALLED_APPS; GatewaySiteConfig is this module's default

    default_site = "gatewaysite.admin_site.GatewayAdminSite"
