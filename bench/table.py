"""The benchmark's table (and its raw figures as JSON): one row per measure, a column
for the direct call and one per database pass."""

from __future__ import annotations

import os
import sys
import time

from bench.cases import FEATURES, NATURAL_STREAM_SECONDS, ON_TIME, PassResult
from bench.loadgen import percentile

# --- the table -------------------------------------------------------------------------


def ms(value: float) -> str:
    return f"{value * 1000:.2f}"


def pair(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{ms(percentile(values, 50))} / {ms(percentile(values, 99))}"


def with_errors(text: str, series) -> str:
    return f"{text} ({series.errors} err)" if series.errors else text


def build_rows(results: list[PassResult], args) -> list[tuple[str, ...]]:
    first = results[0]
    rows: list[tuple[str, ...]] = []

    def row(label: str, direct: str, per_pass, target: str = "") -> None:
        rows.append((label, direct, *(per_pass(r) for r in results), target))

    for dialect, name in (("openai", "OpenAI chat"), ("anthropic", "Anthropic messages")):
        if (dialect, "direct") not in first.seq:
            continue
        direct = first.seq[(dialect, "direct")]
        row(
            f"1 sequential {name}, p50 / p99 ms",
            with_errors(pair(direct.latencies), direct),
            lambda r, d=dialect: (
                with_errors(pair(r.seq[(d, "gateway")].latencies), r.seq[(d, "gateway")])
                if (d, "gateway") in r.seq
                else "-"
            ),
        )

        def overhead(r, d=dialect) -> str:
            if (d, "gateway") not in r.seq:
                return "-"
            g, b = r.seq[(d, "gateway")].latencies, r.seq[(d, "direct")].latencies
            return (
                f"{ms(percentile(g, 50) - percentile(b, 50))} / "
                f"{ms(percentile(g, 99) - percentile(b, 99))}"
            )

        row(
            "  overhead (gateway - direct), p50 / p99 ms",
            "",
            overhead,
            "<= 1.5 / <= 4 (SQLite)" if dialect == "openai" else "",
        )

    for kind in ("json", "stream"):
        for concurrency in (16, 64):
            if (kind, concurrency, "direct") not in first.load:
                continue
            label = "JSON" if kind == "json" else "stream"
            direct, _, direct_harness = first.load[(kind, concurrency, "direct")]

            def get(r, k=kind, c=concurrency):
                return r.load.get((k, c, "gateway"), (None, None, None))

            row(
                f"2 {label} c={concurrency}, requests/s",
                with_errors(f"{direct.rate:.0f}", direct),
                lambda r, g=get: with_errors(f"{g(r)[0].rate:.0f}", g(r)[0]) if g(r)[0] else "-",
                ">= 700" if (kind, concurrency) == ("json", 64) else "",
            )
            row(
                "  latency p50 / p99 ms",
                pair(direct.latencies),
                lambda r, g=get: pair(g(r)[0].latencies) if g(r)[0] else "-",
            )
            if kind == "stream":
                row(
                    "  time to first byte p50 / p99 ms",
                    pair(direct.ttfbs),
                    lambda r, g=get: pair(g(r)[0].ttfbs) if g(r)[0] else "-",
                )
            row(
                "  gateway CPU per request ms",
                "",
                lambda r, g=get: f"{g(r)[1]:.2f}" if g(r)[1] is not None else "-",
            )
            row(
                "  harness CPU per request (load generator + fake) ms",
                f"{direct_harness:.2f}",
                lambda r, g=get: f"{g(r)[2]:.2f}" if g(r)[2] is not None else "-",
            )

    def stretch(series) -> str:
        if not series.latencies:
            return "-"
        p50 = percentile(series.latencies, 50) / NATURAL_STREAM_SECONDS - 1
        worst = max(series.latencies) / NATURAL_STREAM_SECONDS - 1
        return f"{p50 * 100:+.1f}% / {worst * 100:+.1f}%"

    def on_time(series) -> str:
        late = NATURAL_STREAM_SECONDS * ON_TIME
        return str(sum(1 for latency in series.latencies if latency <= late))

    for n, ramp in [(c, w) for w in args.ramps for c in args.streams]:
        if (n, ramp, "direct") not in first.slow:
            continue
        direct = first.slow[(n, ramp, "direct")].series

        def slow(field_name: str, show, n=n, ramp=ramp):
            def cell(r) -> str:
                found = r.slow.get((n, ramp, "gateway"))
                value = getattr(found, field_name, None) if found else None
                return show(value) if value is not None else "-"

            return cell

        label = f"3 {n} slow streams (20 x 250 ms, started over {ramp:g} s): errors"
        row(label, str(direct.errors), slow("series", lambda s: str(s.errors)), "0")
        row(
            f"  finished on time (within {ON_TIME:g} x 5 s)",
            on_time(direct),
            slow("series", on_time),
            str(n),
        )
        row(
            "  streams open at once (peak)",
            str(direct.peak_open),
            slow("series", lambda s: str(s.peak_open)),
        )
        ttfb = slow("series", lambda s: pair(s.ttfbs))
        row("  time to first byte p50 / p99 ms", pair(direct.ttfbs), ttfb, "p99 < 100")
        row("  stretch beyond 5 s, p50 / max", stretch(direct), slow("series", stretch), "<= +5%")
        row(
            "  peak RSS, gunicorn master + workers, MiB",
            "",
            slow("peak_rss", lambda v: f"{v / 2**20:.0f}"),
            "< 1024",
        )
        row("  peak database connections", "", slow("peak_db", str), "bounded by the pool")
        row("  gateway CPU per stream ms", "", slow("cpu_ms", lambda v: f"{v:.1f}"))
        row(
            "  peak sockets per worker (client + upstream)",
            "",
            slow("sockets", lambda v: " / ".join(map(str, v))),
        )

    def cost(name: str):
        def cell(r) -> str:
            c = r.costs.get(name)
            return f"{c['mean_us']:.0f} / {c['p99_us']:.0f}" if c else "-"

        return cell

    if any(r.costs for r in results):
        row("4 key check, warm cache, mean / p99 us", "", cost("key_authenticate"))
        row("  upstream choice, mean / p99 us", "", cost("upstream_choose"))
        row("  routing by model (5 upstreams), mean / p99 us", "", cost("upstream_candidates"))
        row("  log_open + log_finish, mean / p99 us", "", cost("log_open_finish"))
        row("  price lookup + cost, mean / p99 us", "", cost("price_and_cost"))
        if any("log_open_finish_released" in r.costs for r in results):
            row(
                "  the same, connection back to the pool between, us",
                "",
                cost("log_open_finish_released"),
            )

    def feature(name: str, show):
        def cell(r) -> str:
            found = r.features.get(name)
            return show(found) if found else "-"

        return cell

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        return ordered[len(ordered) // 2]

    if any(r.features for r in results):
        for name, label in FEATURES:
            row(
                f"5 {label}: overhead p50 / p99 ms",
                "",
                feature(
                    name,
                    lambda f: with_errors(
                        f"{ms(f['overhead'][0])} / {ms(f['overhead'][1])}", f["seq"]
                    ),
                ),
                "" if name == "plain" else "<= no limits + 0.3 (p50)",
            )
            row(
                "  JSON c=64 requests/s (median) / gateway CPU per request ms",
                "",
                feature(
                    name,
                    lambda f: (
                        f"{median(f['rates']):.0f} / {median(f['cpu_ms']):.2f}"
                        + (f" ({f['errors']} err)" if f["errors"] else "")
                    ),
                ),
                "" if name == "plain" else ">= 85% of no limits",
            )
            row(
                "  PostgreSQL: WAL bytes / transactions / server CPU ms per request",
                "",
                feature(
                    name,
                    lambda f: (
                        f"{median(f['wal_bytes']):.0f} / {median(f['commits']):.1f}"
                        f" / {median(f['server_cpu_ms']):.2f}"
                        if f["wal_bytes"]
                        else "-"
                    ),
                ),
            )
    return rows


def print_table(results: list[PassResult], args) -> None:
    headers = ("measure", "direct", *(f"gateway {r.db}" for r in results), "target")
    rows = build_rows(results, args)
    widths = [max(len(str(x[i])) for x in [headers, *rows]) for i in range(len(headers))]

    def line(cells) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    workers = ", ".join(f"{r.db}: {r.workers}" for r in results if r.workers)
    print(
        f"\nBenchmark {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, gunicorn.conf.py "
        f"({workers or 'no gateway'}); command: {' '.join(['bench/run.py', *sys.argv[1:]])}"
    )
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for r in rows:
        print(line(r))


def raw_figures(r: PassResult) -> dict:
    def s(series) -> dict:
        return {
            "count": series.count,
            "errors": series.errors,
            "elapsed": series.elapsed,
            "p50": percentile(series.latencies, 50),
            "p99": percentile(series.latencies, 99),
            "ttfb_p50": percentile(series.ttfbs, 50),
            "ttfb_p99": percentile(series.ttfbs, 99),
            "errors_seen": series.error_samples,
        }

    return {
        "db": r.db,
        "workers": r.workers,
        "sequential": {f"{d}/{side}": s(v) for (d, side), v in r.seq.items()},
        "load": {
            f"{k}/c{c}/{side}": {**s(v), "rate": v.rate, "cpu_ms": cpu}
            for (k, c, side), (v, cpu, _) in r.load.items()
        },
        "slow": {
            f"{count}/{ramp:g}s/{side}": {
                **s(v.series),
                "peak_rss": v.peak_rss,
                "peak_db": v.peak_db,
                "cpu_ms": v.cpu_ms,
                "sockets": v.sockets,
            }
            for (count, ramp, side), v in r.slow.items()
        },
        "costs": r.costs,
        "features": {
            name: {
                "overhead_p50": f["overhead"][0],
                "overhead_p99": f["overhead"][1],
                "rates": f["rates"],
                "cpu_ms": f["cpu_ms"],
                "wal_bytes": f["wal_bytes"],
                "commits": f["commits"],
                "server_cpu_ms": f["server_cpu_ms"],
                "errors": f["errors"],
                "cpu_split": f.get("cpu_split", []),
            }
            for name, f in r.features.items()
        },
    }
