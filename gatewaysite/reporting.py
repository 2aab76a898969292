"""What DEBUG error pages and error e-mails may show of the settings."""

import re

from django.views.debug import SafeExceptionReporterFilter


class GatewayExceptionReporterFilter(SafeExceptionReporterFilter):
    # Django hides API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE; we add URLs (a DATABASE_URL
    # or REDIS_URL holds a password) and UPSTREAMS (a JSON list of secrets).
    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|UPSTREAMS|DATABASES|CACHES",
        flags=re.IGNORECASE,
    )
