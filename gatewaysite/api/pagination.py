"""The page envelope every admin list answers with.

``?page=`` and ``?page_size=`` are strict: anything but a positive integer is a
400 (never silently page 1); a page past the end is a 404. ``page_size`` above
the cap is served at the cap, and the answer says which size it used.
"""

from __future__ import annotations

import re

from django.core.paginator import Paginator
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
_DIGITS = re.compile(r"[0-9]+")
# Any number beyond this is "past the end" or "more than the cap" alike; it also keeps
# int() away from Python's limit on converting very long digit strings.
_HUGE = 10**18


def _positive_int(request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    significant = raw.lstrip("0")
    if not _DIGITS.fullmatch(raw) or not significant:
        raise ValidationError({name: ["Must be a positive integer."]})
    return int(significant) if len(significant) <= 18 else _HUGE


class AdminPagination(BasePagination):
    def paginate_queryset(self, queryset, request, view=None):
        page_size = min(_positive_int(request, "page_size", DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        number = _positive_int(request, "page", 1)
        self.paginator = Paginator(queryset, page_size)
        # An empty list is one empty page; any page past the last one does not exist.
        if number > max(self.paginator.num_pages, 1):
            raise NotFound(f"Page {number} does not exist; there are {self.paginator.num_pages}.")
        self.page = self.paginator.page(number)
        return list(self.page)

    def get_paginated_response(self, data):
        return Response(
            {
                "items": data,
                "total": self.paginator.count,
                "page": self.page.number,
                "page_size": self.paginator.per_page,
                "pages": self.paginator.num_pages,
            }
        )

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["items", "total", "page", "page_size", "pages"],
            "properties": {
                "items": schema,
                "total": {"type": "integer", "minimum": 0, "description": "Items in all pages."},
                "page": {"type": "integer", "minimum": 1},
                "page_size": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                "pages": {"type": "integer", "minimum": 1},
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": "page",
                "required": False,
                "in": "query",
                "description": "Page number, from 1. A page past the last one is a 404.",
                "schema": {"type": "integer", "minimum": 1, "default": 1},
            },
            {
                "name": "page_size",
                "required": False,
                "in": "query",
                "description": f"Items per page; larger values are served as {MAX_PAGE_SIZE}.",
                "schema": {"type": "integer", "minimum": 1, "default": DEFAULT_PAGE_SIZE},
            },
        ]
