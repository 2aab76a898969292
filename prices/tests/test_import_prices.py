"""manage.py import_prices: our JSON list and LiteLLM's format, --dry-run, and bad files."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from prices.models import Price
from prices.selectors import price_for

pytestmark = pytest.mark.django_db

# A small file in LiteLLM's model_prices_and_context_window.json format, written for
# these tests: USD per token, a sample_spec entry, and entries with no token prices.
LITELLM_SAMPLE = {
    "sample_spec": {
        "max_tokens": "set to max_output_tokens if provider specifies it",
        "input_cost_per_token": 0.0,
        "output_cost_per_token": 0.0,
        "litellm_provider": "one of https://docs.litellm.ai/docs/providers",
    },
    "gpt-4o": {
        "max_tokens": 16384,
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1e-05,
        "cache_read_input_token_cost": 1.25e-06,
        "litellm_provider": "openai",
        "mode": "chat",
    },
    "claude-3-5-sonnet-20241022": {
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_read_input_token_cost": 3e-07,
        "litellm_provider": "anthropic",
        "mode": "chat",
    },
    "dall-e-3": {"output_cost_per_image": 0.04, "mode": "image_generation"},
    "text-embedding-3-small": {"input_cost_per_token": 2e-08, "mode": "embedding"},
}


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("import_prices", *args, stdout=out)
    return out.getvalue().strip()


def write(tmp_path, document, name="prices.json"):
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return str(path)


def test_litellm_prices_are_imported_per_million_tokens(tmp_path):
    out = run(write(tmp_path, LITELLM_SAMPLE))
    assert out == "Added 2, changed 0, skipped 2 price(s)."
    gpt = price_for(model="gpt-4o", upstream_id=None)
    assert (gpt.input, gpt.output, gpt.cache_read, gpt.cache_write) == (
        Decimal("2.5"), Decimal("10"), Decimal("1.25"), Decimal("2.5"))  # fmt: skip
    claude = price_for(model="claude-3-5-sonnet-20241022", upstream_id=None)
    assert (claude.cache_read, claude.cache_write) == (Decimal("0.3"), Decimal("3.75"))
    assert price_for(model="dall-e-3", upstream_id=None) is None


def test_a_second_import_changes_only_what_differs_and_dry_run_changes_nothing(tmp_path):
    run(write(tmp_path, LITELLM_SAMPLE))
    changed = json.loads(json.dumps(LITELLM_SAMPLE))
    changed["gpt-4o"]["output_cost_per_token"] = 2e-05
    changed["gpt-4o-mini"] = {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07}
    path = write(tmp_path, changed, "changed.json")
    assert run(path, "--dry-run") == "Would add 1, would change 1, skipped 3 price(s)."
    assert Price.objects.get(model="gpt-4o").output == Decimal(10)
    assert not Price.objects.filter(model="gpt-4o-mini").exists()
    assert run(path) == "Added 1, changed 1, skipped 3 price(s)."
    assert Price.objects.get(model="gpt-4o").output == Decimal(20)
    assert price_for(model="gpt-4o", upstream_id=None).output == Decimal(20)


def test_our_own_list_with_patterns_and_upstreams(tmp_path, make_upstream):
    upstream = make_upstream()
    ours = [
        {"model": "gpt-*", "input": "1", "output": "2"},
        {"model": "gpt-*", "upstream_id": str(upstream.pk), "input": "0.5", "output": 1,
         "cache_read": "0.25", "cache_write": None},
    ]  # fmt: skip
    assert run(write(tmp_path, ours)) == "Added 2, changed 0, skipped 0 price(s)."
    assert price_for(model="gpt-4o", upstream_id=upstream.pk).cache_read == Decimal("0.25")
    assert price_for(model="gpt-4o", upstream_id=None).input == Decimal(1)


@pytest.mark.parametrize(
    ("document", "says"),
    [
        ("not json", "not valid JSON"),
        ([{"model": "m", "input": "-1", "output": "1"}], "input"),
        ([{"model": "m", "input": "1"}], "output"),
        ([{"model": "m", "input": "1", "output": "1"}] * 2, "twice"),
        ([{"model": "m", "input": "1", "output": "1",
           "upstream_id": "00000000-0000-0000-0000-000000000001"}], "No upstream"),
        (7, "must be a list"),
    ],
)  # fmt: skip
def test_a_bad_file_imports_nothing_and_says_why(tmp_path, document, says):
    path = tmp_path / "bad.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    ok = [{"model": "fine", "input": "1", "output": "1"}]
    if isinstance(document, list):
        path.write_text(json.dumps(ok + document))
    with pytest.raises(CommandError, match=says):
        run(str(path))
    assert Price.objects.count() == 0


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        run(str(tmp_path / "absent.json"))
