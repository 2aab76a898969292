"""POST /admin/upstreams/{id}/test and the admin site's Test button (one GET /models with
the upstream's secret, never tokens), and the routing fields and health on both surfaces."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse

from gatewaysite.tests.admin_api import assert_error
from testing.fake_provider import FakeProvider
from testing.helpers import free_port
from upstreams import health
from upstreams.models import Upstream

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def fake():
    fp = FakeProvider(models=("m-1", "m-2", "m-3")).start()
    yield fp
    fp.stop()


def test_test_calls_models_with_the_secret_and_reports_status_and_latency(api, fake, make_upstream):
    fake.clear()
    upstream = make_upstream(base_url=fake.base_url, api_key="sk-probe-secret-1")
    response = api.post(f"/admin/upstreams/{upstream.pk}/test")
    assert response.status_code == 200
    got = response.json()
    assert (got["ok"], got["status"], got["message"]) == (True, 200, "3 models listed")
    assert isinstance(got["latency_ms"], int) and got["latency_ms"] >= 0
    (received,) = fake.requests
    assert (received.method, received.path) == ("GET", "/v1/models")
    assert received.headers["authorization"] == "Bearer sk-probe-secret-1"
    assert "sk-probe-secret-1" not in response.content.decode()


def test_test_reports_an_error_status_or_no_answer_as_200(api, make_upstream):
    with FakeProvider(defaults={"x-fake-status": "401"}) as failing:
        upstream = make_upstream(provider="anthropic", base_url=failing.base_url)
        got = api.post(f"/admin/upstreams/{upstream.pk}/test").json()
        assert (got["ok"], got["status"]) == (False, 401)
        assert failing.requests[0].headers["anthropic-version"]
    gone = make_upstream(base_url=f"http://127.0.0.1:{free_port()}/v1")
    got = api.post(f"/admin/upstreams/{gone.pk}/test").json()
    assert (got["ok"], got["status"]) == (False, 0)
    assert "ConnectionRefusedError" in got["message"]


def test_test_of_an_unknown_upstream_is_404(api):
    assert_error(
        api.post("/admin/upstreams/7a9ce2f4-3f1d-4c8e-9a59-5d1b1f0e8a11/test"), 404, "not_found"
    )


def test_routing_fields_round_trip_and_are_validated(api):
    body = {
        "name": "routed",
        "provider": "azure",
        "base_url": "https://res.openai.azure.com/openai/v1",
        "api_key": "sk-azure-secret-0001",
        "models": ["gpt-4o", "gpt-4.1*", "gpt-4o"],
        "aliases": {"fast": "gpt-4o-mini"},
        "priority": -2,
        "weight": 3,
    }
    got = api.post("/admin/upstreams", body, format="json").json()
    assert (got["provider"], got["models"], got["aliases"], got["priority"], got["weight"]) == (
        "azure",
        ["gpt-4o", "gpt-4.1*"],
        {"fast": "gpt-4o-mini"},
        -2,
        3,
    )
    assert got["health"] == {
        "state": "ok",
        "consecutive_failures": 0,
        "cooling_until": None,
        "last_failure": None,
    }
    for bad in (
        {"weight": 0},
        {"priority": "1"},
        {"models": "gpt-4o"},
        {"models": [""]},
        {"aliases": ["fast"]},
        {"aliases": {"fast": ""}},
        {"aliases": {"": "gpt-4o"}},
        {"aliases": {"fa\u0000st": "gpt-4o"}},  # a 500 on PostgreSQL before
        {"aliases": {"fa\nst": "gpt-4o"}},
    ):
        response = api.patch(f"/admin/upstreams/{got['id']}", bad, format="json")
        assert_error(response, 400, "validation_error")


def test_health_shows_failures_and_cooling(api, make_upstream, settings):
    settings.UPSTREAM_FAILURES_TO_COOL = 2
    upstream = make_upstream()
    health.attempt_failure_record(
        upstream_id=upstream.pk, name=upstream.name, reason="503", counts=True
    )
    got = api.get(f"/admin/upstreams/{upstream.pk}").json()["health"]
    assert (got["state"], got["consecutive_failures"], got["last_failure"]["reason"]) == (
        "ok",
        1,
        "503",
    )
    changes = []
    health.cooling_changed.connect(lambda **kw: changes.append(kw["cooling"]), weak=False)
    try:
        health.attempt_failure_record(
            upstream_id=upstream.pk, name=upstream.name, reason="connection refused", counts=True
        )
        got = api.get("/admin/upstreams").json()["items"][0]["health"]
        assert (got["state"], got["consecutive_failures"]) == ("cooling", 2)
        assert got["cooling_until"]
        assert health.upstream_health_all()[upstream.pk]["state"] == "cooling"
        health.attempt_success_record(upstream_id=upstream.pk, name=upstream.name)
        got = api.get(f"/admin/upstreams/{upstream.pk}").json()["health"]
        assert (got["state"], got["consecutive_failures"]) == ("ok", 0)
    finally:
        health.cooling_changed.receivers.clear()
    assert changes == [True, False]


def test_the_admin_sites_test_button(admin_client, fake, make_upstream, plain_static_storage):
    upstream = make_upstream(base_url=fake.base_url)
    change = reverse("admin:upstreams_upstream_change", args=[upstream.pk])
    page = admin_client.get(change).content.decode()
    test_url = reverse("admin:upstreams_upstream_test", args=[upstream.pk])
    assert f'action="{test_url}"' in page and ">Test</button>" in page
    assert admin_client.get(test_url).status_code == 405  # an outside call only on POST
    response = admin_client.post(test_url, follow=True)
    assert response.redirect_chain[-1][0] == change
    shown = [str(m) for m in response.context["messages"]]
    assert len(shown) == 1 and "HTTP 200 in" in shown[0] and "3 models listed" in shown[0]


def test_upstreams_import_takes_the_routing_fields(settings):
    settings.UPSTREAMS = json.dumps(
        [
            {
                "name": "azure-eu",
                "provider": "azure",
                "base_url": "https://res.openai.azure.com/openai/v1",
                "api_key": "sk-import-azure-3333",
                "models": ["gpt-4o*"],
                "aliases": {"fast": "gpt-4o-mini"},
                "priority": 1,
                "weight": 2,
                "inject_stream_usage": False,
            }
        ]
    )
    call_command("import_upstreams", stdout=io.StringIO())
    got = Upstream.objects.get(name="azure-eu")
    assert (got.provider, got.models, got.aliases, got.priority, got.weight) == (
        "azure",
        ["gpt-4o*"],
        {"fast": "gpt-4o-mini"},
        1,
        2,
    )
    assert got.inject_stream_usage is False
