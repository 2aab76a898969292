"""The benchmark: what the gateway adds to every call, beside a direct call in the same run.

    make bench                                    # the full run, SQLite then PostgreSQL (~4 min)
    .venv/bin/python bench/run.py --quick         # a smoke run (~2 min)
    .venv/bin/python bench/run.py --databases sqlite --sections 1,2
    .venv/bin/python bench/run.py --direct-only --quick   # only the harness and the fake provider

It starts the fake provider (testing/fake_provider.py) as its own process, so it never
shares a GIL with the load generator (this process, asyncio raw sockets with keep-alive,
bench/loadgen.py). For each database it makes a fresh one (SQLite: a new file under
--data-dir; PostgreSQL: DROP/CREATE DATABASE of --postgres-url's database), migrates,
creates two upstreams pointing at the fake provider and one key each through the
services (bench/inproc.py), starts gunicorn exactly as gunicorn.conf.py configures it
(GUNICORN_* variables from the environment apply; --workers overrides), and measures:

  1. sequential latency: interleaved rounds (direct, gateway, direct, gateway, ...) on
     one keep-alive connection each; OpenAI chat and Anthropic messages, JSON.
     p50/p99 and the overhead (gateway minus direct, same pass).
  2. throughput at concurrency 16 and 64, JSON and streaming (chat, stream_options
     include_usage): requests/s, latency p50/p99, time to first byte for streams, and
     the gateway's CPU time per request (gunicorn master + workers, from /proc).
  3. --streams (1,000) slow streams open at once (20 chunks x 250 ms, natural length 5 s,
     started evenly over --ramp seconds, 1 by default, so all are open together after it;
     --ramp 2,1 runs both): errors, how many finished on time (within 1.2 x 5 s), time
     to first byte, stretch beyond 5 s, peak RSS of gunicorn (master +
     workers, summed), peak database connections (PostgreSQL: pg_stat_activity for the
     bench database; SQLite: open descriptors on the database file).
  4. the per-request cost of the key check (warm cache), the upstream choice, routing by
     model (allowlist, five upstreams, priority, weight, cooling), the log writes
     (log_open + log_finish), timed in-process, --iterations (5,000) each.
  5. features: the OpenAI chat call of 1 and 2 with three keys (no limits; rpm, tpm and
     max_parallel set; those and both budgets, USD and tokens), sequential (interleaved
     rounds direct / each key) and JSON at concurrency 64 (each key in turn, --feature-
     rounds times, alternating, medians reported) with the gateway's CPU per request.

Then it prints one table. The "direct" column is the first pass's direct call; each
overhead uses the direct call of its own pass. Everything stays on 127.0.0.1 and every
wait has a deadline. The file-descriptor limit is raised to its hard limit (1,000
streams need about 2,000 descriptors in the gateway and as many here).
Figures are only comparable on a quiet machine: the load generator, the fake provider
and gunicorn share the same cores.

This file is the entry point (arguments, then one pass per database, then the table);
the rest reads by concern: bench/harness.py (the processes, databases and sampling),
bench/cases.py (the five sections), bench/table.py (the table and the --json figures),
bench/loadgen.py (the load generator), bench/inproc.py (section 4, in-process).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.cases import run_pass  # noqa: E402
from bench.harness import FakeProviderProcess, postgres_reachable, raise_fd_limit, say  # noqa: E402
from bench.table import print_table, raw_figures  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="The gateway's benchmark beside a direct call.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small counts for a smoke run")
    parser.add_argument(
        "--databases",
        default="sqlite,postgresql",
        help="comma-separated: sqlite, postgresql (default both)",
    )
    parser.add_argument(
        "--sections", default="1,2,3,4,5", help="which measures to run (default 1,2,3,4,5)"
    )
    parser.add_argument(
        "--feature-rounds",
        type=int,
        default=3,
        help="JSON c=64 runs per key in section 5, alternating (default 3)",
    )
    parser.add_argument(
        "--direct-only", action="store_true", help="no gateway: test the harness itself"
    )
    parser.add_argument(
        "--sequential", type=int, help="rounds of sequential calls (default 2000; quick 300)"
    )
    parser.add_argument(
        "--duration", type=float, help="seconds per throughput case (default 8; quick 2)"
    )
    parser.add_argument(
        "--streams",
        help="concurrent slow streams, or several counts to find how many it holds: "
        "200,500,1000 (default 1000; quick 200)",
    )
    parser.add_argument(
        "--ramp",
        default="1",
        help="seconds over which the slow streams start, or several: 2,1 (default 1: 1,000 "
        "streams started within one second; a stream lasts 5 s, so all are open together "
        "after it); 0 sends them in one burst",
    )
    parser.add_argument(
        "--iterations", type=int, help="in-process iterations (default 5000; quick 1000)"
    )
    parser.add_argument("--workers", type=int, help="override gunicorn.conf.py's worker count")
    parser.add_argument(
        "--fake-processes", type=int, default=1, help="fake provider processes (default 1)"
    )
    parser.add_argument(
        "--data-dir",
        default=str(ROOT / "data" / "bench"),
        help="where the SQLite file and gunicorn's output go (default data/bench)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/gw_bench"),
        help="database to DROP and CREATE for the PostgreSQL pass (BENCH_POSTGRES_URL)",
    )
    parser.add_argument("--json", help="also write the raw figures to this file")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the workers with py-spy during section 2's gateway cases (bench/profile.py); "
        "the sampler takes CPU too, so figures of a profiled run are not for the README",
    )
    parser.add_argument(
        "--profile-rate", type=int, default=200, help="py-spy samples per second (default 200)"
    )
    args = parser.parse_args(argv)

    defaults = {
        "sequential": (2000, 300),
        "duration": (8.0, 2.0),
        "streams": ("1000", "200"),
        "iterations": (5000, 1000),
    }
    for name, (full, quick) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    args.sections = {int(s) for s in args.sections.split(",") if s.strip()}
    args.streams = [int(n) for n in str(args.streams).split(",") if n.strip()]
    args.ramps = [float(r) for r in str(args.ramp).split(",") if r.strip()]
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    for k in kinds:
        if k not in ("sqlite", "postgresql"):
            parser.error(f"unknown database {k!r}")
    if args.direct_only:
        kinds = ["direct"]
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    limit = raise_fd_limit()
    if 3 in args.sections and limit < 2 * max(args.streams) + 100:
        say(f"warning: the descriptor limit is {limit}; {max(args.streams)} streams need more")

    if "postgresql" in kinds and not args.direct_only and not postgres_reachable(args.postgres_url):
        say(f"PostgreSQL is not reachable at {args.postgres_url}: skipping its pass")
        kinds.remove("postgresql")
    if not kinds:
        raise SystemExit("bench: no database to run against")
    fake = FakeProviderProcess(
        args.fake_processes, Path(args.data_dir).resolve() / "fake-provider.log"
    )
    results = []
    try:
        for kind in kinds:
            results.append(run_pass(kind, fake, args))
    finally:
        fake.stop()
    print_table(results, args)
    for r in results:
        for case, text in r.profiles.items():
            print(f"\nProfile, {r.db}, {case} (py-spy, every worker):\n{text}")
    if args.json:
        Path(args.json).write_text(
            json.dumps([raw_figures(r) for r in results], indent=1, default=str)
        )


if __name__ == "__main__":
    main()
