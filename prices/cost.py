"""What a request cost: token counts times a model's rates. Pure, exact (Decimal), no Django.

Rates are USD per million tokens. Which tokens a count includes depends on the dialect
(see proxy.usage): OpenAI's prompt_tokens (chat) and input_tokens (Responses) already
include the cached tokens, so only the uncached rest is billed at `input`; Anthropic's
input_tokens exclude cache reads and cache writes, which are billed on top. Reasoning
tokens are part of OpenAI's completion tokens and billed at `output`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

PER_MILLION = Decimal(1_000_000)
# Rates are stored with 6 decimal places, so a count times a rate over a million has
# at most 12: quantizing to 12 places keeps every cost exact.
COST_PLACES = Decimal("1e-12")


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens. cache_read and cache_write are already resolved (null: input)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal

    @classmethod
    def resolve(
        cls,
        *,
        input: Decimal,  # noqa: A002 - the contract's field name
        output: Decimal,
        cache_read: Decimal | None = None,
        cache_write: Decimal | None = None,
    ) -> Rates:
        return cls(
            input=input,
            output=output,
            cache_read=input if cache_read is None else cache_read,
            cache_write=input if cache_write is None else cache_write,
        )


def cost_usd(*, rates: Rates | None, usage) -> Decimal | None:
    """The cost in USD of one request's usage, or None when the price or the tokens are unknown.

    `usage` has prompt_tokens, completion_tokens, cache_read_tokens, cache_write_tokens
    (None: unknown; an unknown cache count is taken as no cached tokens) and
    `cache_outside_prompt` (True for Anthropic's counts; absent means False, OpenAI's).
    Never 0 for unknown: an unknown prompt or completion count gives None.
    """
    if rates is None or usage is None:
        return None
    prompt = usage.prompt_tokens
    completion = usage.completion_tokens
    if prompt is None or completion is None:
        return None
    cache_read = usage.cache_read_tokens or 0
    cache_write = usage.cache_write_tokens or 0
    if getattr(usage, "cache_outside_prompt", False):
        uncached = prompt
    else:
        # Cached tokens are inside the prompt count; a count that claims more cached
        # than prompt tokens is clamped rather than billed negative.
        cache_read = min(cache_read, prompt)
        uncached = prompt - cache_read
    micro_usd = (
        uncached * rates.input
        + cache_read * rates.cache_read
        + cache_write * rates.cache_write
        + completion * rates.output
    )
    return (micro_usd / PER_MILLION).quantize(COST_PLACES)
