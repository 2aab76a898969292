"""Which upstreams serve a model, and in what order to try them. Pure: no I/O, no Django.

An upstream serves a model when its `models` list is empty, names it, matches it
with a `*` pattern, or has it as an alias key. Candidates are tried by `priority`
(lower first); among equal priorities they are drawn at random by `weight`; cooling
upstreams come after every other. The whole decision runs on the registry's
cached snapshot, so routing costs microseconds, not a query.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Protocol

# Providers that speak each dialect (dialects.dialect_for_path names the request's).
DIALECT_PROVIDERS = {"openai": ("openai", "azure"), "anthropic": ("anthropic",)}


class Routable(Protocol):
    id: object
    provider: str
    models: tuple[str, ...]
    aliases: Mapping[str, str]
    priority: int
    weight: int


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str]:
    # Only `*` is special (any run of characters, "/" included); everything else is literal.
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def model_matches(pattern: str, model: str) -> bool:
    """Whether a name or `*` pattern matches a model name (case-sensitive, as providers are)."""
    if "*" not in pattern:
        return pattern == model
    return _compiled(pattern).fullmatch(model) is not None


def matches_any(patterns: Iterable[str], model: str) -> bool:
    return any(model_matches(p, model) for p in patterns)


def serves(route: Routable, model: str) -> bool:
    """Whether an upstream serves a model: any when its list is empty, else by name,
    pattern or alias key."""
    return not route.models or model in route.aliases or matches_any(route.models, model)


def upstream_model(route: Routable, model: str) -> str:
    """The model name sent to this upstream for a requested one (its alias, or itself)."""
    return route.aliases.get(model, model)


def speaks(route: Routable, dialect: str) -> bool:
    return route.provider in DIALECT_PROVIDERS.get(dialect, (dialect,))


def serving(routes: Iterable[Routable], *, model: str, dialect: str) -> list[Routable]:
    """The routes that serve a model, preferring those that speak the request's dialect.

    When none speaks it, every route that serves the model is kept: a client may send
    OpenAI's shape to an upstream that understands it (as it could before routing).
    """
    by_model = [r for r in routes if serves(r, model)]
    speaking = [r for r in by_model if speaks(r, dialect)]
    return speaking or by_model


def ordered(
    routes: Sequence[Routable],
    *,
    cooling: Collection[object] = (),
    rng: random.Random | None = None,
) -> list[Routable]:
    """Routes in the order to try them: priority (lower first), weighted random within
    a priority, and the cooling ones (by id) after all the others, in the same order."""
    draw = (rng or random).random
    # Weighted order without replacement (Efraimidis-Spirakis): sort by u ** (1/w).
    keyed = [
        (r.id in cooling, r.priority, -(draw() ** (1.0 / max(r.weight, 1))), index)
        for index, r in enumerate(routes)
    ]
    keyed.sort()
    return [routes[k[3]] for k in keyed]
