"""WSGI entry point: gunicorn serves ``gatewaysite.wsgi:application``."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatewaysite.settings")

application = get_wsgi_application()

# Import the whole URL map now, at worker boot, not on the first request: importing
# DRF and drf-spectacular blocks a gevent worker for a few hundred milliseconds,
# which would stall every stream that worker is already relaying.
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018
