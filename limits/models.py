"""A key's limits and budget, the spend of its budget windows, and in-flight reservations.

Limits belong to a key's lineage (a key and every key rotated from or to it), not to
one key: `KeyLimitsLink` points each key of the lineage at the same `KeyLimits`, so a
rotated key inherits the limits, the budget and what was spent and reserved.
"""

from __future__ import annotations

import uuid

from django.db import models

from gatewaysite.versioning import VersionStamp
from limits import windows

USD = {"max_digits": 24, "decimal_places": 10}


class KeyLimits(models.Model):
    class Period(models.TextChoices):
        DAY = windows.DAY, "UTC day"
        WEEK = windows.WEEK, "week from Monday (UTC)"
        MONTH = windows.MONTH, "UTC calendar month"
        TOTAL = windows.TOTAL, "total (never resets)"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveBigIntegerField(null=True, blank=True)
    max_parallel = models.PositiveIntegerField(null=True, blank=True)
    budget_usd = models.DecimalField(null=True, blank=True, **USD)
    budget_tokens = models.PositiveBigIntegerField(null=True, blank=True)
    budget_period = models.CharField(max_length=8, choices=Period.choices, default=Period.MONTH)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "key limits"
        verbose_name_plural = "key limits"

    def __str__(self) -> str:
        return f"limits {self.pk}"


class KeyLimitsLink(models.Model):
    key = models.OneToOneField(
        "keys.APIKey", primary_key=True, on_delete=models.CASCADE, related_name="limits_link"
    )
    limits = models.ForeignKey(KeyLimits, on_delete=models.CASCADE, related_name="links")

    def __str__(self) -> str:
        return f"key {self.key_id} -> limits {self.limits_id}"


class Reservation(models.Model):
    """One admitted request: counts towards rpm while recent, towards max_parallel and the
    budget's `reserved` until settled or expired (a worker that died never settles)."""

    id = models.BigAutoField(primary_key=True)
    limits = models.ForeignKey(KeyLimits, on_delete=models.CASCADE, db_index=False)
    # Epoch seconds (float): compared with the rolling minute on every admission.
    admitted_at = models.FloatField()
    expires_at = models.FloatField()
    window_start = models.DateTimeField()
    # Reserved worst case until settled; then what was recorded.
    tokens = models.BigIntegerField(default=0)
    usd = models.DecimalField(null=True, blank=True, **USD)
    settled = models.BooleanField(default=False)

    class Meta:
        indexes = [
            models.Index(fields=["limits", "admitted_at"], name="limits_resv_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"reservation {self.pk}"


class Spend(models.Model):
    """What one lineage spent in one budget window, as recorded when its requests ended."""

    limits = models.ForeignKey(KeyLimits, on_delete=models.CASCADE, db_index=False)
    window_start = models.DateTimeField()
    spent_usd = models.DecimalField(default=0, **USD)
    spent_tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["limits", "window_start"], name="limits_spend_window_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"spend from {self.window_start:%Y-%m-%d}"


class LimitsVersion(VersionStamp):
    """Changes in the same transaction as any change to any key's limits."""

    class Meta:
        verbose_name = "limits version"
