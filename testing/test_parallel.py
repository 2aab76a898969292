"""How a parallel run hands out the tests (testing/parallel.py), driven without processes:
two fake xdist workers that run a test only once they know the next one, as real ones do."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

from testing.helpers import ROOT
from testing.parallel import LAST_TESTS, RUN_DIR, SLOW_MODULES, LastTestsLastScheduling


class _Config:
    def __init__(self, run_dir: Path):
        self.stash = {RUN_DIR: run_dir}

    def getvalue(self, name):
        return {"tx": ["2*popen"]}[name]

    def getoption(self, name):
        return {"maxschedchunk": None}[name]


class _Worker:
    def __init__(self, name: str):
        self.name = name
        self.gateway = SimpleNamespace(id=name)
        self.queue: list[int] = []
        self.shutting_down = False

    def send_runtest_some(self, indices) -> None:
        assert not self.shutting_down
        self.queue.extend(indices)

    def shutdown(self) -> None:
        self.shutting_down = True

    def can_run(self) -> bool:
        return len(self.queue) >= 2 or (self.shutting_down and bool(self.queue))


def _run(tmp_path: Path, collection: list[str], last: list[str], durations: dict[str, int]):
    """Run the collection on two workers, in steps of one time unit; return, per test,
    (worker, start, end)."""
    (tmp_path / LAST_TESTS.format(worker="gw0")).write_text("\n".join(last))
    scheduler = LastTestsLastScheduling(_Config(tmp_path))
    workers = [_Worker("gw0"), _Worker("gw1")]
    for worker in workers:
        scheduler.add_node(worker)
    for worker in workers:
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    ran: dict[str, tuple[str, int, int]] = {}
    running: dict[_Worker, tuple[int, int] | None] = {worker: None for worker in workers}
    for clock in itertools.count():
        assert clock < 10_000, "the run never ended"
        for worker in workers:
            if running[worker] is not None and running[worker][1] == clock:
                scheduler.mark_test_complete(worker, running[worker][0])
                running[worker] = None
        for worker in workers:
            if running[worker] is None and worker.can_run():
                index = worker.queue.pop(0)
                end = clock + durations.get(collection[index], 1)
                ran[collection[index]] = (worker.name, clock, end)
                running[worker] = (index, end)
        if not scheduler.pending and all(running[w] is None and not w.queue for w in workers):
            return ran


COLLECTION = [
    *(f"a/test_slow.py::test_{n}" for n in range(3)),
    *(f"a/test_many.py::test_{n}" for n in range(40)),
    *(f"b/test_one_{n}.py::test_it" for n in range(9)),
    *(f"b/test_shared.py::test_{n}" for n in range(6)),
    "z/test_canary.py::test_sweep",
    "z/test_canary.py::test_sweep_again",
]
LAST = ["z/test_canary.py::test_sweep", "z/test_canary.py::test_sweep_again"]


def test_every_test_runs_once_and_each_module_on_one_worker(tmp_path):
    ran = _run(tmp_path, COLLECTION, LAST, {"a/test_slow.py::test_0": 30})
    assert sorted(ran) == sorted(COLLECTION)
    for module, tests in itertools.groupby(COLLECTION, key=lambda n: n.split("::")[0]):
        assert len({ran[t][0] for t in tests}) == 1, module


def test_the_canary_sweep_starts_after_every_other_test_has_ended(tmp_path):
    ran = _run(tmp_path, COLLECTION, LAST, {"a/test_slow.py::test_0": 30})
    others_end = max(end for nodeid, (_, _, end) in ran.items() if nodeid not in LAST)
    assert min(ran[t][1] for t in LAST) >= others_end
    assert len({ran[t][0] for t in LAST}) == 1


def test_the_workers_end_together_when_the_slow_module_comes_first(tmp_path):
    ran = _run(tmp_path, COLLECTION, [], {"a/test_slow.py::test_0": 30})
    ends = {w: max(end for who, _, end in ran.values() if who == w) for w in ("gw0", "gw1")}
    # 87 units of work: one worker takes the slow module's 32, the other the short ones
    # until they meet; the run ends less than one short module (6) after an even split.
    assert max(ends.values()) - 87 / 2 < 3, ends


def test_every_slow_module_exists():
    missing = [path for path in SLOW_MODULES if not (ROOT / path).is_file()]
    assert missing == []
