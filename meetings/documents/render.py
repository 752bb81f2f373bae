"""Rasterise one page into views and thumbnails: MuPDF raster + libjpeg-turbo encoder.

Runs inside a worker process. The zoom comes from the target *pixel width* and the page width,
capped by ``max_pixels`` — never from a dpi: a 14400 x 14400 pt page at 150 dpi is a MuPDF
limit error and at 72 dpi a 1.35 GB raster, at 1240 px wide it is 1.5 MP. PyMuPDF's own JPEG
and PNG encoders are 3x slower than libjpeg-turbo (LAB.md), so MuPDF's pixels go to
``simplejpeg`` (libjpeg-turbo's one-call API) without a copy; Pillow encodes WebP and the
placeholders.

Where the CPU of a view goes (100-page agenda, one worker, docs/documents.md): the page's
picture (decode and scale) about a third, the JPEG encoder about a third, text, lines and
clearing the raster the rest. :func:`tune_image_scaling` makes the picture cheaper without
changing how it looks.
"""

from __future__ import annotations

import ctypes
import io
import logging
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pymupdf
from PIL import Image, ImageDraw
from pymupdf import mupdf

if TYPE_CHECKING:
    import numpy as np

from .limits import DocumentLimits

log = logging.getLogger(__name__)

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
    own zoom (a 200 px thumbnail costs MuPDF under 1 ms, less than scaling the view down with
    Pillow or MuPDF: both must read the whole view). MuPDF errors (a raster over the memory
    limit, a broken content stream) propagate.
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

    MuPDF draws into a 3-byte RGB pixmap without alpha, pre-filled white (a quarter less
    memory to clear and to read than RGB + alpha); libjpeg-turbo reads those pixels in place.
    The memoryview over MuPDF's samples is released before the pixmap can be freed (PyMuPDF
    issue #4155).
    """
    matrix = mupdf.FzMatrix(zoom, 0, 0, zoom, 0, 0)
    bbox = mupdf.fz_round_rect(
        mupdf.fz_transform_rect(mupdf.fz_bound_display_list(contents.this), matrix))
    pix = mupdf.fz_new_pixmap_with_bbox(pymupdf.csRGB.this, bbox, mupdf.FzSeparations(), 0)
    mupdf.fz_clear_pixmap_with_value(pix, 0xFF)  # white
    device = mupdf.fz_new_draw_device(matrix, pix)
    try:
        mupdf.fz_run_display_list(contents.this, device, mupdf.FzMatrix(), _EVERYWHERE,
                                  mupdf.FzCookie())
    finally:
        mupdf.fz_close_device(device)
    samples = mupdf.fz_pixmap_samples_memoryview(pix)
    try:
        if limits.image_format == "jpeg" and pix.w() >= width:
            import numpy

            pixels = numpy.frombuffer(samples, dtype=numpy.uint8).reshape(pix.h(), pix.w(),
                                                                        pix.n())
            try:
                return encode_jpeg(pixels[:, :width], limits)  # a column MuPDF added is cut
            finally:
                del pixels
        image = Image.frombuffer("RGB", (pix.w(), pix.h()), samples, "raw", "RGB", 0, 1)
        try:
            return encode_image(exact_width(image, width), limits)
        finally:
            del image
    finally:
        samples.release()  # no view may outlive the pixmap (freed on return)


def encode_jpeg(pixels: np.ndarray, limits: DocumentLimits) -> bytes:
    """Baseline JPEG with 4:2:0 chroma, accurate DCT, at the configured quality: the same
    settings as Pillow's and libjpeg's defaults (and pdftoppm's), in one libjpeg-turbo call."""
    import simplejpeg

    data: bytes = simplejpeg.encode_jpeg(pixels, quality=limits.image_quality, colorspace="RGB",
                                         colorsubsampling="420", fastdct=False)
    return data


NATIVE_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def limit_native_threads() -> None:
    """One native thread for numpy's BLAS in a worker process, set before numpy is imported.

    simplejpeg needs numpy, and numpy's OpenBLAS starts a thread per core at import, each
    with its own buffers: on a large server that is gigabytes of address space, inside the
    worker's RLIMIT_AS (``worker_memory_bytes``). A worker never does linear algebra. This
    module therefore imports numpy and simplejpeg only when it first encodes, which in a
    worker is :func:`~.worker.warm_up`, after :func:`~.worker.init_worker` called this.
    """
    for name in NATIVE_THREAD_VARIABLES:
        os.environ[name] = "1"


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
    """Encode a Pillow image (WebP, placeholders, a raster that had to be stretched)."""
    out = io.BytesIO()
    if limits.image_format == "webp":
        image.save(out, "WEBP", quality=limits.image_quality, method=0)
    else:
        image.save(out, "JPEG", quality=limits.image_quality)
    return out.getvalue()


_SCALE_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                             ctypes.c_int, ctypes.c_int)


def _scale_smoothly(_arg: int | None, dst_w: int, dst_h: int, src_w: int, src_h: int) -> int:
    """MuPDF's image-scale tuning hook: 1 = resample the picture with the Mitchell filter
    before painting it. MuPDF's own rule says 1 only when shrinking; we also say 1 when
    enlarging less than twice."""
    return int(dst_w < 2 * src_w and dst_h < 2 * src_h)


_scale_hook = _SCALE_FN(_scale_smoothly)  # kept alive for as long as MuPDF may call it


def tune_image_scaling(enabled: bool = True) -> bool:
    """Resample pictures drawn up to 2x their size with MuPDF's Mitchell scaler (the filter
    it already uses for every picture it shrinks) instead of per-pixel bilinear painting.

    A photo in an A4 page is usually drawn a little larger than its pixels at 1240 px wide
    (480 px drawn 626 px wide in the benchmark): MuPDF then interpolates every output pixel
    through its generic affine painter, which cost ~3 ms a view, more than all the text. The
    scaler makes the same picture in ~1 ms; the two results differ by a mean of 0.06 levels
    (out of 255) per pixel (docs/documents.md). Pictures enlarged 2x and more keep MuPDF's
    behaviour (crisp pixels unless the PDF asks for interpolation).

    MuPDF takes the hook as a C function pointer, which PyMuPDF's bindings cannot pass, so it
    is set with ctypes on the libmupdf that PyMuPDF already loaded (never another copy).
    ``enabled=False`` puts MuPDF's own rule back. Returns whether the call took effect;
    without the hook pages render as before, only slower.
    """
    package = Path(pymupdf.__file__).resolve().parent
    libraries = sorted(package.glob("libmupdf.so*"))
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            loaded = maps.read()
    except OSError:
        loaded = ""
    library = next((path for path in libraries if str(path.resolve()) in loaded), None)
    if library is None:
        log.info("MuPDF's image-scale hook is not set: no loaded libmupdf in %s", package)
        return False
    try:
        lib = ctypes.CDLL(str(library))
        tune = lib.fz_tune_image_scale
        tune.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        tune.restype = None
        context = int(mupdf.internal_context_get().this)
        hook = _scale_hook if enabled else lib.fz_default_image_scale
        tune(context, ctypes.cast(hook, ctypes.c_void_p), None)
    except (OSError, AttributeError, TypeError, ValueError) as exc:
        log.info("MuPDF's image-scale hook is not set: %s", exc)
        return False
    return True


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
