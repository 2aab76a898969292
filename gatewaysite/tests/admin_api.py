"""Helpers shared by the admin API's tests (gatewaysite, keys, upstreams and logs)."""

from __future__ import annotations

import json

from rest_framework.test import APIClient

ERROR_KEYS = {"error", "message", "details"}


def admin_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def assert_error(response, status: int, code: str) -> dict:
    """The answer is our error shape with this status and code; return its body."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code, body
    assert isinstance(body["message"], str) and body["message"]
    assert set(body) <= ERROR_KEYS, body
    return body


def assert_page(response, *, total: int, page: int = 1, page_size: int = 50) -> list[dict]:
    """The answer is the page envelope with these numbers; return its items."""
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert set(body) == {"items", "total", "page", "page_size", "pages"}
    assert (body["total"], body["page"], body["page_size"]) == (total, page, page_size)
    assert body["pages"] == max(1, -(-total // page_size))
    return body["items"]


def text_of(response) -> str:
    """Everything a client receives: status line material, headers and body."""
    headers = json.dumps(sorted((k, v) for k, v in response.items()))
    return f"{response.status_code} {headers} {response.content.decode('utf-8', 'replace')}"
