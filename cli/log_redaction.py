"""Keeps secrets that travel in URLs out of the server's log.

The GraphiQL link `segmenta demo` prints carries the token as `?token=sgm_…`, and uvicorn
writes every request line (and every websocket's path) to its log.  `RedactTokens` rewrites
the value of a `token` or `access_token` query parameter in each log record to `[redacted]`
before any handler formats it; `log_config` is uvicorn's own logging configuration with
that filter on both of its handlers, so the access log and the error log are covered.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

REDACTED = "[redacted]"
SECRET_PARAMETERS = ("token", "access_token")
_SECRET_IN_URL = re.compile(
    r"([?&](?:" + "|".join(SECRET_PARAMETERS) + r")=)[^&#\s\"']*", re.IGNORECASE
)


def redact(text: str) -> str:
    """`text` with the value of every secret query parameter replaced."""
    return _SECRET_IN_URL.sub(r"\g<1>" + REDACTED, text)


def _redacted(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


class RedactTokens(logging.Filter):
    """Rewrites the message and string arguments of a record; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted(value) for value in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: _redacted(value) for key, value in record.args.items()}
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's default logging configuration, with RedactTokens on every handler."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_tokens"] = {"()": RedactTokens}
    for handler in config["handlers"].values():
        handler["filters"] = [*handler.get("filters", []), "redact_tokens"]
    return config
