"""Forward with failover: try the candidates in order until one gives an answer to relay.

The next candidate is tried when an upstream cannot be connected to or answers 429,
500, 502, 503, 504 or 529, and only then: never after a timeout waiting for the
answer (the upstream may still be working on it), never twice to one upstream, never
beyond PROXY_MAX_ATTEMPTS upstreams or the request's deadline, never for a pinned
upstream, and never once a byte went to the client (the loop ends at the first
answer it hands back). When every attempt fails, the last answer received is handed
back unchanged; with none, the gateway's 502 (or 504 when the last one timed out).

Each attempt's outcome goes to upstreams.health (failures in a row, cooling); a 429
fails over but does not count (it is the upstream's limit, not its health).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from proxy.errors import UpstreamConnectTimeout, UpstreamTimeout, UpstreamUnreachable
from upstreams import health

# Statuses that say "this upstream, not the request": overloaded, limited, failing.
FAILOVER_STATUSES = frozenset({429, 500, 502, 503, 504, 529})


@dataclass
class Sent:
    """One attempt that got an answer's headers back (built by the caller's `attempt`)."""

    route: object
    answer: object  # forward.UpstreamAnswer
    extra: dict = field(default_factory=dict)  # the caller's own per-attempt facts


@dataclass
class Outcome:
    sent: Sent
    attempts: int  # upstreams tried, this one included
    failures: list[str]  # "name: reason" of each failed attempt before it, in order


class AllAttemptsFailed(UpstreamUnreachable):
    """Every candidate failed before answering; the message lists each attempt."""

    def __init__(self, message: str, *, attempts: int, last_route):
        super().__init__(message, reason="all attempts failed")
        self.attempts = attempts
        self.last_route = last_route


class AttemptTimedOut(UpstreamTimeout):
    """An upstream took the request and did not answer in time: no failover."""

    def __init__(self, message: str, *, attempts: int, last_route):
        super().__init__(message)
        self.attempts = attempts
        self.last_route = last_route


def forward_with_failover(
    *,
    candidates: Sequence,
    pinned: bool,
    attempt: Callable[[object, float], Sent],
    max_attempts: int,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Try `attempt(route, seconds_left)` on each candidate in turn (see the module doc).

    Raises AllAttemptsFailed (502) or AttemptTimedOut (504), each naming how many
    upstreams were tried and the failures as "name: reason; …".
    """
    limit = 1 if pinned else max(1, max_attempts)
    failures: list[str] = []
    last: Sent | None = None  # the last answer received that failed over
    last_route = None
    timed_out = False
    message = "The upstream could not be reached"
    for index, route in enumerate(candidates[:limit]):
        left = deadline - clock()
        if index and left <= 0:
            break
        last_route = route
        try:
            sent = attempt(route, left)
        except UpstreamConnectTimeout as exc:
            _failed(route, failures, exc.reason, counts=True)
            timed_out, message = True, str(exc)
            continue
        except UpstreamTimeout as exc:
            _failed(route, failures, exc.reason, counts=True)
            if last is not None:
                last.answer.close()
            raise AttemptTimedOut(
                _summary(str(exc), failures), attempts=len(failures), last_route=route
            ) from None
        except UpstreamUnreachable as exc:
            _failed(route, failures, exc.reason, counts=True)
            timed_out, message = False, str(exc)
            continue
        status = sent.answer.status
        if status in FAILOVER_STATUSES:
            _failed(route, failures, str(status), counts=status != 429)
            if last is not None:
                last.answer.close()
            last = sent
            continue
        health.attempt_success_record(upstream_id=route.id, name=route.name)
        if last is not None:
            last.answer.close()
        return Outcome(sent, attempts=len(failures) + 1, failures=failures)
    if last is not None:
        # The last answer received, unchanged; every failed attempt is listed, its own too.
        return Outcome(last, attempts=len(failures), failures=failures)
    tried = len(failures)
    if timed_out:
        raise AttemptTimedOut(_summary(message, failures), attempts=tried, last_route=last_route)
    raise AllAttemptsFailed(_summary(message, failures), attempts=tried, last_route=last_route)


def _failed(route, failures: list[str], reason: str, *, counts: bool) -> None:
    failures.append(f"{route.name}: {reason}")
    health.attempt_failure_record(
        upstream_id=route.id, name=route.name, reason=reason, counts=counts
    )


def _summary(message: str, failures: list[str]) -> str:
    if len(failures) <= 1:
        return message
    return f"{message} ({'; '.join(failures)})"
