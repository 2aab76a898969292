import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone

from gatewaysite.versioning import VersionStamp


class KeyStatus(models.TextChoices):
    """The one vocabulary of a key's state, on the admin API, the admin list and its filter."""

    ACTIVE = "active", "Active"
    GRACE = "grace", "Rotated, working until its grace ends"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"


def _revoked(at) -> Q:
    return Q(is_active=False) | Q(revoked_at__lte=at)


class APIKeyQuerySet(models.QuerySet):
    """Each status as a query; `APIKey.status()` says the same of one row."""

    def usable(self, *, at=None):
        """Keys that authenticate at the given moment (now by default): active or in grace."""
        at = at or timezone.now()
        return self.filter(is_active=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=at),
            Q(revoked_at__isnull=True) | Q(revoked_at__gt=at),
        )

    def active(self, *, at=None):
        return self.usable(at=at).filter(revoked_at__isnull=True)

    def in_grace(self, *, at=None):
        return self.usable(at=at).filter(revoked_at__isnull=False)

    def expired(self, *, at=None):
        at = at or timezone.now()
        return self.exclude(_revoked(at)).filter(expires_at__lte=at)

    def revoked(self, *, at=None):
        return self.filter(_revoked(at or timezone.now()))

    def with_status(self, status: str, *, at=None):
        """The keys in one status (a KeyStatus value)."""
        return {
            KeyStatus.ACTIVE: self.active,
            KeyStatus.GRACE: self.in_grace,
            KeyStatus.EXPIRED: self.expired,
            KeyStatus.REVOKED: self.revoked,
        }[KeyStatus(status)](at=at)


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

    def status(self, *, at=None) -> str:
        """Its KeyStatus at that moment (now by default); the QuerySet methods agree."""
        at = at or timezone.now()
        if not self.is_active or (self.revoked_at is not None and self.revoked_at <= at):
            return KeyStatus.REVOKED
        if self.expires_at is not None and self.expires_at <= at:
            return KeyStatus.EXPIRED
        if self.revoked_at is not None:
            return KeyStatus.GRACE
        return KeyStatus.ACTIVE

    @property
    def key_masked(self) -> str:
        from keys.secrets import mask_key

        return mask_key(self.key_prefix, self.key_last4)


class KeyringVersion(VersionStamp):
    """Changes in the same transaction as any change to any key (see gatewaysite.versioning)."""

    class Meta:
        verbose_name = "keyring version"
