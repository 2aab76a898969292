"""gunicorn settings, driven by environment variables; command-line flags win.

Worker class: gevent. A streamed answer can last minutes and mostly waits on the
upstream; one greenlet per connection holds a thousand such streams in a few MB,
where threads or sync workers would need a thread or process each. Measured with
bench/run.py on 2 cores: 1,000 concurrent slow streams with 0 errors, first byte
p99 71 ms, 472 MiB for master and 2 workers; 2, 3 and 4 workers gave the same
throughput, so 2 (one per core) keeps memory lowest. Figures: docs/performance.md.
"""

import os
import shutil
import tempfile
from pathlib import Path

# Load and check settings in the master, before any worker forks: a missing or
# malformed ENCRYPTION_KEY or SECRET_KEY ends gunicorn itself with a clear message
# (exit 2) instead of a loop of workers that die at boot.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatewaysite.settings")
# Workers checkpoint SQLite's WAL from a background thread (gatewaysite/db_upkeep.py).
os.environ.setdefault("SQLITE_BACKGROUND_CHECKPOINT", "true")
# /metrics sums every worker's samples (gatewaysite/metrics.py): prometheus_client's
# multiprocess mode, one folder per instance, set before any worker imports it. A folder
# the operator names is emptied at start (a previous run's samples would be added again),
# but not when a HUP reload reads this file again in the same master.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-")
    os.environ["GATEWAY_METRICS_DIR_MADE"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
elif os.environ.get("GATEWAY_METRICS_DIR_READY") != os.environ["PROMETHEUS_MULTIPROC_DIR"]:
    for _stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        _stale.unlink()
os.environ["GATEWAY_METRICS_DIR_READY"] = os.environ["PROMETHEUS_MULTIPROC_DIR"]
import gatewaysite.settings  # noqa: E402,F401

wsgi_app = "gatewaysite.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
# Concurrent connections per gevent worker (each a greenlet).
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "2000"))
# The heartbeat timeout for a worker; gevent workers stay responsive while streaming.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# On SIGTERM or SIGHUP, streams in flight get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))

# A 10 KB key must reach the gateway (and get its 401), not die as gunicorn's 400.
limit_request_line = 8190
limit_request_field_size = 32768

# Access log: method, path without its query string, status, size, duration, request id.
# Never %(r)s (the request line, with the query), %(q)s or any header.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
# The request id (X-Gateway-Request-ID, "-" outside /v1) ties the line to its log row.
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms request_id=%({x-gateway-request-id}o)s'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Control characters escaped in every access and error line (gatewaysite/logfilters.py).
logger_class = "gatewaysite.logfilters.GatewayGunicornLogger"

# gunicorn's control socket defaults to one path per user (~/.gunicorn/gunicorn.ctl), so
# two instances on one machine would take it from each other: off unless a path is given.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "") or "gunicorn.ctl"
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET", "")


def post_worker_init(worker):
    from gatewaysite.db_upkeep import start_db_upkeep

    start_db_upkeep()


def child_exit(server, worker):
    # A worker that is gone no longer counts in the live gauges (requests in flight).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    made = os.environ.get("GATEWAY_METRICS_DIR_MADE")
    if made and made == os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        shutil.rmtree(made, ignore_errors=True)


def when_ready(server):
    # scripts/run.sh (make run) asks for this once the sockets are open, so a first-time
    # operator sees where everything is; a deployed gunicorn keeps its logs to one line each.
    if os.environ.get("GATEWAY_SHOW_WHERE") != "1":
        return
    from django.conf import settings

    from gatewaysite.startup import where_things_are

    for line in where_things_are(
        addresses=[str(listener) for listener in server.LISTENERS],
        workers=server.num_workers,
        admin_token_set=bool(settings.ADMIN_TOKEN),
        metrics_token_set=bool(settings.METRICS_TOKEN),
    ):
        print(line, flush=True)
