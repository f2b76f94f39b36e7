"""The body of a GraphQL request over HTTP: read within a size limit, then checked before
Strawberry sees it, so every bad body is a 4xx answer with a JSON error and a code.

- SEGMENTA_MAX_BODY_BYTES bounds what is read: a larger Content-Length is refused before reading,
  and the body is read in its chunks and refused as soon as it passes the limit, whatever the
  Content-Length said (or without one, chunked): never more than the limit is held.
- The body must be UTF-8 JSON, an object, nested at most SEGMENTA_MAX_VARIABLES_DEPTH + 1 levels
  (measured before parsing, so a body of 100,000 `[` is one linear scan, not a deep recursion),
  with `query` a string (or absent, with `extensions.persistedQuery`), `variables` and `extensions` objects (or null), `operationName` a string
  (or null), and at most SEGMENTA_MAX_VARIABLE_VALUES values in `variables`.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Mapping
from itertools import accumulate
from typing import Any

import orjson
from starlette.types import Receive, Send

from segmenta.schema.limits import RequestLimits

BAD_REQUEST = "BAD_REQUEST"
REQUEST_TOO_LARGE = "REQUEST_TOO_LARGE"

# A JSON string, or an unterminated one up to the end; possessive, so a scan never backtracks.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_LONG_DIGITS = re.compile(r"[0-9]{20}")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
# Openers become +1 and closers -1 (0xFF as a signed byte).
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class RequestRefused(Exception):
    """A request answered with `status` and one GraphQL-style error, before any GraphQL runs."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    async def send(self, send: Send) -> None:
        body = json.dumps({"data": None, "errors": [{"message": self.message, "extensions": {"code": self.code}}]})
        encoded = body.encode("utf-8")
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(encoded)).encode("ascii")),
            # The unread rest of a refused body would be taken for the next request.
            (b"connection", b"close"),
            *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in self.headers.items()),
        ]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": encoded})


class ClientGone(Exception):
    """The client disconnected before it had sent its whole body."""


async def read_body(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    """The request body, refused with 413 the moment it would pass `limit` bytes."""
    declared = headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise RequestRefused(400, BAD_REQUEST, f"the Content-Length header is not a number: {declared[:40]!r}")
        if int(declared) > limit:
            raise _too_large(f"the body is {int(declared)} bytes", limit)
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if len(body) + len(chunk) > limit:
            raise _too_large("the body is longer", limit)
        body += chunk
        if not message.get("more_body", False):
            return bytes(body)


def _too_large(what: str, limit: int) -> RequestRefused:
    return RequestRefused(
        413, REQUEST_TOO_LARGE, f"request body too large: {what} than the limit of {limit} bytes (SEGMENTA_MAX_BODY_BYTES)"
    )


def json_depth(body: bytes) -> int:
    """How deeply the arrays and objects of the JSON text `body` nest (`{}` and `{"a": 1}` are 1), in
    linear time and constant stack; strings are skipped, so brackets inside them do not count."""
    structure = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS).translate(_STEPS)
    return max(accumulate(array("b", structure)), default=0)


def check_request(body: bytes, limits: RequestLimits) -> dict[str, Any]:
    """The parsed request object, or RequestRefused (400) saying what is wrong with the body."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _bad(f"the request body is not valid UTF-8 (byte {error.start})") from None
    deepest = limits.max_variables_depth + 1
    depth = json_depth(body)
    if depth > deepest:
        raise _bad(
            f"the request body nests JSON {depth} levels deep; at most {deepest} (variables at most "
            f"{limits.max_variables_depth}, SEGMENTA_MAX_VARIABLES_DEPTH)"
        )
    request = decode_json(text)
    if not isinstance(request, dict):
        raise _bad(f'the request body must be a JSON object such as {{"query": "…", "variables": {{}}}}, not {_kind(request)}')
    for name in ("variables", "extensions"):
        if not isinstance(request.get(name), dict | None):
            raise _bad(f"`{name}` must be a JSON object or null, not {_kind(request[name])}")
    # A persisted query (schema/documents.py) may come as its hash alone.
    persisted = "persistedQuery" in (request.get("extensions") or {})
    if not isinstance(request.get("query"), str) and not (persisted and request.get("query") is None):
        raise _bad(f"`query` must be a string holding the GraphQL document, not {_kind(request.get('query'))}")
    if not isinstance(request.get("operationName"), str | None):
        raise _bad(f"`operationName` must be a string or null, not {_kind(request['operationName'])}")
    values = count_values(request.get("variables") or {})
    if values > limits.max_variable_values:
        raise _bad(
            f"`variables` holds {values} values; at most {limits.max_variable_values} (SEGMENTA_MAX_VARIABLE_VALUES)"
        )
    return request


def decode_json(text: str) -> Any:
    """`text` parsed, or RequestRefused (400) saying where it is not JSON, exactly as the json module
    parses it.  orjson parses, several times faster, unless the text holds a run of 20 digits (orjson
    reads an integer past 64 bits as a float, the json module as an integer); what orjson refuses (a
    lone surrogate escape, NaN, invalid JSON) goes to the json module, which accepts the first two and
    words the error for the rest."""
    if _LONG_DIGITS.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise _bad(f"the request body is not valid JSON: {error.msg} (line {error.lineno}, column {error.colno})") from None


def count_values(container: dict[str, Any] | list[Any]) -> int:
    """How many values `container` holds, nested ones included (an object's keys are not counted)."""
    count = 0
    pending: list[Any] = [container]
    while pending:
        current = pending.pop()
        count += 1
        if isinstance(current, dict):
            pending.extend(current.values())
        elif isinstance(current, list):
            pending.extend(current)
    return count - 1  # the container itself


def _bad(message: str) -> RequestRefused:
    return RequestRefused(400, BAD_REQUEST, message)


def _kind(value: Any) -> str:
    if value is None:
        return "null (or missing)"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(value), "a number")


def encode_response(data: Any) -> bytes:
    """A GraphQL response as JSON, by orjson (several times faster than the json module on a page of
    100 customers); anything orjson cannot encode goes through the json module as before."""
    try:
        return orjson.dumps(data)
    except TypeError:  # e.g. an integer past 64 bits, which orjson refuses
        return json.dumps(data, separators=(",", ":")).encode("utf-8")
