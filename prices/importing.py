"""Reading price files: our own JSON list, or LiteLLM's model_prices_and_context_window.json.

Pure (no database). Ours is a list of objects with the /admin/prices fields (rates
in USD per million tokens, as decimal strings or numbers). LiteLLM's is an object
keyed by model name whose entries give USD per token (`input_cost_per_token`,
`output_cost_per_token`, `cache_read_input_token_cost`,
`cache_creation_input_token_cost`); its `sample_spec` entry and entries without
both token prices (images, audio, embeddings priced otherwise) are skipped.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from prices.exceptions import InvalidPriceData
from prices.models import RATE_FIELD

MAX_MODEL_LENGTH = 200
_PLACES = Decimal(1).scaleb(-RATE_FIELD["decimal_places"])
_MAX_RATE = Decimal(10) ** (RATE_FIELD["max_digits"] - RATE_FIELD["decimal_places"])
LITELLM_FIELDS = {
    "input": "input_cost_per_token",
    "output": "output_cost_per_token",
    "cache_read": "cache_read_input_token_cost",
    "cache_write": "cache_creation_input_token_cost",
}


@dataclass(frozen=True)
class PriceRow:
    model: str
    upstream_id: uuid.UUID | None
    input: Decimal
    output: Decimal
    cache_read: Decimal | None
    cache_write: Decimal | None

    def rates(self) -> dict[str, Decimal | None]:
        return {
            "input": self.input,
            "output": self.output,
            "cache_read": self.cache_read,
            "cache_write": self.cache_write,
        }


@dataclass
class ParsedFile:
    rows: list[PriceRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def rate_value(value, *, per_token: bool = False) -> Decimal:
    """A rate as a Decimal in USD per million tokens; ValueError when it is not one."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("must be a number or a decimal string")
    try:
        # Through str, so a JSON float keeps the digits it was written with.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("must be a number or a decimal string") from None
    if not number.is_finite() or number < 0:
        raise ValueError("must be a finite number, not negative")
    if per_token:
        number = number.scaleb(6)
    if number >= _MAX_RATE:
        raise ValueError("is too large")
    if number != number.quantize(_PLACES):
        raise ValueError(f"has more than {RATE_FIELD['decimal_places']} decimal places")
    return number.quantize(_PLACES)


def _model_name(value) -> str:
    if not isinstance(value, str) or not value or "\x00" in value:
        raise ValueError("must be a non-empty text")
    if len(value) > MAX_MODEL_LENGTH:
        raise ValueError(f"must be at most {MAX_MODEL_LENGTH} characters")
    return value


def _ours(entries: list) -> ParsedFile:
    parsed = ParsedFile()
    seen: set = set()
    for index, entry in enumerate(entries):
        where = f"entry {index}"
        if not isinstance(entry, dict):
            raise InvalidPriceData({"entry": ["must be an object"]}, entry=where)
        errors: dict[str, list[str]] = {}
        values: dict = {}
        try:
            values["model"] = _model_name(entry.get("model"))
        except ValueError as exc:
            errors["model"] = [str(exc)]
        upstream = entry.get("upstream_id")
        try:
            values["upstream_id"] = None if upstream is None else uuid.UUID(str(upstream))
        except ValueError:
            errors["upstream_id"] = ["must be a UUID or null"]
        for name in ("input", "output", "cache_read", "cache_write"):
            raw = entry.get(name)
            if raw is None and name in ("cache_read", "cache_write"):
                values[name] = None
                continue
            try:
                values[name] = rate_value(raw)
            except ValueError as exc:
                errors[name] = [str(exc)]
        if errors:
            raise InvalidPriceData(errors, entry=where)
        key = (values["model"], values["upstream_id"])
        if key in seen:
            raise InvalidPriceData({"model": ["appears twice for the same upstream"]}, entry=where)
        seen.add(key)
        parsed.rows.append(PriceRow(**values))
    return parsed


def _litellm(document: dict) -> ParsedFile:
    parsed = ParsedFile()
    for name, entry in document.items():
        if name == "sample_spec":
            continue
        if not isinstance(entry, dict) or not all(
            entry.get(LITELLM_FIELDS[part]) is not None for part in ("input", "output")
        ):
            parsed.skipped.append(f"{name}: no per-token input and output prices")
            continue
        try:
            model = _model_name(name)
            rates = {
                part: (
                    None if entry.get(source) is None else rate_value(entry[source], per_token=True)
                )
                for part, source in LITELLM_FIELDS.items()
            }
        except ValueError as exc:
            parsed.skipped.append(f"{name}: {exc}")
            continue
        parsed.rows.append(PriceRow(model=model, upstream_id=None, **rates))
    return parsed


def parse_price_file(text: str) -> ParsedFile:
    """The prices in a file's text, whichever of the two formats it is in."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidPriceData({"file": ["is not valid JSON"]}) from None
    if isinstance(document, list):
        return _ours(document)
    if isinstance(document, dict):
        return _litellm(document)
    raise InvalidPriceData(
        {"file": ["must be a list of prices or LiteLLM's object keyed by model"]}
    )
