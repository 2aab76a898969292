"""Running the suite on several cores (pytest-xdist, `scripts/test.sh` passes `-n 2`).

A pytest plugin, loaded by the root conftest. What the workers share and what they must not:

- One run folder for the whole run (``run_dir``), shared by the workers: every live
  gunicorn's output and every secret a test registered (``remember_secret``) land there,
  so the canary sweep sees the whole run, not one worker's half of it.
- The tests marked ``last`` (the canary sweep) start only once every other test of the
  run has finished, on every worker (``LastTestsLastScheduling``).
- Their own databases (pytest-django suffixes the test database per worker) and their own
  Redis database (``testing.helpers.redis_test_url``).

Without ``-n`` the suite runs in one process exactly as before.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

# The modules that take longest, longest first: a parallel run starts them first, so it
# ends on short tests (the workers finish together) instead of on one of these with the
# other worker idle. Seconds of one worker's time in the slower half of the suite
# (SQLite or PostgreSQL), measured 2026-12-01; a module not listed keeps its place.
SLOW_MODULES = [
    "gatewaysite/tests/test_admin_api_schema.py",  # 55 s
    "gatewaysite/tests/test_browser_console.py",  # 55 s
    "proxy/tests/test_faults.py",  # 48 s
    "limits/tests/test_limits_across_instances.py",  # 33 s
    "gatewaysite/tests/test_browser_admin.py",  # 21 s
    "gatewaysite/tests/test_db_upkeep.py",  # 21 s
    "proxy/tests/test_slow_uploads.py",  # 13 s
    "gatewaysite/tests/test_database_outage.py",  # 12 s
    "proxy/tests/test_proxy_under_login_flood.py",  # 12 s
    "gatewaysite/tests/test_admin_api_battery.py",  # 11 s
    "gatewaysite/tests/test_health.py",  # 11 s
    "proxy/tests/test_proxy_streaming.py",  # 10 s
    "proxy/tests/test_proxy_workers.py",  # 10 s
    "gatewaysite/tests/test_first_run.py",  # 9 s
    "limits/tests/test_limits_on_the_proxy.py",  # 9 s
    "upstreams/tests/test_commands_import_upstreams.py",  # 9 s
    "proxy/tests/test_proxy_failover.py",  # 9 s
    "testing/test_halves.py",  # 9 s
    "upstreams/tests/test_commands_rotate_encryption_key.py",  # 7 s
    "upstreams/tests/test_cooling_across_instances.py",  # 7 s
    "proxy/tests/test_proxy_cost.py",  # 7 s
    "gatewaysite/tests/test_admin_api_live.py",  # 6 s
    "proxy/tests/test_proxy_routing.py",  # 6 s
    "keys/tests/test_commands_rotate_api_key.py",  # 6 s
    "logs/tests/test_api_export.py",  # 6 s
]

RUN_DIR = pytest.StashKey[Path]()
FAILED = pytest.StashKey[bool]()
LAST_TESTS = "last-tests-{worker}.txt"


def worker_id() -> str:
    """`gw0`, `gw1`, ... in an xdist worker; `main` in a run without workers."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def run_dir(config: pytest.Config) -> Path:
    return config.stash[RUN_DIR]


def pytest_configure(config: pytest.Config) -> None:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        config.stash[RUN_DIR] = Path(workerinput["gateway_run_dir"])
    else:
        config.stash[RUN_DIR] = Path(tempfile.mkdtemp(prefix="gateway-tests-"))
    from testing import helpers

    helpers.canaries_record(run_dir(config) / f"canaries-{worker_id()}.txt")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    node.workerinput["gateway_run_dir"] = str(run_dir(node.config))


