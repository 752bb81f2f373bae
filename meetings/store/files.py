"""Content-addressed file storage under the data dir: ``files/ab/cdef…`` by SHA-256.

A file is written to a temporary name, hashed while streaming, then renamed into place, so a
reader never sees half a file and the same content is stored (and later processed) once.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import Invalid, NotFound

_HEX = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    path: Path
    created: bool  # False when the same content was already stored


class FileTooLarge(Invalid):
    def __init__(self, limit: int):
        super().__init__(f"file is larger than {limit} bytes", code="file_too_large", details={"max_bytes": limit})


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"

    def path_of(self, sha256: str) -> Path:
        if not _HEX.match(sha256):
            raise NotFound("no such file", code="file_not_found")
        return self.root / sha256[:2] / sha256[2:]

    def exists(self, sha256: str) -> bool:
        return self.path_of(sha256).is_file()

    async def put_stream(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StoredFile:
        """Stream ``chunks`` to disk (never whole in memory), hashing as it goes."""
        self.tmp.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix="up-")
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > max_bytes:
                        raise FileTooLarge(max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
            return self._commit(Path(tmp_name), digest.hexdigest(), size)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise

    def put_bytes(self, data: bytes) -> StoredFile:
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix="put-")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        return self._commit(Path(tmp_name), hashlib.sha256(data).hexdigest(), len(data))

    def _commit(self, tmp: Path, sha256: str, size: int) -> StoredFile:
        final = self.path_of(sha256)
        if final.exists():
            tmp.unlink(missing_ok=True)
            return StoredFile(sha256, size, final, created=False)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o640)
        os.replace(tmp, final)
        return StoredFile(sha256, size, final, created=True)

    def delete(self, sha256: str) -> None:
        self.path_of(sha256).unlink(missing_ok=True)
