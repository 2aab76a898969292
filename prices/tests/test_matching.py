import uuid

import pytest

from prices.matching import PriceEntry, best_match, model_matches

UP = uuid.UUID("00000000-0000-0000-0000-00000000000a")
OTHER = uuid.UUID("00000000-0000-0000-0000-00000000000b")


@pytest.mark.parametrize(
    ("pattern", "model", "matches"),
    [
        ("gpt-4o", "gpt-4o", True),
        ("gpt-4o", "gpt-4o-mini", False),
        ("gpt-4o", "GPT-4o", False),
        ("gpt-4o*", "gpt-4o", True),
        ("gpt-4o*", "gpt-4o-mini", True),
        ("*", "anything", True),
        ("*", "", True),
        ("claude-*-sonnet*", "claude-3-5-sonnet-20241022", True),
        ("claude-*-sonnet*", "claude-3-opus", False),
        ("gpt.4", "gpt-4", False),  # a dot is a dot, not any character
        ("a[b]", "a[b]", True),
        ("*mini", "gpt-4o-mini", True),
        ("*mini", "gpt-4o-mini-2024", False),
    ],
)
def test_model_patterns_match_names_with_star_only(pattern, model, matches):
    assert model_matches(pattern, model) is matches


TABLE = [
    PriceEntry("*", None, "any model"),
    PriceEntry("gpt-*", None, "gpt family"),
    PriceEntry("gpt-4o*", None, "gpt-4o family"),
    PriceEntry("gpt-4o", None, "gpt-4o exact"),
    PriceEntry("gpt-*", UP, "gpt family on UP"),
    PriceEntry("claude-3-5-sonnet", OTHER, "sonnet on OTHER"),
]


@pytest.mark.parametrize(
    ("model", "upstream_id", "expected"),
    [
        ("gpt-4o", None, "gpt-4o exact"),
        ("gpt-4o-mini", None, "gpt-4o family"),
        ("gpt-3.5-turbo", None, "gpt family"),
        ("llama", None, "any model"),
        # an upstream's own price beats any upstream's, even an exact name
        ("gpt-4o", UP, "gpt family on UP"),
        ("gpt-4o", OTHER, "gpt-4o exact"),
        ("claude-3-5-sonnet", OTHER, "sonnet on OTHER"),
        ("claude-3-5-sonnet", UP, "any model"),
    ],
)
def test_the_most_specific_price_wins(model, upstream_id, expected):
    found = best_match(TABLE, model=model, upstream_id=upstream_id)
    assert found is not None and found.value == expected


def test_no_price_matches_an_unpriced_model():
    table = [PriceEntry("gpt-*", None, 1), PriceEntry("claude-*", UP, 2)]
    assert best_match(table, model="claude-3", upstream_id=OTHER) is None
    assert best_match([], model="gpt-4o", upstream_id=None) is None


def test_the_longer_pattern_wins_whatever_the_order():
    a = PriceEntry("gpt-4*", None, "longer")
    b = PriceEntry("gpt-*", None, "shorter")
    assert best_match([a, b], model="gpt-4o", upstream_id=None).value == "longer"
    assert best_match([b, a], model="gpt-4o", upstream_id=None).value == "longer"
