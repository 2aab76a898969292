"""The bench's profile mode: py-spy samples every gunicorn worker while a case runs.

    .venv/bin/python bench/run.py --databases sqlite --sections 2 --profile

py-spy (requirements-dev.txt) reads the workers' stacks from outside (no code in the
gateway, `--nonblocking`: the workers are never paused), at --profile-rate samples a
second. Each profiled case leaves its stacks in --data-dir as
`profile-<database>-<case>.txt`, in the collapsed format that flamegraph.pl, speedscope
(https://speedscope.app, "import") and inferno read, and the bench prints the functions
that took the most samples, by their own time and with what they call.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profiler:
    """py-spy recording a process and its children (gunicorn's master and workers)."""

    def __init__(self, pid: int, output: Path, duration: float, rate: int, idle: bool = False):
        self.output = output
        # idle: also the samples of a worker that waits (on the hub, or asleep in a C call
        # such as SQLite's busy handler), so the profile shows wall time, not only CPU.
        self.proc = subprocess.Popen(
            [
                py_spy() or "py-spy",
                "record",
                "--pid",
                str(pid),
                "--subprocesses",
                "--nonblocking",
                "--rate",
                str(rate),
                "--duration",
                str(max(1, round(duration))),
                "--format",
                "raw",
                "--output",
                str(output),
                *(["--idle"] if idle else []),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    def finish(self) -> str:
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if self.proc.returncode != 0 or not self.output.exists():
            return f"py-spy failed: {err.decode(errors='replace').strip()[-300:]}"
        return summary(self.output)


def _frame_name(frame: str) -> str:
    # "function (path/to/module.py:123)" -> "function (module.py)", so the lines of one
    # function count together.
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})" if path else name


def summary(path: Path, top: int = 25) -> str:
    """The functions with the most samples: own (the frame on top) and total (anywhere)."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = [_frame_name(f) for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        samples += n
        own[frames[-1]] += n
        for name in set(frames):
            total[name] += n
    if not samples:
        return "no samples"
    lines = [f"{samples} samples; own % / total % / function"]
    for name, n in own.most_common(top):
        lines.append(f"{n * 100 / samples:6.1f} {total[name] * 100 / samples:6.1f}  {name}")
    return "\n".join(lines)
