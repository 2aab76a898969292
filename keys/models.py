import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from gatewaysite.versioning import VersionStamp


class APIKeyQuerySet(models.QuerySet):
    def usable(self, *, at=None):
        """Keys that authenticate at the given moment (now by default)."""
        at = at or timezone.now()
        return self.filter(is_active=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=at),
            Q(revoked_at__isnull=True) | Q(revoked_at__gt=at),
        )


class APIKey(models.Model):
    """A key the gateway issued. Only its SHA-256 hash is stored, never the plaintext."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True, default="")
    key_prefix = models.CharField(max_length=12, db_index=True, editable=False)
    key_last4 = models.CharField(max_length=4, editable=False)
    # SHA-256 hex of the whole key: a 256-bit random key needs no slow hash.
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    upstreams = models.ManyToManyField("upstreams.Upstream", related_name="api_keys", blank=False)
    # Model names or `*` patterns this key may ask for; empty: any its upstreams serve.
    allowed_models = models.JSONField(default=list, blank=True, db_column="models")
    is_active = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # Set by revocation (now) or by rotation with a grace period (now + grace).
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    rotated_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="rotated_to",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Written at most about once a minute per key, never once per request.
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = APIKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key"
        indexes = [models.Index(fields=["created_at"], name="keys_created_idx")]

    def __str__(self) -> str:
        return f"{self.name} ({self.key_prefix}…)"

    @property
    def key_masked(self) -> str:
        from keys.secrets import mask_key

        return mask_key(self.key_prefix, self.key_last4)


class KeyringVersion(VersionStamp):
    """Changes in the same transaction as any change to any key (see gatewaysite.versioning)."""

    class Meta:
        verbose_name = "keyring version"
