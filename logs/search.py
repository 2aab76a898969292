"""The request log list's search box: a request id, a key prefix or a model name.

Each kind of term uses an index or a plain equality (never LIKE '%…%' over a million
rows), and a term that cannot match anything says why instead of listing nothing.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from django.db.models import QuerySet

from keys.models import APIKey
from logs.models import RequestLog

KEY_PREFIX_LENGTH = 12  # "sk-auto-" and four characters: what the key list shows
# A model name that no row among this many newest names is probably mistyped.
MODEL_SEEN_IN_NEWEST = 5_000
_PARTIAL_ID = re.compile(r"^[0-9a-fA-F-]{4,35}$")


@dataclass
class LogSearch:
    rows: QuerySet
    note: str = ""


def log_search(rows: QuerySet, term: str) -> LogSearch:
    """The rows a search term selects, and a note when it cannot (or may not) match."""
    term = term.strip()
    if not term:
        return LogSearch(rows)
    try:
        return LogSearch(rows.filter(request_id=uuid.UUID(term)))
    except ValueError:
        pass
    if term.startswith("sk-"):
        return _by_key_prefix(rows, term)
    if _PARTIAL_ID.match(term) and "-" in term:
        return LogSearch(
            rows.none(),
            f"“{term}” is not a whole request id: a request id has 36 characters "
            "(8-4-4-4-12), as in the X-Gateway-Request-ID header.",
        )
    if len(term) > RequestLog._meta.get_field("model").max_length:
        return LogSearch(rows.none(), "That is longer than any model name; nothing can match.")
    note = ""
    newest = RequestLog.objects.order_by("-created_at", "-id").values_list("model", flat=True)
    if term not in set(newest[:MODEL_SEEN_IN_NEWEST]):
        note = (
            f"No recent request names the model “{term}”; older ones are searched too. "
            "Model names match whole and exactly (e.g. gpt-4o-mini); request ids and key "
            "prefixes (sk-auto-…) can be searched as well."
        )
    return LogSearch(rows.filter(model=term), note)


def _by_key_prefix(rows: QuerySet, term: str) -> LogSearch:
    prefix = term[:KEY_PREFIX_LENGTH]
    note = ""
    if len(term) > KEY_PREFIX_LENGTH:
        # A whole key pasted here: search by its prefix only, and say so.
        note = (
            f"Searched by the key prefix {prefix}… only: the list never needs a whole key "
            "(the gateway keeps only its hash)."
        )
    key_ids = list(
        APIKey.objects.filter(key_prefix__startswith=prefix).values_list("id", flat=True)
    )
    if not key_ids:
        return LogSearch(
            rows.none(),
            f"No key has a prefix starting “{prefix}”: prefixes look like sk-auto-AbCd "
            "(12 characters, as the key list shows them).",
        )
    return LogSearch(rows.filter(api_key_id__in=key_ids), note)
