import pytest
from cryptography.fernet import Fernet

from upstreams import crypto
from upstreams.models import Upstream
from upstreams.registry import snapshot

pytestmark = pytest.mark.django_db


def test_secret_round_trip_and_nothing_plain_in_the_row(make_upstream):
    up = make_upstream(api_key="sk-live-secret-value-9876")
    row = Upstream.objects.values().get(pk=up.pk)
    assert "sk-live-secret-value-9876" not in str(row)
    assert row["secret_hint"] == "sk-***9876"
    assert crypto.decrypt(row["secret_encrypted"]) == "sk-live-secret-value-9876"
    assert snapshot().by_id[up.pk].secret == "sk-live-secret-value-9876"


def test_secret_written_under_a_previous_key_is_still_read(settings):
    old = Fernet.generate_key().decode()
    token = Fernet(old).encrypt(b"sk-old-secret").decode()
    settings.ENCRYPTION_KEY_PREVIOUS = [old]
    assert crypto.decrypt(token) == "sk-old-secret"
    assert not crypto.is_primary(token)
    assert crypto.is_primary(crypto.reencrypt(token))


def test_unknown_key_token_is_unreadable_without_leaking_anything():
    token = Fernet(Fernet.generate_key()).encrypt(b"sk-other").decode()
    with pytest.raises(crypto.SecretUnreadable) as exc:
        crypto.decrypt(token)
    assert "sk-other" not in str(exc.value)


@pytest.mark.parametrize("value", [None, "", "   ", "abc", "x" * 44, b"\xff\xfe"])
def test_malformed_keys_are_refused_with_the_how_to(value):
    with pytest.raises(crypto.EncryptionKeyError) as exc:
        crypto.parse_key(value)
    assert "Fernet.generate_key()" in str(exc.value)
    if isinstance(value, str) and value.strip():
        assert value not in str(exc.value)


def test_trailing_newline_is_fine():
    key = Fernet.generate_key().decode()
    assert crypto.parse_key(key + "\n") == key
