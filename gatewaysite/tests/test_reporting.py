"""Even with DEBUG on, error pages never show a secret held in settings."""

from django.views.debug import get_default_exception_reporter_filter


def test_debug_pages_hide_urls_with_passwords_and_upstream_secrets(settings):
    settings.UPSTREAMS = '[{"api_key": "sk-upstream-in-settings-0001"}]'
    settings.DATABASE_URL = "postgres://gw:db-password-0002@db:5432/gw"
    settings.REDIS_URL = "redis://:redis-password-0003@cache:6379/0"
    shown = repr(get_default_exception_reporter_filter().get_safe_settings())
    for secret in ("sk-upstream-in-settings-0001", "db-password-0002", "redis-password-0003"):
        assert secret not in shown
    assert settings.ENCRYPTION_KEY not in shown
    assert settings.ADMIN_TOKEN not in shown
