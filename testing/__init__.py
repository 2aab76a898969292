"""What the tests and the benchmark share: the fake provider and small test helpers."""
