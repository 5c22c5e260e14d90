"""Keys never reach the logs: `key=...` in a logged URL (the widget page) is redacted."""

from __future__ import annotations

import logging
import re

__all__ = ["RedactKeys", "install_redaction"]

_KEY_IN_URL = re.compile(r"((?:^|[?&;])(?:key|api_key|access_token)=)[^&;\s\"]+", re.IGNORECASE)
_BARE_KEY = re.compile(r"rsk_[A-Za-z0-9_\-]{8,}")
ACCESS_LOGGERS = ("uvicorn.access", "uvicorn.error", "ragsearch.http")


def redact(text: str) -> str:
    """`text` with API keys in query strings, and anything shaped like a key, replaced."""
    return _BARE_KEY.sub("rsk_[redacted]", _KEY_IN_URL.sub(r"\1[redacted]", text))


class RedactKeys(logging.Filter):
    """Rewrites a record's message arguments (uvicorn passes the path as one) before output."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_redaction() -> None:
    """Attach the filter to the access and service loggers (once)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())
