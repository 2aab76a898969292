"""Fixtures for tests that talk to the live gateway as a client would: the fake provider,
routes (a key and its upstream) through the session's gunicorn, and SDK clients.

A pytest plugin, loaded by the root conftest, so every app's tests (proxy, limits,
gatewaysite) use the same fixtures without importing them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import anthropic
import openai
import pytest

from testing.fake_provider import FakeProvider

SDK_TIMEOUT = 15.0


@pytest.fixture(scope="session")
def fake_provider_server():
    fp = FakeProvider().start()
    yield fp
    fp.stop()


@pytest.fixture
def provider(fake_provider_server) -> FakeProvider:
    fake_provider_server.clear()
    return fake_provider_server


@pytest.fixture
def gateway(live_gateway, transactional_db):
    """The session's gunicorn (2 gevent workers); the test's data is committed for it."""
    return live_gateway


@dataclass
class Route:
    """A key and the upstream it may use, on a running gateway."""

    gateway_url: str
    key: object
    raw_key: str
    upstream: object
    secret: str

    def openai(self, **options) -> openai.OpenAI:
        options.setdefault("api_key", self.raw_key)
        return openai.OpenAI(
            base_url=f"{self.gateway_url}/v1",
            max_retries=0,
            timeout=options.pop("timeout", SDK_TIMEOUT),
            **options,
        )

    def anthropic(self, **options) -> anthropic.Anthropic:
        options.setdefault("api_key", self.raw_key)
        return anthropic.Anthropic(
            base_url=self.gateway_url,
            max_retries=0,
            timeout=options.pop("timeout", SDK_TIMEOUT),
            **options,
        )


@pytest.fixture
def make_route(gateway, provider, make_upstream, make_key):
    """make_route(provider="openai", **upstream_fields) -> Route to the fake provider."""

    def make(*, gateway_url: str | None = None, **fields) -> Route:
        fields.setdefault("base_url", provider.base_url)
        secret = fields.setdefault("api_key", f"sk-upstream-{secrets.token_hex(12)}")
        upstream = make_upstream(**fields)
        key, raw = make_key(upstreams=[upstream])
        return Route(gateway_url or gateway.url, key, raw, upstream, secret)

    return make


@pytest.fixture
def openai_route(make_route) -> Route:
    return make_route(provider="openai", timeout=5)


@pytest.fixture
def anthropic_route(make_route) -> Route:
    return make_route(provider="anthropic", timeout=5)
