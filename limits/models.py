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
    """One admitted request in flight: counts towards max_parallel and the budget's
    `reserved` until it is settled (deleted then) or expires (a worker that died never
    settles). Only a lineage with max_parallel or a budget needs one."""

    id = models.BigAutoField(primary_key=True)
    limits = models.ForeignKey(KeyLimits, on_delete=models.CASCADE, db_index=False)
    # Epoch seconds: a reservation still here after it counts for nothing.
    expires_at = models.FloatField()
    window_start = models.DateTimeField()
    tokens = models.BigIntegerField(default=0)  # the reserved worst case
    usd = models.DecimalField(null=True, blank=True, **USD)

    class Meta:
        indexes = [
            models.Index(fields=["limits", "expires_at"], name="limits_resv_live_idx"),
        ]

    def __str__(self) -> str:
        return f"reservation {self.pk}"


class SecondCount(models.Model):
    """Requests admitted in one second of one lineage, and their tokens (reserved, then as
    recorded): the rolling minute of rpm_limit and tpm_limit is the sum of at most 61 of
    these, however many requests it holds."""

    id = models.BigAutoField(primary_key=True)
    limits = models.ForeignKey(KeyLimits, on_delete=models.CASCADE, db_index=False)
    at_second = models.BigIntegerField()  # epoch seconds, floored
    requests = models.PositiveIntegerField(default=0)
    tokens = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["limits", "at_second"], name="limits_second_uniq")
        ]

    def __str__(self) -> str:
        return f"second {self.at_second}"


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
