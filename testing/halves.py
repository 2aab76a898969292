"""Which tests the PostgreSQL half of the suite runs (`scripts/test.sh`).

Every test runs in the SQLite half. The PostgreSQL half passes `--database-tests-only`
and runs the tests that reach the database: those marked `django_db` (or that ask for a
database fixture, as the live gunicorn fixtures do). The others (parsers, dialects,
windows, configuration errors, `run.sh`, which always starts on SQLite) never open the
gateway's database, so a second run would check the same thing twice: 543 of 1,616
tests, about 33 s of the half's worker time (measured 2026-12-01).
"""

from __future__ import annotations

import pytest

# Not django_db_blocker: an autouse fixture of pytest-django asks for it in every test.
DATABASE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_setup",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "live_server",
    }
)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-tests-only",
        action="store_true",
        help="run only the tests that use the database (the PostgreSQL half of the suite)",
    )


def reaches_database(item: pytest.Item) -> bool:
    if item.get_closest_marker("django_db") is not None:
        return True
    return not DATABASE_FIXTURES.isdisjoint(getattr(item, "fixturenames", ()))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("database_tests_only"):
        return
    kept, left = [], []
    for item in items:
        (kept if reaches_database(item) else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = kept
