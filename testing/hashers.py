"""A cheap password hash for users the tests create in-process.

Django's PBKDF2 runs 1,000,000 iterations (about a second of CPU on the 2-core test
machine), and every admin test signs a user in: that was minutes of the suite. Same
algorithm name and format, so a gunicorn started by a test (with the real hashers)
still verifies these passwords. Tests that measure the real cost opt out with the
`full_cost_passwords` marker (conftest.py)."""

from gatewaysite.login import OffLoopPBKDF2PasswordHasher


class CheapPBKDF2PasswordHasher(OffLoopPBKDF2PasswordHasher):
    iterations = 1_000
