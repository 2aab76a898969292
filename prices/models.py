import uuid

from django.db import models
from django.db.models import Q

from gatewaysite.versioning import VersionStamp

# USD per million tokens, to the millionth of a dollar (a millionth of a cent per
# thousand tokens): every published price fits, and costs stay exact (prices.cost).
RATE_FIELD = {"max_digits": 18, "decimal_places": 6}


class Price(models.Model):
    """USD per million tokens for a model (a name or a `*` pattern), on one upstream or on any."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    model = models.CharField(max_length=200, help_text="A model name, or a pattern with `*`.")
    upstream = models.ForeignKey(
        "upstreams.Upstream",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="prices",
        help_text="Empty: the price on any upstream without its own.",
    )
    input = models.DecimalField(**RATE_FIELD)
    output = models.DecimalField(**RATE_FIELD)
    cache_read = models.DecimalField(
        **RATE_FIELD, null=True, blank=True, help_text="Empty: the input price."
    )
    cache_write = models.DecimalField(
        **RATE_FIELD, null=True, blank=True, help_text="Empty: the input price."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model", "-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "upstream"],
                condition=Q(upstream__isnull=False),
                name="prices_one_per_model_and_upstream",
            ),
            models.UniqueConstraint(
                fields=["model"],
                condition=Q(upstream__isnull=True),
                name="prices_one_per_model_for_any_upstream",
            ),
            models.CheckConstraint(
                condition=Q(input__gte=0)
                & Q(output__gte=0)
                & (Q(cache_read__isnull=True) | Q(cache_read__gte=0))
                & (Q(cache_write__isnull=True) | Q(cache_write__gte=0)),
                name="prices_not_negative",
            ),
            models.CheckConstraint(condition=~Q(model=""), name="prices_model_not_empty"),
        ]

    def __str__(self) -> str:
        return self.model if self.upstream_id is None else f"{self.model} @ {self.upstream_id}"


class PriceTableVersion(VersionStamp):
    """Changes in the same transaction as any change to any price (see gatewaysite.versioning)."""

    class Meta:
        verbose_name = "price table version"
