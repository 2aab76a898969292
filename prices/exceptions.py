"""Expected failures of price writes, mapped to answers by each surface."""


class InvalidPriceData(Exception):
    """A price or a price file that cannot be taken; `errors` maps fields to messages."""

    def __init__(self, errors: dict, *, entry: str = ""):
        self.errors = errors
        self.entry = entry
        where = f"{entry}: " if entry else ""
        super().__init__(where + "; ".join(f"{k}: {v}" for k, v in errors.items()))


class PriceExists(InvalidPriceData):
    """A price for the same model and upstream (or for any upstream) exists already."""