def pytest_unconfigure(config: pytest.Config) -> None:
    # The controller (or the only process) owns the folder; keep it when a test failed,
    # since the failure messages point at the gunicorn logs inside it.
    if getattr(config, "workerinput", None) is None and RUN_DIR in config.stash:
        if config.stash.get(FAILED, True):
            print(f"\nserver logs kept in {run_dir(config)}")
        else:
            shutil.rmtree(run_dir(config), ignore_errors=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[FAILED] = exitstatus != 0


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def rolls_back(item: pytest.Item) -> bool:
    """Whether a test uses the database in pytest-django's `db` mode (rolled back at its
    end): such a test expects the tables as the migrations left them, which the flush
    after a transactional test empties, so pytest-django runs these first."""
    from pytest_django.fixtures import validate_django_db

    marker = item.get_closest_marker("django_db")
    fixtures = getattr(item, "fixturenames", ())
    transactional = "transactional_db" in fixtures or "live_server" in fixtures
    if marker is not None:
        transaction, reset_sequences, *_ = validate_django_db(marker)
        transactional = transactional or transaction or reset_sequences
    return (marker is not None or "db" in fixtures) and not transactional


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # pytest-django's order first (rolled-back database tests before those that commit
    # and flush); then the longest modules first (SLOW_MODULES), so the run does not end
    # on one of them with the other worker idle; tests marked `last` (the canary sweep)
    # after everything else. After the rolled-back ones, a module's tests are kept
    # together (pytest-django puts those that need no database after all that commit,
    # and each part started the module's gunicorn again); a module's tests keep their order.
    # The scheduler learns which tests are `last` from this file (it only sees node ids).
    rank = {path: n for n, path in enumerate(SLOW_MODULES)}
    first: dict[tuple[bool, str], int] = {}
    keys = {}
    for n, item in enumerate(items):
        group = not rolls_back(item)
        module = module_of(item.nodeid)
        keys[item] = (
            item.get_closest_marker("last") is not None,
            group,
            rank.get(module, len(rank)),
            first.setdefault((group, module), n),
        )
    items.sort(key=keys.__getitem__)
    last = [item.nodeid for item in items if item.get_closest_marker("last") is not None]
    (run_dir(config) / LAST_TESTS.format(worker=worker_id())).write_text("\n".join(last))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    if config.getvalue("dist") == "load":
        return LastTestsLastScheduling(config, log)
    return None


try:
    from xdist.scheduler import LoadScheduling
except ImportError:  # pragma: no cover - the suite still runs in one process
    LoadScheduling = object


class LastTestsLastScheduling(LoadScheduling):
    """xdist's `load` scheduling, with two changes:

    - Whole modules (each run of a module's tests in the collection), one at a time: a
      worker gets the next module when it is about to run dry, so a module-scoped
      gunicorn starts on one worker only (xdist's chunks of up to ~200 tests split
      modules at their edges, and each side started its own), and, the longest modules
      coming first, the workers finish together (a chunk xdist sent early cannot move:
      in one run one worker sat idle for two minutes while the other ran its chunk).
    - The tests marked `last` are held back until every other test has finished on
      every worker; then one worker runs them.

    A worker runs a test only once it knows the next one (or is told to shut down), so
    a worker is sent its next module while it still has AHEAD tests to run, and while the
    held tests wait, every worker but one is shut down as it runs dry, and the remaining
    one gets the held tests when the others have nothing left."""

    AHEAD = 2

    def __init__(self, config, log=None):
        super().__init__(config, log)
        self.held: set[int] | None = None
        # The first send is one module per worker too (see _send_tests).
        self.maxschedchunk = 1

    def _held(self) -> set[int]:
        if self.held is None:
            names: set[str] = set()
            for path in run_dir(self.config).glob(LAST_TESTS.format(worker="*")):
                names.update(line for line in path.read_text().splitlines() if line)
            self.held = {i for i, nodeid in enumerate(self.collection) if nodeid in names}
        return self.held

    def _send_tests(self, node, num: int) -> None:
        """Send the next `num` tests that are not held, and the rest of their last module."""
        held = self._held()
        batch: list[int] = []
        for i in self.pending:
            if i in held:
                continue
            if len(batch) >= num and module_of(self.collection[i]) != module_of(
                self.collection[batch[-1]]
            ):
                break
            batch.append(i)
        if batch:
            sent = set(batch)
            self.pending[:] = [i for i in self.pending if i not in sent]
            self.node2pending[node].extend(batch)
            node.send_runtest_some(batch)

    def _release_held(self) -> None:
        if self.collection is None or not self.pending:
            return
        held = self._held()
        if any(i not in held for i in self.pending):
            return  # ordinary tests still wait to be sent
        live = [n for n in self.nodes if not n.shutting_down]
        if not live:
            return
        # The keeper holds its last test until it gets the held ones (it must know the
        # next test to run one), so it is the worker with the most left to run.
        keeper = max(live, key=lambda n: len(self.node2pending[n]))
        for node in live:
            if node is not keeper:
                node.shutdown()  # it finishes what it holds and leaves
        if any(self.node2pending[n] for n in self.nodes if n is not keeper):
            return  # another worker still runs ordinary tests
        batch = list(self.pending)
        self.pending.clear()
        self.node2pending[keeper].extend(batch)
        keeper.send_runtest_some(batch)
        keeper.shutdown()

    def check_schedule(self, node, duration: float = 0) -> None:
        if node.shutting_down:
            return
        if not self.pending:
            node.shutdown()
        elif len(self.node2pending[node]) <= self.AHEAD:
            self._send_tests(node, 1)

    def schedule(self) -> None:
        super().schedule()
        self._release_held()

    def mark_test_complete(self, node, item_index: int, duration: float = 0) -> None:
        super().mark_test_complete(node, item_index, duration)
        self._release_held()

    def remove_node(self, node):
        crashed = super().remove_node(node)
        self._release_held()
        return crashed
