"""The log list's search box: request id, key prefix or model, and why a term cannot match."""

import pytest
from django.urls import reverse

from logs.models import RequestLog
from logs.search import log_search

pytestmark = pytest.mark.django_db

LIST_URL = reverse("admin:logs_requestlog_changelist")


@pytest.fixture
def rows(make_key, make_log_row):
    key, plaintext = make_key(name="team-alpha")
    return {
        "key": key,
        "plaintext": plaintext,
        "by_key": make_log_row(key=key, model="gpt-4o"),
        "other": make_log_row(model="claude-sonnet-4"),
    }


def test_a_request_id_a_key_prefix_and_a_model_each_find_their_rows(rows):
    all_rows = RequestLog.objects.all()
    assert list(log_search(all_rows, str(rows["other"].request_id)).rows) == [rows["other"]]
    assert list(log_search(all_rows, rows["key"].key_prefix).rows) == [rows["by_key"]]
    assert list(log_search(all_rows, rows["key"].key_prefix[:10]).rows) == [rows["by_key"]]
    found = log_search(all_rows, "claude-sonnet-4")
    assert list(found.rows) == [rows["other"]] and found.note == ""
    assert list(log_search(all_rows, "  ").rows) == list(all_rows)


@pytest.mark.parametrize(
    ("term", "says"),
    [
        ("1234-abcd", "is not a whole request id"),
        ("sk-auto-zzzz", "No key has a prefix starting “sk-auto-zzzz”"),
        ("gpt-5-ultra", "No recent request names the model “gpt-5-ultra”"),
        ("x" * 201, "longer than any model name"),
    ],
)
def test_a_term_that_cannot_match_says_why(rows, term, says):
    found = log_search(RequestLog.objects.all(), term)
    assert says in found.note
    assert list(found.rows) == []


def test_a_whole_key_pasted_searches_by_its_prefix_and_says_so(rows):
    found = log_search(RequestLog.objects.all(), rows["plaintext"])
    assert list(found.rows) == [rows["by_key"]]
    assert rows["key"].key_prefix in found.note and rows["plaintext"] not in found.note


def test_the_list_shows_the_note_above_the_rows(admin_client, rows):
    html = admin_client.get(LIST_URL, {"q": "1234-abcd"}).content.decode()
    assert "is not a whole request id" in html
    assert "0 request logs" in html
