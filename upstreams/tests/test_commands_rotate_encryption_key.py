"""manage.py rotate_encryption_key: re-encrypt every upstream secret under the new key."""

import hashlib
import io
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from bench.fake_provider import FakeProvider
from conftest import manage_py
from upstreams import crypto
from upstreams.models import Upstream

ROOT = Path(__file__).resolve().parents[2]


def _rotate():
    out = io.StringIO()
    call_command("rotate_encryption_key", stdout=out)
    return out.getvalue()


def _new_key_with_previous(settings) -> tuple[str, str]:
    old, new = settings.ENCRYPTION_KEY, Fernet.generate_key().decode()
    settings.ENCRYPTION_KEY = new
    settings.ENCRYPTION_KEY_PREVIOUS = [old]
    return old, new


def _readable_with_only(key: str, token: str) -> str:
    return Fernet(key).decrypt(token.encode()).decode()


@pytest.mark.django_db
def test_rotation_re_encrypts_every_secret_and_is_idempotent(make_upstream, settings):
    secrets = {"a-up": "sk-secret-aaaa-1111", "b-up": "sk-secret-bbbb-2222"}
    for name, secret in secrets.items():
        make_upstream(name=name, api_key=secret)
    _, new = _new_key_with_previous(settings)
    out = _rotate()
    assert out == "Re-encrypted 2 upstream secret(s); 0 already under the current key.\n"
    for upstream in Upstream.objects.all():
        assert _readable_with_only(new, upstream.secret_encrypted) == secrets[upstream.name]
        assert upstream.secret_hint == crypto.secret_hint(secrets[upstream.name])
    assert _rotate() == "Re-encrypted 0 upstream secret(s); 2 already under the current key.\n"


@pytest.mark.django_db
def test_a_run_killed_halfway_is_finished_by_the_next_run(make_upstream, settings):
    done, pending = make_upstream(name="done"), make_upstream(name="pending")
    _, new = _new_key_with_previous(settings)
    # What a killed run leaves: one row already under the new key, one still under the old.
    Upstream.objects.filter(pk=done.pk).update(
        secret_encrypted=crypto.reencrypt(done.secret_encrypted)
    )
    assert _rotate() == "Re-encrypted 1 upstream secret(s); 1 already under the current key.\n"
    pending.refresh_from_db()
    assert _readable_with_only(new, pending.secret_encrypted).startswith("sk-upstream-secret")


@pytest.mark.django_db
def test_an_unreadable_secret_is_named_and_fails_the_run(make_upstream, settings):
    make_upstream(name="fine", api_key="sk-fine-secret-0001")
    orphan_secret = "sk-orphan-secret-0002"
    orphan = make_upstream(name="orphan", api_key=orphan_secret)
    lost_key = Fernet.generate_key()
    Upstream.objects.filter(pk=orphan.pk).update(
        secret_encrypted=Fernet(lost_key).encrypt(orphan_secret.encode()).decode()
    )
    _new_key_with_previous(settings)
    out = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("rotate_encryption_key", stdout=out)
    message = str(failure.value)
    assert "1 upstream secret(s) could not be decrypted" in message and "orphan" in message
    assert "ENCRYPTION_KEY_PREVIOUS" in message
    assert orphan_secret not in message + out.getvalue()
    # The failure comes first, and says the others are done; nothing reads as a success.
    assert message.startswith("1 upstream secret(s) could not be decrypted")
    assert message.endswith(
        "The others are done: re-encrypted 1 upstream secret(s); 0 already under the current key."
    )
    assert out.getvalue() == ""
    orphan.refresh_from_db()
    assert _readable_with_only(lost_key.decode(), orphan.secret_encrypted) == orphan_secret


def _manage(env, *args):
    return manage_py(*args, env=env)


@pytest.fixture
def fake_provider():
    provider = FakeProvider().start()
    yield provider
    provider.stop()


def test_rotation_then_a_restart_with_only_the_new_key(
    transactional_db, gateway_env, start_gateway, make_upstream, make_key, fake_provider
):
    secret = "sk-provider-secret-rotation-4242"
    upstream = make_upstream(name="rotated", base_url=fake_provider.base_url, api_key=secret)
    _, raw_key = make_key(upstreams=[upstream])
    old_key, new_key = gateway_env["ENCRYPTION_KEY"], Fernet.generate_key().decode()

    # 1. Deploy the new key with the old one as previous, and rotate.
    rotating = {**gateway_env, "ENCRYPTION_KEY": new_key, "ENCRYPTION_KEY_PREVIOUS": old_key}
    rotated = _manage(rotating, "rotate_encryption_key")
    assert rotated.returncode == 0, rotated.stderr
    assert "Re-encrypted 1 upstream secret(s)" in rotated.stdout
    assert secret not in rotated.stdout + rotated.stderr

    # 2. Restart with only the new key: everything still reads the secret.
    only_new = {**gateway_env, "ENCRYPTION_KEY": new_key}
    only_new.pop("ENCRYPTION_KEY_PREVIOUS", None)
    again = _manage(only_new, "rotate_encryption_key")
    assert again.returncode == 0 and "0 upstream secret(s); 1 already" in again.stdout
    digest = _manage(
        only_new,
        "shell",
        "--no-imports",
        "-c",
        "import hashlib; from upstreams.registry import snapshot; "
        "print(hashlib.sha256(snapshot().by_name['rotated'].secret.encode()).hexdigest())",
    )
    assert digest.stdout.strip() == hashlib.sha256(secret.encode()).hexdigest(), digest.stderr

    # 3. A gunicorn with only the new key injects the decrypted secret upstream.
    gateway = start_gateway(workers=1, env=only_new)
    answer = requests.post(
        f"{gateway.url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {raw_key}"},
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
        timeout=15,
    )
    assert answer.status_code == 200, answer.text
    assert fake_provider.requests[-1].headers["authorization"] == f"Bearer {secret}"

    # 4. And the old key alone no longer reads it: the rotation really happened.
    only_old = {**gateway_env, "ENCRYPTION_KEY": old_key}
    stale = _manage(only_old, "rotate_encryption_key")
    assert stale.returncode == 1 and "rotated" in stale.stderr
    assert secret not in stale.stderr + stale.stdout


def test_help_text(gateway_env):
    result = _manage(gateway_env, "rotate_encryption_key", "--help")
    assert result.returncode == 0
    assert "ENCRYPTION_KEY_PREVIOUS" in result.stdout and "Safe to re-run" in result.stdout
