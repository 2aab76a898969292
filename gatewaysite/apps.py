from django.apps import AppConfig


class GatewaySiteConfig(AppConfig):
    name = "gatewaysite"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from gatewaysite import checks  # noqa: F401 - registers the system checks
