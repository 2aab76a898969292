"""The benchmark's cases: what each section measures, direct and through the gateway.

1 sequential latency, 2 throughput, 3 slow streams, 4 in-process costs (bench/inproc.py),
5 features (limits and budgets); run_pass runs the chosen ones for one database and
returns a PassResult for the table (bench/table.py).
"""

from __future__ import annotations

import asyncio
import json
import resource
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from bench import loadgen
from bench.harness import (
    PYTHON,
    ROOT,
    Database,
    FakeProviderProcess,
    Gunicorn,
    Sampler,
    cpu_seconds,
    provisioned_database,
    say,
    server_pids,
)
from bench.loadgen import percentile
from bench.profile import Profiler

NATURAL_STREAM_SECONDS = 5.0
ON_TIME = 1.2  # a slow stream that took at most this many times its natural length
SLOW_HEADERS = {"x-fake-chunks": "20", "x-fake-chunk-delay-ms": "250"}


# --- requests --------------------------------------------------------------------------


@dataclass
class Target:
    host: str
    port: int
    openai_auth: dict[str, str]
    anthropic_auth: dict[str, str]

    def with_openai_key(self, key: str) -> Target:
        return Target(self.host, self.port, {"Authorization": f"Bearer {key}"}, {})

    def request(self, kind: str, extra: dict[str, str] | None = None) -> bytes:
        hostport = f"{self.host}:{self.port}"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if kind == "anthropic":
            body = {
                "model": "claude-bench",
                "max_tokens": 64,
                "messages": [{"role": "user", "content": "Say hello."}],
            }
            headers.update(self.anthropic_auth, **{"anthropic-version": "2023-06-01"})
            path = "/v1/messages"
        else:
            body = {"model": "gpt-bench", "messages": [{"role": "user", "content": "Say hello."}]}
            if kind in ("stream", "slow"):
                body.update(stream=True, stream_options={"include_usage": True})
                headers["Accept"] = "text/event-stream"
            headers.update(self.openai_auth)
            path = "/v1/chat/completions"
        if kind == "slow":
            headers.update(SLOW_HEADERS)
        headers.update(extra or {})
        return loadgen.build_request("POST", path, hostport, headers, json.dumps(body).encode())


# --- the cases -------------------------------------------------------------------------


@dataclass
class SlowResult:
    series: loadgen.Series
    peak_rss: int | None = None
    peak_db: int | None = None
    cpu_ms: float | None = None  # gunicorn CPU time per stream
    sockets: list[int] | None = None  # peak sockets open in each worker (client + upstream)


@dataclass
class PassResult:
    db: str
    workers: str = ""
    seq: dict = field(default_factory=dict)  # (dialect, side) -> Series
    load: dict = field(
        default_factory=dict
    )  # (kind, concurrency, side) -> (Series, cpu_ms or None)
    slow: dict = field(default_factory=dict)  # side -> SlowResult
    costs: dict = field(default_factory=dict)
    profiles: dict = field(default_factory=dict)  # case -> py-spy's summary
    # feature -> {"seq": Series, "overhead": (p50, p99) s, "rates": [...], "cpu_ms": [...]}
    features: dict = field(default_factory=dict)


def warm_up(gateway: Target, result: PassResult) -> None:
    """Every worker serves each kind of request a few times before anything is measured."""
    say(f"[{result.db}] warming up the workers")
    for kind in ("openai", "anthropic", "stream"):
        data = gateway.request(kind)
        series = asyncio.run(
            loadgen.concurrent(gateway.host, gateway.port, data, concurrency=8, duration=1.0)
        )
        if series.errors:
            raise SystemExit(f"bench: the gateway fails {kind} requests: {series.error_samples}")


