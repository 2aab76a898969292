"""Instructions the gateway's own code executes per request, counted by callgrind.

    .venv/bin/python bench/instructions.py                      # both databases, about 8 minutes
    .venv/bin/python bench/instructions.py --databases sqlite --requests 200

Throughput and CPU time on a shared 2-core machine move by ±20% from run to run, more
than most single changes to the code are worth. An instruction count does not: valgrind
counts what the process executes, whatever else the machine is doing. So a change to the
request path is compared here, before and after, on the same machine.

What is counted: one process sends whole OpenAI chat requests through Django's test
client (bench/inproc.py requests), with each key of `make bench`'s section 5 (no
limits; rate limits; every limit and both budgets), to the fake provider. Each key runs
twice under callgrind, with --warm requests and with --warm + --requests; the
difference, divided by --requests, is one warm request: start-up, imports and cache
fills cancel out. Not counted: gunicorn and gevent (the test client calls the view
directly, and waits block), the fake provider, and the database server's own work (on
PostgreSQL, section 5 of `make bench` reports that as server CPU per request).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    PYTHON,
    FakeProviderProcess,
    postgres_reachable,
    provisioned_database,
    say,
)

KEYS = (
    ("no limits", "openai_key"),
    ("rpm + tpm + max_parallel", "limits_key"),
    ("every limit + USD and token budgets", "budget_key"),
)
_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def instructions(env: dict[str, str], key: str, count: int) -> int:
    """Instructions of one process that sends `count` requests with `key`."""
    out = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            PYTHON,
            str(ROOT / "bench" / "inproc.py"),
            "requests",
            "--key",
            key,
            "--count",
            str(count),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    found = _REFS.search(out.stderr)
    if out.returncode != 0 or found is None:
        raise SystemExit(f"bench: the counted run failed:\n{out.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def count_database(kind: str, fake: FakeProviderProcess, args) -> list[tuple[str, float]]:
    _, env, keys = provisioned_database(kind, fake, args)
    rows = []
    for label, name in KEYS:
        say(f"[{kind}] {label}: {args.warm} and {args.warm + args.requests} requests, counted")
        few = instructions(env, keys[name], args.warm)
        many = instructions(env, keys[name], args.warm + args.requests)
        rows.append((label, (many - few) / args.requests))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--requests", type=int, default=100, help="counted requests (100)")
    parser.add_argument("--warm", type=int, default=20, help="requests before them (20)")
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "bench"))
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/gw_bench"),
        help="database to DROP and CREATE for the PostgreSQL pass (BENCH_POSTGRES_URL)",
    )
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("bench: valgrind is needed (apt-get install valgrind)")
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    if "postgresql" in kinds and not postgres_reachable(args.postgres_url):
        raise SystemExit(f"bench: PostgreSQL does not answer at {args.postgres_url}")
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    fake = FakeProviderProcess(1, Path(args.data_dir).resolve() / "fake-provider.log")
    try:
        results = {kind: count_database(kind, fake, args) for kind in kinds}
    finally:
        fake.stop()
    print(
        f"\nInstructions per warm JSON request, gateway code in-process ({args.requests} counted)"
    )
    print(f"| key | {' | '.join(kinds)} |")
    print(f"| --- | {' | '.join('---' for _ in kinds)} |")
    for i, (label, _) in enumerate(KEYS):
        cells = []
        for kind in kinds:
            value, plain = results[kind][i][1], results[kind][0][1]
            ratio = "" if i == 0 else f" ({value / plain - 1:+.1%})"
            cells.append(f"{value / 1e6:.3f} M{ratio}")
        print(f"| {label} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
