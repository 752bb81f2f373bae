"""The render cache on disk: ``<root>/ab/<sha256>/<kind>-<width>-q<quality>/00001.jpg``.

Keyed by the document's SHA-256, the page, the kind and every setting that changes the pixels,
so a changed setting never serves stale images and the same file uploaded twice is rendered
once. Files are written atomically (temporary name, then rename). A page that failed leaves a
``00001.failed.json`` marker and a placeholder image: asking again does not burn another
render timeout on the same hostile page.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from .errors import PageNotFound
from .limits import DocumentLimits
from .render import PageImage, PageKind, atomic_write, placeholder_image

_HEX = re.compile(r"^[0-9a-f]{64}$")


class RenderCache:
    """Paths and lookups of rendered pages. Safe to share between processes."""

    def __init__(self, root: Path, limits: DocumentLimits) -> None:
        self.root = Path(root)
        self.limits = limits

    def document_dir(self, sha256: str) -> Path:
        if not _HEX.match(sha256):
            raise PageNotFound("no such document", details={"sha256": sha256})
        return self.root / sha256[:2] / sha256

    def kind_dir(self, sha256: str, kind: PageKind) -> Path:
        limits = self.limits
        return self.document_dir(sha256) / (
            f"{kind}-{limits.width_of(kind)}-q{limits.image_quality}")

    def image_path(self, sha256: str, page: int, kind: PageKind) -> Path:
        return self.kind_dir(sha256, kind) / f"{page:05d}.{self.limits.extension}"

    def failure_path(self, sha256: str, page: int, kind: PageKind) -> Path:
        return self.kind_dir(sha256, kind) / f"{page:05d}.failed.json"

    def placeholder_path(self, sha256: str, page: int, kind: PageKind) -> Path:
        return self.kind_dir(sha256, kind) / f"{page:05d}.failed.{self.limits.extension}"

    def lookup(self, sha256: str, page: int, kind: PageKind) -> PageImage | None:
        """The cached image (or recorded failure) of a page, without rendering anything."""
        path = self.image_path(sha256, page, kind)
        if path.is_file():
            return PageImage(sha256, page, kind, path, self.limits.media_type)
        failure = self.failure_path(sha256, page, kind)
        placeholder = self.placeholder_path(sha256, page, kind)
        if failure.is_file() and placeholder.is_file():
            try:
                code = str(json.loads(failure.read_text("utf-8"))["code"])
            except (OSError, ValueError, KeyError, TypeError):
                code = "render_failed"
            return PageImage(sha256, page, kind, placeholder, self.limits.media_type, code)
        return None

    def record_failure(self, sha256: str, page: int, kind: PageKind, code: str, message: str,
                       aspect: float) -> PageImage:
        """Write the placeholder, then the marker that makes lookups return it."""
        placeholder = self.placeholder_path(sha256, page, kind)
        atomic_write(placeholder, placeholder_image(self.limits.width_of(kind), aspect,
                                                    self.limits))
        marker = json.dumps({"code": code, "message": message}, ensure_ascii=False)
        atomic_write(self.failure_path(sha256, page, kind), marker.encode("utf-8"))
        return PageImage(sha256, page, kind, placeholder, self.limits.media_type, code)

    def forget_failures(self, sha256: str) -> int:
        """Drop recorded failures of a document (e.g. after raising a timeout), so the pages
        are tried again. Returns how many were dropped."""
        dropped = 0
        root = self.document_dir(sha256)
        if root.is_dir():
            for marker in root.glob("*/*.failed.json"):
                marker.unlink(missing_ok=True)
                dropped += 1
        return dropped

    def delete(self, sha256: str) -> None:
        """Remove every cached image of a document (when its file is deleted)."""
        shutil.rmtree(self.document_dir(sha256), ignore_errors=True)
