"""What `make run` prints once gunicorn listens (gunicorn.conf.py's when_ready)."""

from __future__ import annotations


def where_things_are(
    *, addresses: list[str], workers: int, admin_token_set: bool, metrics_token_set: bool = False
) -> list[str]:
    """The lines make run prints after start: the URLs, the admin account, the token."""
    first = addresses[0].removeprefix("http://") if addresses else "127.0.0.1:8000"
    host, _, port = first.rpartition(":")
    if host in ("0.0.0.0", "[::]", ""):  # noqa: S104 (reading the bind, not binding)
        host = "127.0.0.1"  # listening everywhere: this machine's own address works
    root = first if first.startswith("unix:") else f"http://{host}:{port}"
    token = (
        "Authorization: Bearer $ADMIN_TOKEN, the ADMIN_TOKEN in .env"
        if admin_token_set
        else "closed: ADMIN_TOKEN is empty; set it in .env and restart"
    )
    return [
        f"==> the gateway is serving on {', '.join(addresses)} "
        f"({workers} worker{'' if workers == 1 else 's'})",
        f"    proxy, for the SDKs:  {root}/v1",
        f"    admin site:           {root}/django-admin/  (an account: .venv/bin/python manage.py createsuperuser)",
        f"    admin API:            {root}/admin/  ({token})",
        f"    admin API docs:       {root}/docs  (schema: {root}/openapi.json)",
        f"    health:               {root}/healthz, {root}/readyz",
        f"    metrics:              {root}/metrics  ("
        + (
            "Authorization: Bearer $METRICS_TOKEN)"
            if metrics_token_set
            else "off: set METRICS_TOKEN)"
        ),
        "    Ctrl-C stops it.",
    ]
