"""upstreams.routing: which upstreams serve a model, and the order they are tried in."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from dataclasses import dataclass, field

import pytest

from upstreams import routing


@dataclass
class R:
    name: str
    provider: str = "openai"
    models: tuple[str, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    priority: int = 0
    weight: int = 1
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@pytest.mark.parametrize(
    ("pattern", "model", "matches"),
    [
        ("gpt-4o", "gpt-4o", True),
        ("gpt-4o", "gpt-4o-mini", False),
        ("gpt-4o*", "gpt-4o-mini", True),
        ("gpt-4o*", "gpt-4", False),
        ("*", "anything/at:all", True),
        ("claude-*-sonnet*", "claude-3-5-sonnet-20241022", True),
        ("claude-*-sonnet*", "claude-3-opus", False),
        ("*/llama-*", "meta/llama-3", True),
        ("gpt.4", "gpt-4", False),  # only * is special
        ("gpt-[4]", "gpt-4", False),
        ("gpt-?", "gpt-4", False),
        ("GPT-4o", "gpt-4o", False),  # case-sensitive, as providers are
    ],
)
def test_model_matches(pattern, model, matches):
    assert routing.model_matches(pattern, model) is matches


@pytest.mark.parametrize(
    ("models", "aliases", "model", "serves", "sent"),
    [
        ((), {}, "whatever", True, "whatever"),  # empty list: any model
        (("gpt-4o",), {}, "gpt-4o", True, "gpt-4o"),
        (("gpt-4o",), {}, "claude-x", False, "claude-x"),
        (("gpt-*",), {}, "gpt-x", True, "gpt-x"),
        (("gpt-4o",), {"fast": "gpt-4o-mini"}, "fast", True, "gpt-4o-mini"),
        ((), {"fast": "gpt-4o-mini"}, "fast", True, "gpt-4o-mini"),
    ],
)
def test_serves_and_the_model_sent_upstream(models, aliases, model, serves, sent):
    route = R("a", models=models, aliases=aliases)
    assert routing.serves(route, model) is serves
    assert routing.upstream_model(route, model) == sent


def test_serving_prefers_the_dialect_and_falls_back_to_any():
    gpt = R("gpt", provider="openai", models=("gpt-*",))
    azure = R("azure", provider="azure", models=("gpt-*",))
    claude = R("claude", provider="anthropic", models=("claude-*",))
    anything = R("any", provider="anthropic")
    routes = [gpt, azure, claude, anything]
    assert routing.serving(routes, model="gpt-4o", dialect="openai") == [gpt, azure]
    assert routing.serving(routes, model="claude-3", dialect="anthropic") == [claude, anything]
    # No upstream of the dialect serves it: the ones that do, whatever they speak.
    assert routing.serving(routes, model="claude-3", dialect="openai") == [claude, anything]
    assert routing.serving([gpt], model="claude-3", dialect="openai") == []


def test_priority_first_and_cooling_last():
    first, second, third = R("first", priority=-1), R("second"), R("third", priority=5)
    cooling = R("cooling", priority=-10)
    order = routing.ordered([third, cooling, second, first], cooling={cooling.id})
    assert [r.name for r in order] == ["first", "second", "third", "cooling"]


def test_weights_three_to_one_share_the_first_place_75_25():
    heavy, light = R("heavy", weight=3), R("light", weight=1)
    rng = random.Random(15)
    firsts = Counter(routing.ordered([light, heavy], rng=rng)[0].name for _ in range(4000))
    assert abs(firsts["heavy"] / 4000 - 0.75) < 0.03
    # Every order still holds both, each once (never twice to one upstream).
    assert sorted(r.name for r in routing.ordered([light, heavy], rng=rng)) == ["heavy", "light"]
