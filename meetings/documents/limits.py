"""Limits and rendering settings of the document engine (the ``documents`` config section).

Every number that bounds what an uploaded PDF may cost the server lives here, so the upload
form can show the limits *before* the upload and the worker processes enforce the same values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MIB = 1024 * 1024

ImageFormat = Literal["jpeg", "webp"]


@dataclass(frozen=True)
class DocumentLimits:
    """What one document and one render may cost. Validated on construction."""

    max_bytes: int = 100 * MIB
    """Largest accepted upload, in bytes."""
    max_pages: int = 2000
    """Most pages one document may have (10,000 blank pages open in 1 ms: enforce our own)."""
    max_page_pt: float = 14400.0
    """Largest page side in PDF points (1/72 in); 14400 pt (200 in) is the PDF 1.7 limit."""
    view_width_px: int = 1240
    """Width of a page view (≈150 dpi for A4)."""
    thumb_width_px: int = 200
    """Width of a thumbnail."""
    max_pixels: int = 16_000_000
    """Cap on the pixels of one raster; a very tall page renders narrower than the target."""
    image_format: ImageFormat = "jpeg"
    """Encoder for views and thumbnails (Pillow): jpeg, or webp (smaller files, ~2x CPU)."""
    image_quality: int = 80
    """JPEG/WebP quality, 1..100."""
    render_timeout_s: float = 10.0
    """CPU-bound render of one page (views and thumbnail together) before it is abandoned."""
    probe_timeout_s: float = 30.0
    """Opening and checking a file (repairing a broken one can take a while)."""
    text_timeout_s: float = 60.0
    """Extracting the text of every page of one document."""
    worker_memory_bytes: int = 1536 * MIB
    """RLIMIT_AS of each worker process: a raster that would exceed it fails cleanly."""
    worker_store_soft_bytes: int = 400 * MIB
    """Resident size above which a worker empties MuPDF's cache after a job."""
    worker_max_jobs: int = 2000
    """Jobs after which a worker process is replaced by a fresh one (bounds fragmentation)."""

    def __post_init__(self) -> None:
        _int_range("max_bytes", self.max_bytes, 1, 1 << 40)
        _int_range("max_pages", self.max_pages, 1, 1_000_000)
        _num_range("max_page_pt", self.max_page_pt, 72.0, 1_000_000.0)
        _int_range("view_width_px", self.view_width_px, 16, 20_000)
        _int_range("thumb_width_px", self.thumb_width_px, 16, 20_000)
        if self.thumb_width_px > self.view_width_px:
            raise ValueError("documents.thumb_width_px must not exceed documents.view_width_px")
        _int_range("max_pixels", self.max_pixels, self.view_width_px ** 2, 1 << 31)
        if self.image_format not in ("jpeg", "webp"):
            raise ValueError("documents.image_format must be 'jpeg' or 'webp'")
        _int_range("image_quality", self.image_quality, 1, 100)
        _num_range("render_timeout_s", self.render_timeout_s, 0.05, 3600.0)
        _num_range("probe_timeout_s", self.probe_timeout_s, 0.05, 3600.0)
        _num_range("text_timeout_s", self.text_timeout_s, 0.05, 3600.0)
        _int_range("worker_memory_bytes", self.worker_memory_bytes, 256 * MIB, 1 << 46)
        _int_range("worker_store_soft_bytes", self.worker_store_soft_bytes, 16 * MIB,
                   self.worker_memory_bytes)
        _int_range("worker_max_jobs", self.worker_max_jobs, 1, 10_000_000)

    def width_of(self, kind: str) -> int:
        """Target pixel width of a page image kind (``view`` or ``thumb``)."""
        if kind == "view":
            return self.view_width_px
        if kind == "thumb":
            return self.thumb_width_px
        raise ValueError(f"unknown page image kind {kind!r}")

    @property
    def media_type(self) -> str:
        return "image/webp" if self.image_format == "webp" else "image/jpeg"

    @property
    def extension(self) -> str:
        return "webp" if self.image_format == "webp" else "jpg"


def _int_range(name: str, value: int, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"documents.{name} must be an integer, got {value!r}")  # noqa: TRY004
    if not low <= value <= high:
        raise ValueError(f"documents.{name} must be between {low} and {high}, got {value}")


def _num_range(name: str, value: float, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"documents.{name} must be a number, got {value!r}")  # noqa: TRY004
    if not low <= value <= high:
        raise ValueError(f"documents.{name} must be between {low} and {high}, got {value}")