def run_sequential(direct: Target, gateway: Target | None, args, result: PassResult) -> None:
    for dialect in ("openai", "anthropic"):
        targets = {"direct": (direct.host, direct.port, direct.request(dialect))}
        if gateway is not None:
            targets["gateway"] = (gateway.host, gateway.port, gateway.request(dialect))
        say(f"[{result.db}] 1. sequential {dialect}: {args.sequential} interleaved rounds")
        series = asyncio.run(loadgen.sequential(targets, args.sequential, warmup=100))
        for side, s in series.items():
            result.seq[(dialect, side)] = s


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_load(
    direct: Target,
    gateway: Target | None,
    gunicorn: Gunicorn | None,
    fake: FakeProviderProcess,
    args,
    result: PassResult,
) -> None:
    sides = [("direct", direct)] + ([("gateway", gateway)] if gateway is not None else [])
    for kind in ("json", "stream"):
        for concurrency in (16, 64):
            for side, target in sides:
                data = target.request("openai" if kind == "json" else "stream")
                say(f"[{result.db}] 2. {kind} c={concurrency} {side}: {args.duration:.0f}s")
                # A short warm-up opens the connections and fills the upstream pools.
                asyncio.run(
                    loadgen.concurrent(
                        target.host, target.port, data, concurrency=concurrency, duration=0.5
                    )
                )
                profiler = None
                if args.profile and side == "gateway":
                    profiler = Profiler(
                        gunicorn.proc.pid,
                        Path(args.data_dir).resolve()
                        / f"profile-{result.db}-{kind}-c{concurrency}.txt",
                        args.duration,
                        args.profile_rate,
                    )
                before = cpu_seconds(gunicorn.pids()) if side == "gateway" else 0.0
                harness_before = own_cpu_seconds() + cpu_seconds(fake.pids())
                series = asyncio.run(
                    loadgen.concurrent(
                        target.host,
                        target.port,
                        data,
                        concurrency=concurrency,
                        duration=args.duration,
                    )
                )
                harness = own_cpu_seconds() + cpu_seconds(fake.pids()) - harness_before
                harness_ms = harness * 1000 / max(1, series.count)
                cpu_ms = None
                if side == "gateway" and series.count:
                    cpu_ms = (cpu_seconds(gunicorn.pids()) - before) * 1000 / series.count
                result.load[(kind, concurrency, side)] = (series, cpu_ms, harness_ms)
                if profiler is not None:
                    result.profiles[f"{kind} c={concurrency}"] = profiler.finish()


def run_slow(
    direct: Target,
    gateway: Target | None,
    gunicorn: Gunicorn | None,
    db: Database | None,
    args,
    result: PassResult,
) -> None:
    sides = [("direct", direct, None)]
    if gateway is not None:
        sides.append(("gateway", gateway, gunicorn))
    for count, ramp in [(c, w) for w in args.ramps for c in args.streams]:
        for side, target, server in sides:
            say(f"[{result.db}] 3. {count} slow streams over {ramp:g} s, {side}")
            run = loadgen.burst(
                target.host,
                target.port,
                target.request("slow"),
                count=count,
                timeout=NATURAL_STREAM_SECONDS + 30,
                ramp=ramp,
            )
            if server is None:
                found = SlowResult(asyncio.run(run))
            else:
                before = cpu_seconds(server.pids())
                with Sampler(server.pids, db) as sampler:
                    series = asyncio.run(run)
                found = SlowResult(
                    series,
                    sampler.peak_rss,
                    sampler.peak_db,
                    (cpu_seconds(server.pids()) - before) * 1000 / count,
                    sorted(sampler.peak_sockets.values(), reverse=True),
                )
            result.slow[(count, ramp, side)] = found
            if found.series.errors:
                say(
                    f"[{result.db}]    {found.series.errors} errors, e.g. {found.series.error_samples}"
                )


FEATURES = (
    ("plain", "no limits"),
    ("limits", "rpm + tpm + max_parallel"),
    ("budget", "every limit + USD and token budgets"),
)


def pg_counters(db: Database) -> tuple[int, int] | None:
    """PostgreSQL's WAL position (bytes) and committed transactions of the bench database."""
    if db.name != "postgresql":
        return None
    import psycopg

    with psycopg.connect(db.pg_maintenance_url, autocommit=True, connect_timeout=5) as conn:
        wal = conn.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn").fetchone()[0]
        commits = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (db.pg_dbname,)
        ).fetchone()[0]
    return int(wal), int(commits)


