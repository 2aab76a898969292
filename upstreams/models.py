import uuid

from django.db import models
from django.db.models import Q

from gatewaysite.versioning import VersionStamp


class Provider(models.TextChoices):
    OPENAI = "openai", "OpenAI"
    ANTHROPIC = "anthropic", "Anthropic"


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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=Q(is_default=True),
                name="upstreams_at_most_one_default",
            ),
            models.CheckConstraint(
                condition=Q(provider__in=["openai", "anthropic"]),
                name="upstreams_known_provider",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RegistryVersion(VersionStamp):
    """Changes in the same transaction as any change to any upstream (see gatewaysite.versioning)."""

    class Meta:
        verbose_name = "registry version"
