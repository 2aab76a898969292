import uuid

from django.db import models
from django.utils import timezone


class RequestLogQuerySet(models.QuerySet):
    def older_than(self, cutoff):
        return self.filter(created_at__lt=cutoff)


class RequestLog(models.Model):
    """One row per proxied request, written when it is accepted and finished when it ends.

    Token counts are null when they could not be read: unknown is never recorded as 0.
    """

    class State(models.TextChoices):
        IN_FLIGHT = "in_flight", "In flight"
        FINISHED = "finished", "Finished"

    id = models.BigAutoField(primary_key=True)
    request_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    # Keys and upstreams are only ever soft-deleted; SET_NULL keeps logs if one is not.
    api_key = models.ForeignKey(
        "keys.APIKey",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="request_logs",
        db_index=False,
    )
    upstream = models.ForeignKey(
        "upstreams.Upstream",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="request_logs",
        db_index=False,
    )
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2000)
    model = models.CharField(max_length=200, blank=True, default="")
    # The model sent upstream when an alias rewrote it ("" when it went as requested).
    upstream_model = models.CharField(max_length=200, blank=True, default="")
    is_stream = models.BooleanField(default=False)
    # Upstreams tried (failover); 0 when the gateway answered before trying any.
    attempts = models.PositiveSmallIntegerField(default=0)
    status_code = models.PositiveSmallIntegerField(default=0)  # 0: no answer came
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    total_tokens = models.PositiveIntegerField(null=True, blank=True)
    cache_read_tokens = models.PositiveIntegerField(null=True, blank=True)
    cache_write_tokens = models.PositiveIntegerField(null=True, blank=True)
    # USD, exact (prices.cost); null when the tokens or the price are unknown, never 0 for it.
    cost_usd = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    ttfb_ms = models.PositiveIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True, default="")
    state = models.CharField(max_length=10, choices=State.choices, default=State.IN_FLIGHT)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RequestLogQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "request log"
        indexes = [
            # newest first, since/until, and pruning by age
            models.Index(fields=["created_at", "id"], name="logs_created_idx"),
            models.Index(fields=["api_key", "created_at"], name="logs_key_created_idx"),
            models.Index(fields=["upstream", "created_at"], name="logs_upstream_created_idx"),
            models.Index(fields=["status_code", "created_at"], name="logs_status_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.status_code}"


class DailyUsage(models.Model):
    """Usage summed per (UTC day, key, upstream, model) for a day whose logs are settled.

    Written only by logs.services.usage_roll_up (manage.py roll_up_usage, and prune_logs
    before it deletes), never by a read, so the usage page and GET /admin/usage read a
    few rows per day instead of a month of logs (bench/admin_pages.py measured 1.8 s on
    SQLite at a million rows without it). Plain ids, no foreign keys: the sums outlive
    pruning.
    """

    day = models.DateField()
    api_key_id = models.UUIDField(null=True, blank=True)
    upstream_id = models.UUIDField(null=True, blank=True)
    # "" for days rolled up before models were kept apart (and for requests without one).
    model = models.CharField(max_length=200, blank=True, default="")
    requests = models.PositiveIntegerField()
    errors = models.PositiveIntegerField()
    prompt_tokens = models.PositiveBigIntegerField()
    completion_tokens = models.PositiveBigIntegerField()
    total_tokens = models.PositiveBigIntegerField()
    cache_read_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_tokens = models.PositiveBigIntegerField(default=0)
    # The sum of the known costs; null when no request of the group had one.
    cost_usd = models.DecimalField(max_digits=30, decimal_places=12, null=True, blank=True)

    class Meta:
        verbose_name = "daily usage"
        verbose_name_plural = "daily usage"
        indexes = [models.Index(fields=["day"], name="logs_dailyusage_day_idx")]

    def __str__(self) -> str:
        return f"{self.day}: {self.requests} requests"


class UsageRollupDay(models.Model):
    """A UTC day whose DailyUsage rows are written; its primary key makes that happen once."""

    day = models.DateField(primary_key=True)
    rolled_up_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return str(self.day)
