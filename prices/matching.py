"""Which price applies to a model on an upstream: the most specific match. Pure, no Django.

Specificity, strongest first: an upstream's own price over one for any upstream; an
exact model name over a `*` pattern; the longer pattern over the shorter (counting
its literal characters, then its length). Patterns use `*` only (any run of
characters, possibly empty); every other character matches itself, case included.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PriceEntry(Generic[T]):
    model: str
    upstream_id: uuid.UUID | None
    value: T


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")), re.DOTALL)


def model_matches(pattern: str, model: str) -> bool:
    """Whether `model` is `pattern` itself or, when it has `*`, matches it."""
    if "*" not in pattern:
        return pattern == model
    return _compiled(pattern).fullmatch(model) is not None


def _specificity(entry: PriceEntry, upstream_id: uuid.UUID | None) -> tuple:
    pattern = entry.model
    exact = "*" not in pattern
    return (
        entry.upstream_id is not None and entry.upstream_id == upstream_id,
        exact,
        len(pattern.replace("*", "")),
        len(pattern),
        # A stable tie-break between equal specificities: the pattern text itself.
        pattern,
    )


def best_match(
    entries: Iterable[PriceEntry[T]], *, model: str, upstream_id: uuid.UUID | None
) -> PriceEntry[T] | None:
    """The most specific entry for this model on this upstream, or None."""
    best = None
    best_rank = None
    for entry in entries:
        if entry.upstream_id is not None and entry.upstream_id != upstream_id:
            continue
        if not model_matches(entry.model, model):
            continue
        rank = _specificity(entry, upstream_id)
        if best_rank is None or rank > best_rank:
            best, best_rank = entry, rank
    return best
