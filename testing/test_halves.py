"""The PostgreSQL half runs the tests that reach the database, and only those."""

from __future__ import annotations

import subprocess
import sys

from testing.helpers import ROOT

MIXED = "gatewaysite/tests/test_admin_api_schema.py"  # three live tests, four without a database


def test_database_tests_only_keeps_the_tests_that_use_the_database():
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-n", "0", "--database-tests-only", MIXED],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    kept = {line.split("::")[1] for line in run.stdout.splitlines() if "::" in line}
    assert kept == {
        "test_schemathesis_finds_no_failure",  # a live gunicorn on the test database
        "test_docs_load_swagger_ui_from_our_own_static_files",
        "test_swagger_ui_renders_every_operation_offline",
    }
    assert "3/7 tests collected (4 deselected)" in run.stdout
