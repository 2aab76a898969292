"""The operator console in a real headless Chromium against gunicorn (DEBUG off, static
files collected): every page at 1366 and 1920 px wide, with no horizontal scrolling and
no console errors, and a screenshot of each written as a test artifact
(TEST_ARTIFACTS_DIR, default data/test-artifacts/console).
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from gatewaysite.tests.browser import ROOT, chromium_page, create_operator, log_in

pytestmark = pytest.mark.browser

WIDTHS = (1366, 1920)
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS_DIR", ROOT / "data" / "test-artifacts")) / "console"


@pytest.fixture(scope="module")
def console_gateway(start_gateway, collected_static):
    return start_gateway(workers=1, env={"STATIC_ROOT": str(collected_static), "DEBUG": "false"})


@pytest.fixture
def fresh_gateway(start_gateway, collected_static):
    """A gunicorn of its own, for a test that writes through the admin: the flush between
    tests gives content types new ids, which a worker that already served caches stale."""
    return start_gateway(workers=1, env={"STATIC_ROOT": str(collected_static), "DEBUG": "false"})


def _seed(make_upstream, make_key) -> dict:
    """Two upstreams, a rotated key with a budget, and a day of varied request logs."""
    from keys.services import key_rotate
    from limits import windows
    from limits.models import Spend
    from limits.services import limits_set
    from logs.models import RequestLog

    openai = make_upstream(name="openai-main", provider="openai")
    claude = make_upstream(name="anthropic-main", provider="anthropic")
    first, _ = make_key(upstreams=[openai, claude], name="team-beta")
    limits = limits_set(key=first, budget_usd=Decimal("0.05"), budget_period="month", rpm_limit=60)
    month = windows.window_start("month", dt.datetime.now(dt.UTC))
    Spend.objects.create(limits=limits, window_start=month, spent_usd=Decimal("0.045"))
    current, _ = key_rotate(actor="tests", key=first)
    other, _ = make_key(
        upstreams=[openai], name="a rather long key name for the nightly batch jobs"
    )
    now = dt.datetime.now(dt.UTC)
    statuses = [200] * 12 + [429, 500, 0, 401, 404]
    # Every row today (UTC), three minutes apart when the day is that old already: the
    # dashboard's "today" must count them all, whatever the hour the test runs at.
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    step = min(dt.timedelta(minutes=3), (now - midnight) / (len(statuses) * 3 + 1))
    rows = []
    for i, status in enumerate(statuses * 3):
        known = status == 200
        rows.append(
            RequestLog(
                request_id=uuid.uuid4(),
                api_key=None if status == 401 else (current if i % 2 else other),
                upstream=None if status == 401 else (openai if i % 3 else claude),
                method="POST",
                path="/v1/chat/completions" if i % 3 else "/v1/messages",
                model="gpt-4o-mini-2024-07-18-long-snapshot-name" if i % 3 else "claude-sonnet-4",
                is_stream=bool(i % 2),
                status_code=status,
                prompt_tokens=1200 + i if known else None,
                completion_tokens=300 + i if known else None,
                total_tokens=1500 + 2 * i if known else None,
                cost_usd=Decimal("0.0123456789") * (i + 1) if known else None,
                duration_ms=850 + 37 * i,
                ttfb_ms=120 + i,
                error=""
                if known
                else {
                    429: "Rate limit reached for gpt-4o-mini in organization org-xyz on tokens per min",
                    500: "The server had an error while processing your request. Sorry about that!",
                    0: "upstream unreachable: connection refused",
                    401: "invalid_api_key",
                    404: "The model `gpt-5-ultra` does not exist or you do not have access to it.",
                }[status],
                state=RequestLog.State.FINISHED,
                created_at=now - step * i,
                finished_at=now - step * i + dt.timedelta(milliseconds=1),
            )
        )
    RequestLog.objects.bulk_create(rows)
    return {
        "openai": openai.pk,
        "key": current.pk,
        "old_key": first.pk,
        "log": RequestLog.objects.order_by("-created_at").first().pk,
    }


def _pages(ids: dict) -> list[tuple[str, str]]:
    return [
        ("dashboard", "/django-admin/"),
        ("log-list", "/django-admin/logs/requestlog/"),
        ("log-list-errors", "/django-admin/logs/requestlog/?status_class=error"),
        ("log-detail", f"/django-admin/logs/requestlog/{ids['log']}/change/"),
        ("usage", "/django-admin/logs/requestlog/usage/"),
        ("key-list", "/django-admin/keys/apikey/"),
        ("key-detail", f"/django-admin/keys/apikey/{ids['key']}/change/"),
        ("key-add", "/django-admin/keys/apikey/add/"),
        ("upstream-list", "/django-admin/upstreams/upstream/"),
        ("upstream-detail", f"/django-admin/upstreams/upstream/{ids['openai']}/change/"),
        ("price-list", "/django-admin/prices/price/"),
    ]


class ConsoleErrors:
    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on(
            "response",
            lambda r: self.errors.append(f"{r.status} {r.url}") if r.status >= 400 else None,
        )


def _overflow(page) -> int:
    """How many pixels the page is wider than the window (0: no horizontal scrolling)."""
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


def test_every_console_page_fits_1366_and_1920_px_without_console_errors(
    transactional_db, console_gateway, make_upstream, make_key
):
    create_operator()
    ids = _seed(make_upstream, make_key)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium_page() as page:
        console = ConsoleErrors(page)
        log_in(page, console_gateway.url)
        overflowing = {}
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            for name, path in _pages(ids):
                response = page.goto(console_gateway.url + path)
                assert response.status == 200, (name, response.status)
                page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
                if _overflow(page) > 0:
                    overflowing[f"{name}@{width}"] = _overflow(page)
        # Dark mode: the admin's own dark variables, and the gateway's colours with them.
        page.set_viewport_size({"width": 1366, "height": 900})
        badge = "#result_list td.field-status .gw-ok"
        page.goto(console_gateway.url + "/django-admin/logs/requestlog/")
        light = page.eval_on_selector(badge, "el => getComputedStyle(el).backgroundColor")
        page.emulate_media(color_scheme="dark")
        for name, path in _pages(ids)[:5]:
            page.goto(console_gateway.url + path)
            page.screenshot(path=str(ARTIFACTS / f"{name}-dark-1366.png"), full_page=True)
        page.goto(console_gateway.url + "/django-admin/logs/requestlog/")
        dark = page.eval_on_selector(badge, "el => getComputedStyle(el).backgroundColor")
        body = page.eval_on_selector("body", "el => getComputedStyle(el).backgroundColor")
    assert overflowing == {}
    assert light != dark and body != "rgb(255, 255, 255)"
    assert console.errors == []


def test_the_dashboard_answers_the_daily_questions_with_links(
    transactional_db, console_gateway, make_upstream, make_key
):
    create_operator()
    _seed(make_upstream, make_key)
    with chromium_page() as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        log_in(page, console_gateway.url)
        assert page.title().startswith("Dashboard | LLM gateway")
        assert page.inner_text("#site-name") == "LLM gateway"
        assert page.get_attribute("#user-tools a:text('API docs')", "href") == "/docs"
        today = page.locator("[data-testid=period-1]")
        assert today.locator(".gw-card-value").first.inner_text() == "51"
        assert today.locator(".gw-card-value").nth(1).inner_text() == "15"
        assert "team-beta" in page.inner_text("#top-keys")
        assert "claude-sonnet-4" in page.inner_text("#top-models")
        assert "openai-main" in page.inner_text("#upstream-health")
        assert "team-beta" in page.inner_text("#near-budget")
        assert "connection refused" in page.inner_text("#recent-errors")
        # Recent actions sit beside the figures, not under the app list.
        figures = page.locator("#top-keys").bounding_box()
        actions = page.locator("#recent-actions-module").bounding_box()
        assert actions["x"] > figures["x"] + figures["width"]
        assert actions["y"] < figures["y"] + figures["height"]

        # Errors today: the card leads to the log list filtered the same way.
        today.locator("a.gw-card").nth(1).click()
        page.wait_for_selector("#result_list")
        assert page.locator("#result_list tbody tr").count() == 15
        statuses = page.locator("#result_list tbody td.field-status").all_inner_texts()
        assert set(statuses) == {"429", "500", "0", "401", "404"}


def test_the_log_list_shows_one_line_per_request_with_every_column_on_screen(
    transactional_db, console_gateway, make_upstream, make_key
):
    create_operator()
    _seed(make_upstream, make_key)
    with chromium_page() as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        log_in(page, console_gateway.url)
        page.goto(f"{console_gateway.url}/django-admin/logs/requestlog/")
        headers = page.locator("#result_list thead th").all_text_contents()
        assert [h.strip() for h in headers] == [
            "Time (UTC)",
            "Status",
            "Key",
            "Upstream",
            "Model",
            "Tokens",
            "Cost",
            "Duration",
            "Error",
        ]
        table = page.locator("#result_list").bounding_box()
        assert table["x"] + table["width"] <= 1366
        # One line per row: every row as tall as the first, and short.
        heights = {round(b["height"]) for b in _row_boxes(page)}
        assert len(heights) == 1 and heights.pop() < 40
        first = page.locator("#result_list tbody tr").first.inner_text()
        assert "team-beta" in first or "nightly" in first
        # A status is coloured by its class.
        bad = page.locator("#result_list td.field-status .gw-bad").first
        assert bad.evaluate("el => getComputedStyle(el).backgroundColor") != "rgba(0, 0, 0, 0)"

        # Export CSV is reachable from the keyboard.
        for _ in range(60):
            page.keyboard.press("Tab")
            if page.evaluate("() => document.activeElement.textContent.trim()") == "Export CSV":
                break
        else:
            pytest.fail("Export CSV cannot be reached with Tab")

        # A search that cannot match says why.
        _search(page, "1234-abcd")
        assert "is not a whole request id" in page.inner_text(".messagelist")
        _search(page, "sk-auto-zzzz")
        assert "No key has a prefix" in page.inner_text(".messagelist")
        _search(page, "claude-sonnet-4")
        models = page.locator("#result_list td.field-model_name").all_inner_texts()
        assert models and set(models) == {"claude-sonnet-4"}


def _row_boxes(page) -> list[dict]:
    rows = page.locator("#result_list tbody tr")
    return [rows.nth(i).bounding_box() for i in range(rows.count())]


def _search(page, term: str) -> None:
    page.fill("#searchbar", term)
    with page.expect_navigation():
        page.press("#searchbar", "Enter")


def test_the_key_page_shows_status_budget_usage_and_lineage(
    transactional_db, console_gateway, make_upstream, make_key
):
    create_operator()
    ids = _seed(make_upstream, make_key)
    base = console_gateway.url
    with chromium_page() as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        log_in(page, base)
        # The list shows the lineage once, as its current key, with its rotation.
        page.goto(f"{base}/django-admin/keys/apikey/")
        rows = page.locator("#result_list tbody tr", has_text="team-beta")
        assert rows.count() == 1
        assert "1×" in rows.first.inner_text()
        active = rows.first.locator(".gw-badge")
        assert active.inner_text() == "active"
        with page.expect_navigation():
            page.click("#changelist-filter a:text('Replaced keys too')")
        assert page.locator("#result_list tbody tr", has_text="team-beta").count() == 2
        revoked = page.locator("#result_list .gw-badge", has_text="revoked")
        assert revoked.count() == 1
        colours = {
            b.evaluate("el => getComputedStyle(el).backgroundColor")
            for b in (active, revoked.first)
        }
        assert len(colours) == 2

        page.goto(f"{base}/django-admin/keys/apikey/{ids['key']}/change/")
        assert page.locator("[role=progressbar]").count() == 1
        assert "0.045" in page.inner_text(".field-spend")
        usage = page.inner_text("#key-usage")
        assert "claude-sonnet-4" in usage and "gpt-4o-mini" in usage
        lineage = page.locator("#key-lineage tbody tr")
        assert lineage.count() == 2 and "this key" in lineage.nth(1).inner_text()
        with page.expect_navigation():
            page.click("#key-usage a.gw-chip:text('Today')")
        assert page.locator("#key-usage a[aria-current=true]").inner_text() == "Today"
        with page.expect_navigation():
            page.click(".object-tools a:text('Logs')")
        page.wait_for_selector("#result_list")
        keys = set(page.locator("#result_list td.field-key").all_inner_texts())
        assert len(keys) == 1 and keys.pop().startswith("team-beta")


def test_a_new_install_leads_from_an_upstream_to_a_key_to_its_snippet(
    transactional_db, fresh_gateway
):
    create_operator()
    base = fresh_gateway.url
    with chromium_page() as page:
        page.set_viewport_size({"width": 1366, "height": 900})
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        log_in(page, base)
        page.click("#next-step a:text('Add an upstream')")
        page.fill("#id_name", "first-upstream")
        page.select_option("#id_provider", "openai")
        page.fill("#id_base_url", "http://127.0.0.1:9/v1")
        page.fill("#id_api_key", "sk-console-test-secret-4242")
        page.click("input[name=_save]")
        page.wait_for_selector("text=was added successfully")
        page.goto(f"{base}/django-admin/")
        page.click("#next-step a:text('Add an API key')")
        page.fill("#id_name", "first key")
        page.select_option("#id_upstreams_from", label="first-upstream")
        page.click("#id_upstreams_add")
        page.click("input[name=_save]")
        plaintext = page.inner_text("[data-testid=plaintext-key]").strip()
        assert f'base_url="{base}/v1", api_key="{plaintext}"' in page.inner_text(
            "pre.gw-code >> nth=0"
        )
        assert f'base_url="{base}", api_key="{plaintext}"' in page.inner_text(
            "pre.gw-code >> nth=1"
        )
        # The copy button is a real button, reachable from the keyboard.
        page.focus("button[data-copy=key-1]")
        page.keyboard.press("Enter")
        page.wait_for_selector("button[data-copy=key-1]:text('Copied')")
        assert page.evaluate("() => navigator.clipboard.readText()") == plaintext
        page.screenshot(path=str(ARTIFACTS / "key-shown-once-1366.png"), full_page=True)


def test_empty_lists_say_what_to_do_next(transactional_db, console_gateway):
    create_operator()
    base = console_gateway.url
    with chromium_page() as page:
        log_in(page, base)
        page.goto(f"{base}/django-admin/upstreams/upstream/")
        assert "No upstreams yet" in page.inner_text("#empty-upstreams")
        page.goto(f"{base}/django-admin/keys/apikey/")
        assert "add an upstream first" in page.inner_text("#empty-keys")
        page.goto(f"{base}/django-admin/keys/apikey/add/")
        assert "Add an upstream first" in page.inner_text("#no-upstreams")
