import pytest

from keys import secrets


def test_generated_key_has_the_contract_format():
    key = secrets.generate_key()
    assert key.startswith("sk-auto-")
    assert len(key) == len("sk-auto-") + 43
    assert secrets.is_well_formed(key)


def test_generated_keys_are_unique():
    keys = {secrets.generate_key() for _ in range(2000)}
    assert len(keys) == 2000


@pytest.mark.parametrize(
    "candidate",
    [
        "",
        "Bearer",
        "sk-auto-",
        "sk-auto-" + "a" * 42,
        "sk-auto-" + "a" * 44,
        "sk-live-" + "a" * 43,
        "sk-auto-" + "é" * 43,
        "sk-auto-" + "a" * 42 + "=",
        "sk-auto-" + "a" * 10_000,
        "0" * 64,  # a stored hash
    ],
)
def test_malformed_candidates_are_rejected_before_any_lookup(candidate):
    assert not secrets.is_well_formed(candidate)


def test_hash_is_sha256_hex_and_stable():
    key = "sk-auto-" + "A" * 43
    assert secrets.hash_key(key) == secrets.hash_key(key)
    assert len(secrets.hash_key(key)) == 64
    assert secrets.hash_key(key) != secrets.hash_key(key[:-1] + "B")


def test_mask_shows_prefix_and_last_four_only():
    key = secrets.generate_key()
    masked = secrets.mask_key(secrets.display_prefix(key), secrets.last4(key))
    assert masked.startswith(key[:12]) and masked.endswith(key[-4:])
    assert key[12:-4] not in masked
