from django.core.management.base import BaseCommand, CommandError

from upstreams.services import upstream_secrets_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every upstream secret under the current ENCRYPTION_KEY, reading old "
        "ones with the keys in ENCRYPTION_KEY_PREVIOUS. Safe to re-run, and to re-run "
        "after being interrupted. Exits 1, naming the upstreams, if a secret cannot be "
        "decrypted with any configured key."
    )

    def handle(self, *args, **options):
        result = upstream_secrets_reencrypt()
        done = (
            f"Re-encrypted {result.reencrypted} upstream secret(s); "
            f"{result.already_current} already under the current key."
        )
        if result.unreadable:
            # The failure first and the counts as part of it: a success line printed
            # before it read as "done" to whoever only saw the first line.
            raise CommandError(
                f"{len(result.unreadable)} upstream secret(s) could not be decrypted with "
                f"ENCRYPTION_KEY or ENCRYPTION_KEY_PREVIOUS: {', '.join(result.unreadable)}. "
                "Add the key they were written with to ENCRYPTION_KEY_PREVIOUS and run this "
                "again, or set a new secret for these upstreams. The others are done: "
                f"{done[0].lower()}{done[1:]}"
            )
        self.stdout.write(done)
