"""Log lines that cannot be forged: control characters escaped, in the gateway's own
lines and in gunicorn's (access and error logs).

A path holding `%0a` or an ESC sequence is decoded into the access log's `%(U)s`; without
this, a client without any key could write a line of its choosing, or raw terminal
escapes, into the operator's log.
"""

from __future__ import annotations

import logging
import re

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


class GatewayGunicornLogger(GunicornLogger):
    """gunicorn's logger with EscapeControls on its error and access logs."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, EscapeControls) for f in log.filters):
                log.addFilter(EscapeControls())
