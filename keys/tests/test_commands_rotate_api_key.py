"""manage.py rotate_api_key <id or prefix> [--grace-seconds N]."""

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from conftest import manage_py
from gatewaysite.tests.adminsite import rows_containing
from keys.exceptions import KeyInvalid
from keys.models import APIKey
from keys.secrets import is_well_formed
from keys.selectors import key_authenticate
from keys.services import key_revoke

ROOT = Path(__file__).resolve().parents[2]


def _rotate(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("rotate_api_key", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_rotating_by_id_prints_only_the_new_key_and_stops_the_old_one(make_key, make_upstream):
    upstreams = [make_upstream(), make_upstream()]
    key, old_plaintext = make_key(upstreams=upstreams, name="billing")
    assert key_authenticate(raw_key=old_plaintext)  # warm the cache
    out, err = _rotate(str(key.pk))
    new_plaintext = out.strip()
    assert out == new_plaintext + "\n" and is_well_formed(new_plaintext)
    new_key = APIKey.objects.get(rotated_from=key)
    assert f"Rotated API key {key.key_prefix}… (billing)" in err
    assert str(new_key.pk) in err and "stops now" in err
    assert new_plaintext not in err
    assert key_authenticate(raw_key=new_plaintext).id == new_key.pk
    assert set(new_key.upstreams.all()) == set(upstreams)
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=old_plaintext)
    assert rows_containing(new_plaintext) == []


@pytest.mark.django_db
def test_rotating_by_prefix_with_a_grace_keeps_the_old_key_until_it_ends(make_key):
    key, old_plaintext = make_key()
    out, err = _rotate(key.key_prefix, "--grace-seconds", "120")
    key.refresh_from_db()
    assert f"stops at {key.revoked_at.isoformat()}" in err
    assert 119 <= (key.revoked_at - timezone.now()).total_seconds() <= 120
    assert key_authenticate(raw_key=old_plaintext).id == key.pk
    with pytest.raises(KeyInvalid):
        key_authenticate(raw_key=old_plaintext, now=timezone.now() + dt.timedelta(seconds=121))
    assert key_authenticate(raw_key=out.strip()).id != key.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sk-auto-nope"], "No API key has the id, prefix or name 'sk-auto-nope'."),
        # An id is echoed whole (it is no secret), so a typo can be seen.
        (
            ["00000000-0000-4000-8000-000000000000"],
            "No API key has the id, prefix or name '00000000-0000-4000-8000-000000000000'.",
        ),
        (["no such name"], "No API key has the id, prefix or name 'no such name'."),
        (["x", "--grace-seconds", "-1"], "must be between 0 and"),
        (["x", "--grace-seconds", "soon"], "must be a whole number of seconds"),
    ],
)
def test_clear_errors(args, message):
    with pytest.raises(CommandError, match=message):
        _rotate(*args)


@pytest.mark.django_db
def test_an_ambiguous_prefix_asks_for_the_id(make_key):
    first, _ = make_key()
    second, _ = make_key()
    APIKey.objects.filter(pk=second.pk).update(key_prefix=first.key_prefix)
    with pytest.raises(CommandError) as failure:
        _rotate(first.key_prefix)
    message = str(failure.value)
    assert message.startswith(
        f"'{first.key_prefix}' is ambiguous: use the 12-character prefix or the id."
    )
    assert str(first.pk) in message and str(second.pk) in message
    assert not APIKey.objects.filter(rotated_from__isnull=False).exists()


@pytest.mark.django_db
def test_the_start_of_a_prefix_is_ambiguous_and_names_the_keys(make_key):
    key, _ = make_key(name="billing")
    with pytest.raises(CommandError) as failure:
        _rotate("sk-auto-")
    assert str(failure.value) == (
        "'sk-auto-' is ambiguous: use the 12-character prefix or the id. "
        f"It matches: {key.key_prefix} id {key.pk} (billing)."
    )


@pytest.mark.django_db
def test_a_key_can_be_named_and_a_rotated_name_means_its_working_key(make_key):
    key, raw = make_key(name="billing")
    out, _ = _rotate("billing")
    assert key_authenticate(raw_key=out.strip()).name == "billing"
    # The old key is revoked under the same name: the name now means the new one.
    again, _ = _rotate("billing")
    assert key_authenticate(raw_key=again.strip()).name == "billing"
    make_key(name="billing")
    with pytest.raises(CommandError, match="'billing' is ambiguous"):
        _rotate("billing")


@pytest.mark.django_db
def test_a_revoked_key_cannot_be_rotated(make_key):
    key, _ = make_key(name="gone")
    key_revoke(key=key)
    with pytest.raises(CommandError, match=r"\(gone\) is revoked or expired"):
        _rotate(str(key.pk))
    assert APIKey.objects.count() == 1


def test_help_and_exit_codes_from_the_shell(transactional_db, gateway_env, make_key):
    key, _ = make_key()

    def run(*args):
        return manage_py("rotate_api_key", *args, env=gateway_env)

    help_text = run("--help")
    assert help_text.returncode == 0 and "--grace-seconds N" in help_text.stdout
    assert "printed once" in help_text.stdout
    missing = run("sk-auto-none")
    assert missing.returncode == 1 and "No API key has the id, prefix or name" in missing.stderr
    assert missing.stdout == ""
    done = run(str(key.pk), "--grace-seconds", "30")
    assert done.returncode == 0, done.stderr
    assert is_well_formed(done.stdout.strip())
    assert key_authenticate(raw_key=done.stdout.strip()).name == key.name


def test_an_unknown_whole_key_is_not_echoed_back(db):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from keys.secrets import generate_key

    unknown = generate_key()
    with pytest.raises(CommandError) as exc:
        call_command("rotate_api_key", unknown, stdout=StringIO(), stderr=StringIO())
    assert unknown not in str(exc.value)
    assert unknown[:12] in str(exc.value)


def test_a_rotation_from_the_command_line_is_in_the_admin_history(make_key):
    from django.contrib.admin.models import LogEntry

    key, _ = make_key()
    call_command("rotate_api_key", str(key.pk), stdout=io.StringIO(), stderr=io.StringIO())
    entries = LogEntry.objects.filter(object_id=str(key.pk))
    assert [e.user.username for e in entries] == ["manage-py"]
    assert "rotate_api_key" in entries[0].change_message
