"""The protocol module alone: parsing untrusted frames (fuzzed) and encoding replies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.ws.protocol import (
    CLIENT_MESSAGES,
    ERROR_CODES,
    ChatPosted,
    ErrorReply,
    Hello,
    Join,
    Leave,
    Ping,
    ProtocolError,
    SendChat,
    encode,
    parse_client_message,
    stamp,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
field_names = st.sampled_from(
    ["type", "id", "v", "token", "resume", "last_seq", "meeting_id", "text", "t"]
)
messages = st.dictionaries(field_names, json_values, max_size=6)
plausible = st.builds(
    lambda type_, extra: {"type": type_, **extra},
    st.sampled_from(sorted(CLIENT_MESSAGES) + ["Hello", "", "chat "]),
    st.dictionaries(field_names, json_values, max_size=5),
)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(raw: str | bytes) -> None:
    try:
        message = parse_client_message(raw)
    except ProtocolError as exc:
        assert exc.code in ERROR_CODES
        assert exc.re is None or isinstance(exc.re, (str, int))
        json.dumps(encode(ErrorReply(exc.code, exc.message, exc.details), re=exc.re))
        encode(ErrorReply(exc.code, exc.message, exc.details), re=exc.re).encode("utf-8")
        return
    assert type(message) in CLIENT_MESSAGES.values()
    for value in vars(message).values():  # everything accepted can be stored and echoed
        if isinstance(value, str):
            value.encode("utf-8")


@FUZZ
@given(json_values)
def test_any_json_value(value: Any) -> None:
    check(json.dumps(value))


@FUZZ
@given(st.one_of(messages, plausible))
def test_any_message_shaped_object(value: dict[str, Any]) -> None:
    check(json.dumps(value))
    check(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary(max_size=200))
def test_any_bytes(raw: bytes) -> None:
    check(raw)


@FUZZ
@given(st.text(max_size=200))
def test_any_text(raw: str) -> None:
    check(raw)


def test_pathological_frames() -> None:
    frames: list[str | bytes] = [
        "[" * 50000,
        '{"a":' * 50000,
        "1" * 10000,
        "-" + "9" * 5000,
        '{"type":"ping","t":1e400}',
        '{"type":"ping","t":-Infinity}',
        "\ud800",
        b"\xed\xa0\x80",
        '{"type":"chat","text":"\\udfff"}',
    ]
    for raw in frames:
        with pytest.raises(ProtocolError):
            parse_client_message(raw)


def test_valid_messages() -> None:
    assert parse_client_message('{"type":"hello","v":1,"token":"dcs_x","id":"a"}') == Hello(
        1, "dcs_x", id="a"
    )
    assert parse_client_message('{"type":"hello","v":1,"resume":"r","last_seq":4}') == Hello(
        1, resume="r", last_seq=4
    )
    assert parse_client_message(b'{"type":"join","meeting_id":12,"id":7,"extra":true}') == Join(
        12, id=7
    )
    assert parse_client_message('{"type":"leave"}') == Leave()
    assert parse_client_message('{"type":"chat","text":"Xin chào","id":null}') == SendChat(
        "Xin chào"
    )
    assert parse_client_message('{"type":"ping","t":"x"}') == Ping("x")
    with pytest.raises(ProtocolError) as info:
        parse_client_message('{"type":"hello","v":2,"id":5}')
    assert (info.value.code, info.value.re, info.value.details) == (
        "bad_version",
        5,
        {"supported": [1]},
    )


def test_encoding() -> None:
    chat = ChatPosted(
        5, 12, {"kind": "point", "label": "Xã Tân Lập"}, "Đã nghe rõ", "2026-03-02T07:30:00.000Z"
    )
    body = encode(chat)
    assert json.loads(body) == {
        "type": "chat",
        "id": 5,
        "meeting_id": 12,
        "from": {"kind": "point", "label": "Xã Tân Lập"},
        "text": "Đã nghe rõ",
        "at": "2026-03-02T07:30:00.000Z",
    }
    assert "Đã nghe rõ" in body  # UTF-8, not \\u escapes
    assert json.loads(stamp(body, seq=3, re="c1")) == {**json.loads(body), "seq": 3, "re": "c1"}
    assert json.loads(encode(ErrorReply("not_joined", "join first"), re=2)) == {
        "type": "error",
        "code": "not_joined",
        "message": "join first",
        "re": 2,
    }
