"""cli/log_redaction.py: the token query parameter never reaches a log line (the real server: test_live_tokens)."""

from __future__ import annotations

import logging

from hypothesis import given
from hypothesis import strategies as st

from segmenta.cli.log_redaction import REDACTED, RedactTokens, log_config, redact

SECRETS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~%", min_size=1, max_size=80)


@given(SECRETS, st.sampled_from(["token", "TOKEN", "access_token"]), st.booleans())
def test_the_secret_is_replaced_and_the_rest_kept(secret: str, name: str, first: bool) -> None:
    query = f"{name}=sgm_{secret}&page=2" if first else f"page=2&{name}=sgm_{secret}"
    line = redact(f'127.0.0.1:5 - "GET /graphql?{query} HTTP/1.1" 200')
    assert "sgm_" not in line
    assert f"{name}={REDACTED}" in line and "page=2" in line and line.endswith(' HTTP/1.1" 200')


def test_other_parameters_and_paths_are_untouched() -> None:
    for text in ["/graphql", "/graphql?mytoken=x", "/health?tokens=1", "/graphql?query={token}"]:
        assert redact(text) == text


def test_the_filter_rewrites_uvicorn_access_records_without_dropping_them() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1", "GET", "/graphql?token=sgm_abc", "1.1", 200), None,
    )
    assert RedactTokens().filter(record) is True
    assert record.getMessage() == f'127.0.0.1:1 - "GET /graphql?token={REDACTED} HTTP/1.1" 200'


def test_every_uvicorn_handler_has_the_filter() -> None:
    config = log_config()
    assert config["handlers"] and all("redact_tokens" in handler["filters"] for handler in config["handlers"].values())