def run_features(
    direct: Target,
    gateways: dict[str, Target],
    gunicorn: Gunicorn,
    db: Database,
    args,
    result: PassResult,
) -> None:
    """The cost of limits and budgets: the same call with keys that differ only in them."""
    targets = {"direct": (direct.host, direct.port, direct.request("openai"))}
    for name, _ in FEATURES:
        target = gateways[name]
        targets[name] = (target.host, target.port, target.request("openai"))
    say(f"[{result.db}] 5. features, sequential: {args.sequential} interleaved rounds")
    series = asyncio.run(loadgen.sequential(targets, args.sequential, warmup=100))
    base = series["direct"].latencies
    for name, _ in FEATURES:
        lat = series[name].latencies
        result.features[name] = {
            "seq": series[name],
            "overhead": (
                percentile(lat, 50) - percentile(base, 50),
                percentile(lat, 99) - percentile(base, 99),
            ),
            "rates": [],
            "cpu_ms": [],
            "wal_bytes": [],
            "commits": [],
            "server_cpu_ms": [],
            "errors": series[name].errors,
        }
    for round_ in range(args.feature_rounds):
        # Alternating order, so a neighbour's load falls on every key alike.
        order = FEATURES if round_ % 2 == 0 else FEATURES[::-1]
        for name, _ in order:
            target = gateways[name]
            data = target.request("openai")
            say(f"[{result.db}] 5. features, JSON c=64 {name}: {args.duration:.0f}s")
            asyncio.run(
                loadgen.concurrent(target.host, target.port, data, concurrency=64, duration=0.5)
            )
            profiler = None
            if args.profile and round_ == 0:
                # Wall time (idle samples too): a limited key's extra cost may be waiting.
                profiler = Profiler(
                    gunicorn.proc.pid,
                    Path(args.data_dir).resolve() / f"profile-{result.db}-features-{name}.txt",
                    args.duration,
                    args.profile_rate,
                    idle=True,
                )
            before = cpu_seconds(gunicorn.pids())
            split_before = {pid: cpu_seconds([pid]) for pid in gunicorn.pids()}
            pg_before = pg_counters(db)
            server_before = cpu_seconds(server_pids()) if pg_before else None
            s = asyncio.run(
                loadgen.concurrent(
                    target.host, target.port, data, concurrency=64, duration=args.duration
                )
            )
            found = result.features[name]
            pg_after = pg_counters(db)
            if pg_before and pg_after and s.count:
                # Includes what else runs on the server meanwhile (autovacuum, other
                # databases' WAL): an upper figure on a shared machine.
                found["wal_bytes"].append((pg_after[0] - pg_before[0]) / s.count)
                found["commits"].append((pg_after[1] - pg_before[1]) / s.count)
                found["server_cpu_ms"].append(
                    (cpu_seconds(server_pids()) - server_before) * 1000 / s.count
                )
            found["rates"].append(s.rate)
            found["cpu_ms"].append((cpu_seconds(gunicorn.pids()) - before) * 1000 / max(1, s.count))
            found["errors"] += s.errors
            # Each process's share of the gateway's CPU: the kernel hands the 64
            # connections to the workers unevenly, and one worker is at most one core.
            split = sorted(
                (cpu_seconds([pid]) - spent for pid, spent in split_before.items()), reverse=True
            )
            found.setdefault("cpu_split", []).append([round(x, 2) for x in split])
            if profiler is not None:
                result.profiles[f"features {name} (wall)"] = profiler.finish()
            if s.errors:
                say(f"[{result.db}]    {s.errors} errors, e.g. {s.error_samples}")


def run_costs(env: dict[str, str], args, result: PassResult) -> None:
    say(f"[{result.db}] 4. key check and log writes in-process, {args.iterations} each")
    out = subprocess.run(
        [PYTHON, str(ROOT / "bench" / "inproc.py"), "costs", "--iterations", str(args.iterations)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if out.returncode != 0:
        raise SystemExit(f"bench: the in-process costs failed:\n{out.stderr[-2000:]}")
    result.costs = json.loads(out.stdout.strip().splitlines()[-1])


def run_pass(kind: str, fake: FakeProviderProcess, args) -> PassResult:
    result = PassResult(db=kind)
    sections = args.sections
    direct = Target(
        "127.0.0.1",
        fake.port,
        {"Authorization": "Bearer sk-bench-direct"},
        {"x-api-key": "sk-ant-bench-direct"},
    )
    if args.direct_only:
        result.db = "direct only"
        if 1 in sections:
            run_sequential(direct, None, args, result)
        if 2 in sections:
            run_load(direct, None, None, fake, args, result)
        if 3 in sections:
            run_slow(direct, None, None, None, args, result)
        return result

    db, env, keys = provisioned_database(kind, fake, args)
    log_path = Path(args.data_dir).resolve() / f"gunicorn-{kind}.log"
    say(f"[{kind}] starting gunicorn (output in {log_path})")
    gunicorn = Gunicorn(env, args, log_path)
    try:
        result.workers = gunicorn.describe()
        gateway = Target(
            "127.0.0.1",
            gunicorn.port,
            {"Authorization": f"Bearer {keys['openai_key']}"},
            {"x-api-key": keys["anthropic_key"]},
        )
        warm_up(gateway, result)
        if 1 in sections:
            run_sequential(direct, gateway, args, result)
        if 2 in sections:
            run_load(direct, gateway, gunicorn, fake, args, result)
        if 3 in sections:
            run_slow(direct, gateway, gunicorn, db, args, result)
        if 5 in sections:
            gateways = {
                "plain": gateway,
                "limits": gateway.with_openai_key(keys["limits_key"]),
                "budget": gateway.with_openai_key(keys["budget_key"]),
            }
            run_features(direct, gateways, gunicorn, db, args, result)
    finally:
        gunicorn.stop()
    if 4 in sections:
        run_costs(env, args, result)
    return result
