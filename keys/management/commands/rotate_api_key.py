import argparse

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from gatewaysite.api.audit import COMMAND_USERNAME, audit_action, audit_added
from keys.exceptions import KeyNotRotatable
from keys.models import APIKey
from keys.secrets import DISPLAY_PREFIX_LENGTH
from keys.selectors import KeyAmbiguous, key_find
from keys.services import MAX_GRACE_SECONDS, key_rotate


def _grace(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number of seconds") from None
    if not 0 <= seconds <= MAX_GRACE_SECONDS:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_GRACE_SECONDS} seconds")
    return seconds


def _shown(given: str) -> str:
    # An operator may have pasted the whole key: echo at most its displayed prefix.
    # Anything else (an id, a name) is echoed whole, so a typo can be seen.
    return (
        given[:DISPLAY_PREFIX_LENGTH] + "…"
        if given.startswith("sk-") and len(given) > DISPLAY_PREFIX_LENGTH
        else given
    )


def _ambiguous(given: str, candidates: list) -> str:
    listed = "; ".join(f"{k.key_prefix} id {k.pk} ({k.name})" for k in candidates[:5])
    more = ", and more" if len(candidates) > 5 else ""
    return (
        f"{_shown(given)!r} is ambiguous: use the 12-character prefix or the id. "
        f"It matches: {listed}{more}."
    )


class Command(BaseCommand):
    help = (
        "Replace an API key with a new one carrying the same upstreams. The new key is "
        "printed once, alone on standard output; the old key stops now, or after "
        "--grace-seconds."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "key",
            help="the key's id (UUID), its 12-character displayed prefix (sk-auto-XXXX) or its name",
        )
        parser.add_argument(
            "--grace-seconds",
            type=_grace,
            default=0,
            metavar="N",
            help=f"keep the old key working N more seconds (0 to {MAX_GRACE_SECONDS}; default 0)",
        )

    def handle(self, *args, key: str, grace_seconds: int = 0, **options):
        given = key.strip()
        try:
            old = key_find(id_or_prefix=given)
        except APIKey.DoesNotExist:
            raise CommandError(
                f"No API key has the id, prefix or name {_shown(given)!r}."
            ) from None
        except KeyAmbiguous as exc:
            raise CommandError(_ambiguous(given, exc.candidates)) from None
        try:
            with transaction.atomic():
                new, plaintext = key_rotate(key=old, grace_seconds=grace_seconds)
                # The same history entries as a rotation through the admin API.
                audit_action(
                    old,
                    action=f"Rotated by manage.py rotate_api_key; replaced by {new.key_prefix}….",
                    username=COMMAND_USERNAME,
                )
                audit_added(new, note=f"rotated from {old.key_prefix}…", username=COMMAND_USERNAME)
        except KeyNotRotatable:
            raise CommandError(
                f"API key {old.key_prefix}… ({old.name}) is revoked or expired; "
                "only a working key can be rotated."
            ) from None
        old.refresh_from_db(fields=["revoked_at"])
        ends = "now" if not grace_seconds else f"at {old.revoked_at.isoformat()}"
        # The key alone on stdout, so NEW=$(manage.py rotate_api_key …) captures just it.
        self.stdout.write(plaintext)
        self.stderr.write(
            f"Rotated API key {old.key_prefix}… ({old.name}): new key id {new.pk}, "
            f"prefix {new.key_prefix}…. The old key stops {ends}. "
            "The new key is shown only this once.",
            style_func=str,
        )
