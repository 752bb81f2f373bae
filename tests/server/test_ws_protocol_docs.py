"""docs/protocol.md cannot drift from server/ws/protocol.py: every message type, every field,
every error code and every close code is documented, and nothing documented is gone."""

from __future__ import annotations

import re

import pytest

from server.ws import connection
from server.ws.protocol import CLIENT_MESSAGES, ERROR_CODES, SERVER_MESSAGES, json_fields
from tests.conftest import REPO

DOC = (REPO / "docs" / "protocol.md").read_text(encoding="utf-8")


def section(title: str, text: str = DOC, level: str = "##") -> str:
    """The body of the heading ``title`` (up to the next heading of the same level)."""
    match = re.search(
        rf"^{level} {re.escape(title)}\s*$(.*?)(?=^{level} |\Z)", text, re.MULTILINE | re.DOTALL
    )
    assert match, f"docs/protocol.md has no heading {level} {title}"
    return match.group(1)


def documented_types(body: str) -> set[str]:
    return set(re.findall(r"^### `([a-z_.]+)`", body, re.MULTILINE))


@pytest.mark.parametrize(
    "title, messages",
    [
        ("Client → server messages", CLIENT_MESSAGES),
        ("Server → client messages", SERVER_MESSAGES),
    ],
)
def test_every_message_type_and_field_is_documented(title: str, messages: dict[str, type]) -> None:
    body = section(title)
    assert documented_types(body) == set(messages), "documented types differ from protocol.py"
    for type_, cls in messages.items():
        text = section(f"`{type_}`", body, "###")
        assert "```json" in text, f"{type_}: no example"
        for name in json_fields(cls):
            assert f"`{name}`" in text, f"{title} / {type_}: field {name!r} is not documented"


def test_every_error_code_is_documented() -> None:
    body = section("Error codes")
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", body, re.MULTILINE))
    assert documented == set(ERROR_CODES)


def test_every_close_code_is_documented() -> None:
    body = section("Close codes")
    codes = {value for name, value in vars(connection).items() if name.startswith("CLOSE_")}
    documented = {int(c) for c in re.findall(r"^\| (\d{4}) \|", body, re.MULTILINE)}
    assert codes <= documented


def test_the_resume_and_heartbeat_rules_are_documented() -> None:
    assert "three heartbeats" in section("Heartbeat")
    resume = section("Resume")
    for word in ("resume_window_s", "last_seq", "4000", "timeout"):
        assert word in resume
