"""Reading and checking a request body (schema/http_body.py) and cancelling on disconnect
(schema/disconnect.py), without a server: fast, and every branch reached on purpose."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segmenta.schema.disconnect import run_until_disconnect
from segmenta.schema.http_body import ClientGone, RequestRefused, check_request, count_values, json_depth, read_body
from segmenta.schema.limits import RequestLimits

LIMITS = RequestLimits(max_variables_depth=5, max_variable_values=20)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='ab"\\[]{}é'),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(alphabet='k"[]{', max_size=3), children, max_size=3),
    max_leaves=20,
)


def reference_depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((reference_depth(item) for item in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((reference_depth(item) for item in value), default=0)
    return 0


@settings(max_examples=200)
@given(json_values, st.booleans())
def test_json_depth_counts_brackets_outside_strings(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert json_depth(text.encode()) == reference_depth(value)


def test_json_depth_is_linear_on_hostile_bodies() -> None:
    assert json_depth(b"[" * 100_000) == 100_000
    # A string that never ends, full of escaped quotes: one scan, not one per quote.
    assert json_depth(b'["' + b'\\"' * 200_000) == 1


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"query": "\xff"}', "not valid UTF-8 (byte 11)"),
        (b"[" * 7, "nests JSON 7 levels deep; at most 6"),
        (body(query="{ a }", variables={"a": [[[[[1]]]]]}), "nests JSON 7 levels deep"),
        (b'{"query": "{ a }"', "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (body(variables={}), "`query` must be a string"),
        (body(query=["{ a }"]), "`query` must be a string"),
        (body(query="{ a }", variables=[]), "`variables` must be a JSON object or null, not an array"),
        (body(query="{ a }", extensions="x"), "`extensions` must be a JSON object or null, not a string"),
        (body(query="{ a }", operationName=1), "`operationName` must be a string or null, not a number"),
        (body(query="{ a }", variables={"ids": list(range(21))}), "holds 22 values; at most 20"),
    ],
)
def test_bad_bodies_are_refused_with_400(raw: bytes, message: str) -> None:
    with pytest.raises(RequestRefused) as refused:
        check_request(raw, LIMITS)
    assert refused.value.status == 400
    assert refused.value.code == "BAD_REQUEST"
    assert message in refused.value.message


def test_a_good_body_is_returned_parsed() -> None:
    request = check_request(body(query="{ a }", variables={"a": [[[[1]]]]}, operationName=None), LIMITS)
    assert request["variables"] == {"a": [[[[1]]]]}


def test_count_values_counts_every_nested_value() -> None:
    assert count_values({}) == 0
    assert count_values({"a": 1, "b": [1, 2, {"c": None}]}) == 6


def receiving(*messages: dict[str, Any]) -> Any:
    pending = list(messages)
    asked: list[int] = []

    async def receive() -> dict[str, Any]:
        asked.append(1)
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()  # never: a client that stays silent
        raise AssertionError

    receive.asked = asked  # type: ignore[attr-defined]
    return receive


def chunk(data: bytes, more: bool) -> dict[str, Any]:
    return {"type": "http.request", "body": data, "more_body": more}


async def test_a_body_is_read_in_chunks_up_to_the_limit() -> None:
    receive = receiving(chunk(b"ab", True), chunk(b"cd", False))
    assert await read_body({}, receive, 4) == b"abcd"
    # Chunked past the limit: refused at the chunk that passes it, the rest is never asked for.
    receive = receiving(chunk(b"ab", True), chunk(b"cde", True), chunk(b"f", False))
    with pytest.raises(RequestRefused) as refused:
        await read_body({}, receive, 4)
    assert (refused.value.status, refused.value.code) == (413, "REQUEST_TOO_LARGE")
    assert len(receive.asked) == 2
    # A Content-Length over the limit: refused before reading anything.
    receive = receiving(chunk(b"abcdef", False))
    with pytest.raises(RequestRefused):
        await read_body({"content-length": "6"}, receive, 4)
    assert receive.asked == []
    # A Content-Length that lies low does not help.
    with pytest.raises(RequestRefused):
        await read_body({"content-length": "1"}, receiving(chunk(b"abcdef", False)), 4)
    with pytest.raises(RequestRefused) as refused:
        await read_body({"content-length": "many"}, receiving(), 4)
    assert refused.value.status == 400
    with pytest.raises(ClientGone):
        await read_body({}, receiving(chunk(b"ab", True), {"type": "http.disconnect"}), 4)


async def test_a_disconnect_cancels_the_handler_and_a_finished_one_is_left_alone() -> None:
    cancelled = asyncio.Event()

    async def endless(receive: Any, send: Any) -> None:
        assert await receive() == chunk(b"body", False)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    gone = receiving({"type": "http.disconnect"})
    assert await asyncio.wait_for(run_until_disconnect(endless, b"body", gone, send), 30) is True
    assert cancelled.is_set()

    async def answers(receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.01)  # the client goes away while the body is on its way: not cancelled
        await send({"type": "http.response.body", "body": b"ok"})

    assert await run_until_disconnect(answers, b"", receiving({"type": "http.disconnect"}), send) is False
    assert sent[-1] == {"type": "http.response.body", "body": b"ok"}


def test_responses_encode_as_the_json_module_would() -> None:
    import json

    from segmenta.schema.http_body import encode_response

    answer = {"data": {"customers": {"nodes": [{"name": "Zoë ✓", "total": "12.50", "n": 3, "avg": 0.1, "none": None}]}},
              "extensions": {"warnings": [{"path": ["customers"], "big": 2**70}]}}
    assert json.loads(encode_response(answer)) == answer  # 2**70 is past orjson's integers: json encodes it


_JSON_PIECES = st.sampled_from(
    ['{"a": 1}', "[", "]", "{", "}", '"x"', '"\\ud800"', '"\\u0000"', "NaN", "Infinity", "1e400", "18446744073709551616",
     "-0", "1.5", ",", ":", " ", "null", "true", '"é"', '"\\n"', '{"a": 1, "a": 2}', "\ud800"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_JSON_PIECES, max_size=8).map("".join))
def test_decoding_answers_as_the_json_module_does(text: str) -> None:
    """orjson parses first for speed; whatever it refuses the json module decides, so the answer
    (value or refusal) is always the json module's."""
    from segmenta.schema.http_body import RequestRefused, decode_json

    try:
        expected: object = json.loads(text)
    except json.JSONDecodeError:
        expected = RequestRefused
    try:
        got: object = decode_json(text)
    except RequestRefused:
        got = RequestRefused
    assert repr(got) == repr(expected)  # repr: NaN equals itself, 1 differs from 1.0
