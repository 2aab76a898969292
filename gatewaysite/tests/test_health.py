import requests

from testing.helpers import free_port, redis_test_url

REDIS_URL = redis_test_url()


def test_healthz_and_readyz_answer_200_with_the_database_up(live_gateway, transactional_db):
    assert requests.get(live_gateway.url + "/healthz", timeout=5).status_code == 200
    ready = requests.get(live_gateway.url + "/readyz", timeout=5)
    assert ready.status_code == 200
    body = ready.json()
    assert (body["status"], body["database"]) == ("ok", "ok")
    assert 0 <= body["database_ms"] < 1500
    assert "counters" not in body  # without REDIS_URL the counters are in the database


def test_readyz_reports_redis_with_its_latency_and_says_degraded_without_it(start_gateway):
    with_redis = start_gateway(workers=1, env={"REDIS_URL": REDIS_URL})
    gone = start_gateway(workers=1, env={"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        body = requests.get(with_redis.url + "/readyz", timeout=5).json()
        assert (body["status"], body["database"], body["counters"]) == ("ok", "ok", "ok")
        assert 0 <= body["counters_ms"] < 1500 and 0 <= body["database_ms"] < 1500
        # Redis away stops only the keys with limits: the instance still serves.
        ready = requests.get(gone.url + "/readyz", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert ready.json()["counters"] == "unreachable"
    finally:
        with_redis.stop()
        gone.stop()


def test_readyz_is_503_when_the_database_is_unreachable(start_gateway):
    # A PostgreSQL URL on a port where nothing listens: the process serves, the database doesn't.
    gateway = start_gateway(
        workers=1, env={"DATABASE_URL": f"postgres://postgres@127.0.0.1:{free_port()}/nowhere"}
    )
    try:
        assert requests.get(gateway.url + "/healthz", timeout=5).status_code == 200
        ready = requests.get(gateway.url + "/readyz", timeout=15)
        assert ready.status_code == 503
        assert ready.headers["Content-Type"].startswith("application/json")
    finally:
        gateway.stop(quick=True)


def test_api_paths_never_answer_html(live_gateway, transactional_db):
    bad_host = requests.get(
        live_gateway.url + "/v1/models", headers={"Host": "evil.example"}, timeout=5
    )
    assert bad_host.status_code == 400
    assert bad_host.json()["error"]["code"] == "invalid_request"
    from logs.models import RequestLog

    row = RequestLog.objects.get(request_id=bad_host.headers["X-Gateway-Request-ID"])
    assert row.status_code == 400
    bare = requests.get(live_gateway.url + "/v1", allow_redirects=False, timeout=5)
    assert bare.status_code == 400
    assert bare.headers["Content-Type"].startswith("application/json")
    admin_bad_host = requests.get(
        live_gateway.url + "/admin/keys", headers={"Host": "evil.example"}, timeout=5
    )
    assert admin_bad_host.status_code == 400
    assert admin_bad_host.json()["error"] == "invalid_request"


def test_admin_without_a_slash_is_a_json_404(live_gateway, transactional_db):
    response = requests.get(live_gateway.url + "/admin", allow_redirects=False, timeout=5)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
