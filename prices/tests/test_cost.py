from dataclasses import dataclass
from decimal import Decimal

import pytest

from prices.cost import Rates, cost_usd
from proxy.usage import Usage, usage_from_object

D = Decimal
RATES = Rates.resolve(input=D("2.5"), output=D("10"), cache_read=D("1.25"), cache_write=D("3.75"))


def test_cache_rates_default_to_the_input_rate():
    rates = Rates.resolve(input=D("3"), output=D("15"))
    assert (rates.cache_read, rates.cache_write) == (D("3"), D("3"))


@pytest.mark.parametrize(
    ("name", "usage_object", "dialect", "expected"),
    [
        # OpenAI chat: 1000 prompt of which 400 cached, 200 completion (reasoning inside)
        (
            "openai chat with cache",
            {
                "prompt_tokens": 1000,
                "completion_tokens": 200,
                "total_tokens": 1200,
                "prompt_tokens_details": {"cached_tokens": 400},
                "completion_tokens_details": {"reasoning_tokens": 150},
            },
            "openai",
            (600 * D("2.5") + 400 * D("1.25") + 200 * D("10")) / 1_000_000,
        ),
        (
            "openai chat without details",
            {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
            "openai",
            (11 * D("2.5") + 3 * D("10")) / 1_000_000,
        ),
        (
            "openai responses with cache",
            {
                "input_tokens": 500,
                "input_tokens_details": {"cached_tokens": 100},
                "output_tokens": 50,
                "total_tokens": 550,
            },
            "openai",
            (400 * D("2.5") + 100 * D("1.25") + 50 * D("10")) / 1_000_000,
        ),
        # Anthropic: input_tokens exclude the cache counts, which are billed on top
        (
            "anthropic with cache read and write",
            {
                "input_tokens": 10,
                "cache_read_input_tokens": 3000,
                "cache_creation_input_tokens": 200,
                "output_tokens": 50,
            },
            "anthropic",
            (10 * D("2.5") + 3000 * D("1.25") + 200 * D("3.75") + 50 * D("10")) / 1_000_000,
        ),
        ("zero tokens cost zero", {"prompt_tokens": 0, "completion_tokens": 0}, "openai", D(0)),
    ],
)
def test_cost_per_dialect(name, usage_object, dialect, expected):
    usage = usage_from_object(usage_object, dialect)
    assert cost_usd(rates=RATES, usage=usage) == expected


@pytest.mark.parametrize(
    "usage",
    [
        Usage(),
        Usage(10, None, None, None, None),  # a stream cut before its final count
        Usage(None, 5, None, None, None),
    ],
)
def test_unknown_tokens_cost_unknown_never_zero(usage):
    assert cost_usd(rates=RATES, usage=usage) is None


def test_no_price_costs_unknown():
    assert cost_usd(rates=None, usage=Usage(10, 5, 15, None, None)) is None


def test_cost_is_exact_to_twelve_places():
    rates = Rates.resolve(input=D("0.000001"), output=D("0.000003"))
    cost = cost_usd(rates=rates, usage=Usage(1, 1, 2, None, None))
    assert cost == D("0.000000000004")
    assert cost.as_tuple().exponent == -12


def test_a_cached_count_above_the_prompt_is_not_billed_negative():
    cost = cost_usd(rates=RATES, usage=Usage(10, 0, 10, 50, None))
    assert cost == (10 * D("1.25")) / 1_000_000


def test_any_object_with_the_counts_can_be_priced():
    @dataclass
    class Estimate:  # e.g. a budget's worst case: no cache counts at all
        prompt_tokens: int | None
        completion_tokens: int | None
        cache_read_tokens: int | None = None
        cache_write_tokens: int | None = None

    assert cost_usd(rates=RATES, usage=Estimate(1_000_000, 1_000_000)) == D("12.5")
