"""System checks for setups that start but are risky (run by `manage.py check` and at boot)."""

from django.conf import settings
from django.core.checks import Tags, Warning, register

MIN_ADMIN_TOKEN_LENGTH = 24


@register(Tags.security, deploy=False)
def admin_token_check(app_configs, **kwargs):
    token = settings.ADMIN_TOKEN
    if not token:
        return [
            Warning(
                "ADMIN_TOKEN is not set: the admin API refuses every request.",
                hint='Generate one: python -c "import secrets; print(secrets.token_urlsafe(32))"',
                id="gateway.W001",
            )
        ]
    if len(token) < MIN_ADMIN_TOKEN_LENGTH:
        return [
            Warning(
                f"ADMIN_TOKEN is shorter than {MIN_ADMIN_TOKEN_LENGTH} characters.",
                hint="Use a long random token (secrets.token_urlsafe(32)).",
                id="gateway.W002",
            )
        ]
    return []


@register(Tags.security, deploy=False)
def debug_check(app_configs, **kwargs):
    if settings.DEBUG:
        return [
            Warning(
                "DEBUG is on: error pages show settings and code. Never in production.",
                id="gateway.W003",
            )
        ]
    return []
