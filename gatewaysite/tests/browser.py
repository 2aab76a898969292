"""Helpers for the browser tests: Debian's chromium through Playwright, a styled gunicorn.

The tests never download a browser: a missing /usr/bin/chromium is a failure
that says how to install it, never a skip.
"""

from __future__ import annotations

import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest

from testing.helpers import ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OPERATOR = {"username": "operator", "password": "correct-horse-battery-staple-42"}


@contextmanager
def chromium_page(*, default_timeout_ms: float = 15_000):
    """A fresh headless Chromium page (its own context: no cookies carried between tests)."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium). "
            "The browser tests never download a browser."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            page = context.new_page()
            page.set_default_timeout(default_timeout_ms)
            yield page
        finally:
            browser.close()


def collect_static(static_root: Path, env: dict[str, str]) -> None:
    """What the setup command does before gunicorn starts: collectstatic into STATIC_ROOT."""
    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
        cwd=ROOT,
        env={**env, "STATIC_ROOT": str(static_root)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"collectstatic failed: {result.stderr[-2000:]}")


def create_operator():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser(email="op@example.com", **OPERATOR)


def log_in(page, base_url: str) -> None:
    page.goto(f"{base_url}/django-admin/")
    page.fill("#id_username", OPERATOR["username"])
    page.fill("#id_password", OPERATOR["password"])
    # The password is hashed in a low-priority thread (gatewaysite.login): on a loaded
    # machine that thread waits its turn, so the sign-in gets more than the default 15 s.
    with page.expect_navigation(timeout=90_000):
        page.click("input[type=submit]", timeout=90_000)
    page.wait_for_selector("#site-name")
