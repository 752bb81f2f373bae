"""Rasterise one page into views and thumbnails: PyMuPDF raster + Pillow encoder.

Runs inside a worker process. The zoom comes from the target *pixel width* and the page width,
capped by ``max_pixels`` — never from a dpi: a 14400 x 14400 pt page at 150 dpi is a MuPDF
limit error and at 72 dpi a 1.35 GB raster, at 1240 px wide it is 1.5 MP. PyMuPDF's own JPEG
and PNG encoders are 3x slower than Pillow's (LAB.md), so pixels go to Pillow without a copy.
"""

from __future__ import annotations

import io
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pymupdf
from PIL import Image, ImageDraw
from pymupdf import mupdf

from .limits import DocumentLimits

_EVERYWHERE = mupdf.FzRect(mupdf.FzRect.Fixed_INFINITE)

PageKind = Literal["view", "thumb"]
PAGE_KINDS: tuple[PageKind, ...] = ("view", "thumb")


@dataclass(frozen=True)
class PageImage:
    """A rendered page image in the cache, or the placeholder shown for a page that failed."""

    sha256: str
    page: int
    """1-based page number."""
    kind: PageKind
    path: Path
    media_type: str
    error: str | None = None
    """Stable code when ``path`` is a placeholder: render_timeout, out_of_memory,
    render_failed, worker_crashed. Serve placeholders without long-lived cache headers."""

    @property
    def placeholder(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class OutputSpec:
    """One image a render job must produce."""

    kind: PageKind
    width: int
    dest: str


@dataclass(frozen=True)
class OutputResult:
    kind: PageKind
    ok: bool
    error: str | None = None
    message: str = ""


@dataclass(frozen=True)
class RenderReport:
    """What a worker reports back for one page job."""

    page: int
    outputs: tuple[OutputResult, ...]
    page_width_pt: float | None
    page_height_pt: float | None
    cpu_s: float
    rss_bytes: int
    warnings: tuple[str, ...] = ()


def fit_zoom(width_pt: float, height_pt: float, target_width_px: int,
             max_pixels: int) -> float:
    """Zoom that makes the page ``target_width_px`` wide, reduced so the raster stays within
    ``max_pixels`` (only pages much taller than wide hit the cap)."""
    if width_pt <= 0 or height_pt <= 0:
        raise ValueError("page has an empty size")
    zoom = target_width_px / width_pt
    if (width_pt * zoom) * (height_pt * zoom) > max_pixels:
        zoom = math.sqrt(max_pixels / (width_pt * height_pt))
    return zoom


def render_page(page: pymupdf.Page, outputs: tuple[OutputSpec, ...],
                limits: DocumentLimits) -> None:
    """Render ``outputs`` of ``page`` and write them atomically to their ``dest`` paths.

    The page is interpreted once into a display list; each output is rasterised from it at its
    own zoom (a 200 px thumbnail costs MuPDF about 1 ms, less than scaling the view down with
    Pillow). MuPDF errors (a raster over the memory limit, a broken content stream) propagate.
    """
    rect = page.rect
    contents = page.get_displaylist()
    for spec in outputs:
        zoom = fit_zoom(rect.width, rect.height, spec.width, limits.max_pixels)
        wanted = max(1, min(spec.width, round(rect.width * zoom)))
        atomic_write(Path(spec.dest), encode_raster(contents, zoom, wanted, limits))


def encode_raster(contents: pymupdf.DisplayList, zoom: float, width: int,
                  limits: DocumentLimits) -> bytes:
    """Rasterise ``contents`` at ``zoom`` and encode it ``width`` pixels wide.

    MuPDF draws into an RGB pixmap *with* an alpha byte, pre-filled opaque white: Pillow maps
    those 4-byte pixels as "RGBX" without a copy (3-byte RGB would be unpacked into a new
    image: ~1 ms per view) and its JPEG encoder reads RGBX directly. The memoryview over
    MuPDF's samples is released before the pixmap can be freed (PyMuPDF issue #4155).
    """
    matrix = mupdf.FzMatrix(zoom, 0, 0, zoom, 0, 0)
    bbox = mupdf.fz_round_rect(
        mupdf.fz_transform_rect(mupdf.fz_bound_display_list(contents.this), matrix))
    pix = mupdf.fz_new_pixmap_with_bbox(pymupdf.csRGB.this, bbox, mupdf.FzSeparations(), 1)
    mupdf.fz_clear_pixmap_with_value(pix, 0xFF)  # white, and opaque: alpha bytes are 255 too
    device = mupdf.fz_new_draw_device(matrix, pix)
    try:
        mupdf.fz_run_display_list(contents.this, device, mupdf.FzMatrix(), _EVERYWHERE,
                                  mupdf.FzCookie())
    finally:
        mupdf.fz_close_device(device)
    samples = mupdf.fz_pixmap_samples_memoryview(pix)
    image = Image.frombuffer("RGBX", (pix.w(), pix.h()), samples, "raw", "RGBX", 0, 1)
    try:
        return encode_image(exact_width(image, width), limits)
    finally:
        del image  # drop Pillow's hold on the buffer, then the view, then (on return) the pixmap
        samples.release()


def exact_width(image: Image.Image, width: int) -> Image.Image:
    """MuPDF rounds a raster outward, so it may come back a pixel wider or narrower than asked:
    crop the extra column, or stretch the missing one."""
    if image.width == width:
        return image
    if image.width > width:
        return image.crop((0, 0, width, image.height))
    height = max(1, round(image.height * width / image.width))
    return image.resize((width, height), Image.Resampling.BILINEAR)


def encode_image(image: Image.Image, limits: DocumentLimits) -> bytes:
    out = io.BytesIO()
    if limits.image_format == "webp":
        image.save(out, "WEBP", quality=limits.image_quality, method=0)
    else:
        image.save(out, "JPEG", quality=limits.image_quality)
    return out.getvalue()


def placeholder_image(width: int, aspect: float, limits: DocumentLimits) -> bytes:
    """A neutral grey page with a warning mark and no words (the UI says what happened, in
    the reader's language): shown for a page that could not be rendered."""
    width = max(16, width)
    height = max(16, min(round(width * aspect), limits.max_pixels // width))
    image = Image.new("RGB", (width, height), (236, 236, 236))
    draw = ImageDraw.Draw(image)
    border = max(1, width // 200)
    draw.rectangle((0, 0, width - 1, height - 1), outline=(190, 190, 190), width=border)
    radius = max(4, min(width, height) // 8)
    cx, cy = width // 2, height // 2
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=(160, 160, 160))
    bar = max(1, radius // 5)
    draw.rectangle((cx - bar // 2, cy - radius * 6 // 10, cx + bar // 2, cy + radius // 5),
                   fill=(236, 236, 236))
    dot = max(1, bar // 2 + 1)
    draw.ellipse((cx - dot, cy + radius * 4 // 10 - dot, cx + dot, cy + radius * 4 // 10 + dot),
                 fill=(236, 236, 236))
    return encode_image(image, limits)


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or the whole file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
