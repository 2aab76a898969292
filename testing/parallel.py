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


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Tests marked `last` (the canary sweep) run after everything else; the scheduler
    # learns which they are from this file (it only sees node ids).
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)
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
    """xdist's `load` scheduling, except that the tests marked `last` are held back until
    every other test has finished on every worker; then one worker runs them.

    A worker runs a test only once it knows the next one (or is told to shut down), so
    while the held tests wait, every worker but one is shut down as it runs dry, and the
    remaining one gets the held tests when the others have nothing left."""

    def __init__(self, config, log=None):
        super().__init__(config, log)
        self.held: set[int] | None = None

    def _held(self) -> set[int]:
        if self.held is None:
            names: set[str] = set()
            for path in run_dir(self.config).glob(LAST_TESTS.format(worker="*")):
                names.update(line for line in path.read_text().splitlines() if line)
            self.held = {i for i, nodeid in enumerate(self.collection) if nodeid in names}
        return self.held

    def _send_tests(self, node, num: int) -> None:
        held = self._held()
        batch = [i for i in self.pending if i not in held][:num]
        if batch:
            self.pending[:] = [i for i in self.pending if i not in batch]
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
        keeper = min(live, key=lambda n: len(self.node2pending[n]))
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
