"""The proxy's live fixtures (fake provider, routes through a real gunicorn), for the
limits tests, which are about what a client of the proxy sees."""

from proxy.tests.conftest import (  # noqa: F401 - fixtures
    anthropic_route,
    fake_provider_server,
    gateway,
    make_route,
    openai_route,
    provider,
)
