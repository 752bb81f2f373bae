"""The cheaper render pipeline must not change what readers see: MuPDF's Mitchell scaler for
slightly enlarged pictures (``tune_image_scaling``) against MuPDF's own painting, and the
libjpeg-turbo views against the lossless raster."""

from __future__ import annotations

import io

import numpy as np
import pymupdf
from PIL import Image

from meetings.documents import DocumentLimits
from meetings.documents.render import encode_raster, tune_image_scaling
from tests.data.make_pdfs import SamplePdfs


def pixels(pix: pymupdf.Pixmap) -> np.ndarray:
    return np.frombuffer(pix.samples, dtype=np.uint8).reshape(pix.height, pix.width,
                                                              pix.n).astype(np.int16)


def test_enlarged_pictures_look_the_same_with_the_mitchell_scaler(
        sample_pdfs: SamplePdfs) -> None:
    with pymupdf.open(sample_pdfs.agenda) as doc:
        page = doc[0]
        zoom = 1240 / page.rect.width  # the page's 480 px picture is drawn ~626 px wide
        matrix = pymupdf.Matrix(zoom, zoom)
        try:
            assert tune_image_scaling(enabled=False)
            default = pixels(page.get_pixmap(matrix=matrix, alpha=False))
            assert tune_image_scaling()
            tuned = pixels(page.get_pixmap(matrix=matrix, alpha=False))
        finally:
            tune_image_scaling(enabled=False)  # other tests in this process get MuPDF's rule
    diff = np.abs(default - tuned)
    assert diff.max() > 0, "the hook changed nothing: it is not in place"
    assert diff.mean() < 0.2  # measured 0.06 levels of 255
    assert (diff.max(axis=2) > 32).mean() < 0.0005  # only the picture's edges move, slightly


def test_a_jpeg_view_is_close_to_the_lossless_raster(sample_pdfs: SamplePdfs) -> None:
    limits = DocumentLimits()
    with pymupdf.open(sample_pdfs.agenda) as doc:
        page = doc[1]
        zoom = limits.view_width_px / page.rect.width
        lossless = pixels(page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), alpha=False))
        data = encode_raster(page.get_displaylist(), zoom, limits.view_width_px, limits)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG" and image.width == limits.view_width_px
        decoded = np.asarray(image.convert("RGB")).astype(np.int16)
    rows = min(decoded.shape[0], lossless.shape[0])
    error = (decoded[:rows] - lossless[:rows, :limits.view_width_px]).astype(np.float64)
    psnr = 10 * np.log10(255 ** 2 / np.mean(error ** 2))
    assert psnr > 38  # JPEG q80 of this page: ~40.8 dB, like Pillow's encoder before
