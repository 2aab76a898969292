import argparse

from django.core.management.base import BaseCommand, CommandError

from gatewaysite.history import COMMAND
from keys.exceptions import InvalidKeyData, KeyNotRotatable
from keys.models import APIKey
from keys.secrets import DISPLAY_PREFIX_LENGTH
from keys.selectors import KeyAmbiguous, key_find
from keys.services import MAX_GRACE_SECONDS, key_check_grace, key_rotate


def _grace(value: str) -> int:
    try:
        seconds = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a whole number of seconds") from None
    try:
        key_check_grace(seconds)
    except InvalidKeyData as exc:
        raise argparse.ArgumentTypeError(exc.errors["grace_seconds"][0].lower()) from None
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
            new, plaintext = key_rotate(key=old, actor=COMMAND, grace_seconds=grace_seconds)
        except KeyNotRotatable as exc:
            raise CommandError(str(exc)) from None
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
