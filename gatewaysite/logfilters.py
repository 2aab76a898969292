"""Log lines that cannot be forged (control characters escaped, in the gateway's own
lines and in gunicorn's access and error logs), that name the request they are about
(its request id, the X-Gateway-Request-ID of its answer), and, with LOG_FORMAT=json,
that are one JSON object each.

A path holding `%0a` or an ESC sequence is decoded into the access log's `%(U)s`; without
this, a client without any key could write a line of its choosing, or raw terminal
escapes, into the operator's log.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from contextvars import ContextVar

from gunicorn.glogging import Logger as GunicornLogger

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# gunicorn's "Invalid request from ip=…: Invalid HTTP request line: '…'" quotes the line
# whole, query string (a token, a key) included.
_QUERY = re.compile(r"\?[^\s'\"]*")


def escape_controls(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class EscapeControls(logging.Filter):
    """Escapes control characters in a record's message (tracebacks keep their lines)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Invalid request from"):
            message = _QUERY.sub("?…", message)
        escaped = escape_controls(message)
        if escaped != record.msg or record.args:
            record.msg, record.args = escaped, None
        return True


class OneLine(EscapeControls):
    """One line, no traceback: for expected refusals (a Host not in ALLOWED_HOSTS)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return super().filter(record)


# The request being served by this greenlet (gevent gives each its own context). Set by
# the proxy as a request starts, cleared as the next request starts, and left in place
# in between, so lines written after the view returns (django.request's "Bad Gateway",
# a stream's relay) still name their request.
_request_id: ContextVar[str] = ContextVar("gateway_request_id", default="")


def request_id_bind(request_id) -> None:
    """Name the request that this greenlet's log lines are about, from now on."""
    _request_id.set(str(request_id))


def request_id_clear(**_signal_kwargs) -> None:
    """Receiver of Django's request_started: a new request names no request until bound."""
    _request_id.set("")


class RequestId(logging.Filter):
    """Gives every record `request_id` and `request_tag` (" request_id=…", or "")."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = getattr(record, "request_id", "") or _request_id.get()
        record.request_id = request_id
        record.request_tag = f" request_id={request_id}" if request_id else ""
        return True


class JsonLines(logging.Formatter):
    """One JSON object per line (LOG_FORMAT=json): time, level, logger, message,
    request_id when the line is about a request, exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "") or _request_id.get()
        if request_id:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=True)


class GatewayGunicornLogger(GunicornLogger):
    """gunicorn's logger with EscapeControls on its error and access logs, and JSON lines
    with LOG_FORMAT=json."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        from django.conf import settings

        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, EscapeControls) for f in log.filters):
                log.addFilter(EscapeControls())
            if settings.LOG_FORMAT == "json":
                for handler in log.handlers:
                    handler.setFormatter(JsonLines())
