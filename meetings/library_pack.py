"""The meeting pack (bộ tài liệu): one zip of the current version of every document a caller
may see, built once per set of files and kept on disk so a broken download resumes with HTTP
Range against the same bytes."""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from .library_models import Document
from .store.files import FileStore


def pack_entries(docs: Sequence[Document]) -> list[tuple[str, str]]:
    """(name in the zip, sha256) per document, names unique and safe."""
    entries: list[tuple[str, str]] = []
    used: set[str] = set()
    for index, document in enumerate(docs, start=1):
        version = document.current
        base = "".join(ch if ch.isalnum() or ch in " -_.()" else "_" for ch in document.title)[:80].strip()
        name = f"{index:02d} - {base or 'document'}.pdf"
        if name in used:
            name = f"{index:02d} - {document.id}.pdf"
        used.add(name)
        entries.append((name, version.sha256))
    return entries


def build_pack(files: FileStore, root: Path, docs: Sequence[Document]) -> Path:
    """The zip for ``docs`` (stored, not compressed: PDFs are compressed already); built once
    per content and file names, atomically."""
    entries = pack_entries(docs)
    key = hashlib.sha256("\n".join(f"{n}\t{s}" for n, s in entries).encode("utf-8")).hexdigest()
    target = root / f"{key}.zip"
    if target.is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=root, prefix="pack-")
    try:
        with os.fdopen(fd, "wb") as out, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
            for name, sha256 in entries:
                info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED
                with files.path_of(sha256).open("rb") as source, archive.open(info, "w") as dest:
                    while chunk := source.read(1 << 20):
                        dest.write(chunk)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
