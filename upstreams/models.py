import uuid

from django.db import models
from django.db.models import Q

from gatewaysite.versioning import VersionStamp


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"
    # Azure OpenAI's v1 API: OpenAI's dialect, the secret sent as `api-key`.
    AZURE = "azure", "Azure OpenAI"


class Upstream(models.Model):
    """A model provider endpoint and its secret (stored only as a Fernet token)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.SlugField(max_length=64, unique=True)
    provider = models.CharField(max_length=20, choices=Provider.choices)
    base_url = models.CharField(max_length=500)
    secret_encrypted = models.TextField(editable=False)
    # Computed when the secret is written, e.g. "sk-***1234"; safe to show.
    secret_hint = models.CharField(max_length=32, editable=False)
    is_default = models.BooleanField(default=False)
    # Seconds to wait for the answer's headers and for each chunk; null = the default.
    timeout = models.FloatField(null=True, blank=True)
    is_active = models.BooleanField(default=True)
    # Ask for usage in OpenAI chat streams (stream_options.include_usage) when the client
    # did not; off for an upstream that refuses stream_options.
    inject_stream_usage = models.BooleanField(default=True)
    # Routing (upstreams.routing): {"name a client sends": "model sent upstream"}, lower
    # priority first, then at random by weight; `models` (last, see below) what it serves.
    aliases = models.JSONField(default=dict, blank=True)
    priority = models.IntegerField(default=0)
    weight = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Model names or `*` patterns it serves (empty: any). Declared last: in the class body
    # the name `models` is this field from here on, no longer django.db.models.
    models = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="upstreams_at_most_one_default",
            ),
            models.CheckConstraint(
                condition=Q(provider__in=["openai", "anthropic", "azure"]),
                name="upstreams_known_provider",
            ),
            models.CheckConstraint(condition=Q(weight__gte=1), name="upstreams_weight_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class RegistryVersion(VersionStamp):
    """Changes in the same transaction as any change to any upstream (see gatewaysite.versioning)."""

    class Meta:
        verbose_name = "registry version"


class UpstreamHealth(models.Model):
    """How an upstream has been answering: failures in a row and cooling (upstreams.health).

    Written only when an attempt fails or the first success after failures ends them,
    never once per request; shared by every worker and instance using the database.
    """

    upstream = models.OneToOneField(
        Upstream, primary_key=True, on_delete=models.CASCADE, related_name="health"
    )
    consecutive_failures = models.PositiveIntegerField(default=0)
    cooling_until = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_failure_reason = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        verbose_name = "upstream health"
        verbose_name_plural = "upstream health"

    def __str__(self) -> str:
        return f"health of {self.upstream_id}"
