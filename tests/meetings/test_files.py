"""Content-addressed files: streamed, hashed, stored once, never half-written."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meetings.errors import Invalid, NotFound
from meetings.store.files import FileStore


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_same_content_is_stored_once(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    first = await store.put_stream(_chunks(b"%PDF-1.7 ", b"noi dung"), max_bytes=1000)
    second = await store.put_stream(_chunks(b"%PDF-1.7 noi", b" dung"), max_bytes=1000)
    assert first.sha256 == second.sha256 == hashlib.sha256(b"%PDF-1.7 noi dung").hexdigest()
    assert first.created and not second.created
    assert first.path.read_bytes() == b"%PDF-1.7 noi dung"
    assert first.path == tmp_path / "files" / first.sha256[:2] / first.sha256[2:]
    assert list((tmp_path / "files" / "tmp").iterdir()) == []


async def test_too_large_leaves_nothing(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    with pytest.raises(Invalid) as info:
        await store.put_stream(_chunks(b"x" * 600, b"y" * 600), max_bytes=1000)
    assert info.value.code == "file_too_large"
    leftovers = [p for p in (tmp_path / "files").rglob("*") if p.is_file()]
    assert leftovers == []


def test_bad_hash_is_not_a_path(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    for bad in ("../../etc/passwd", "ab", "Z" * 64):
        with pytest.raises(NotFound):
            store.path_of(bad)
