"""A document with its annotations as real PDF annotations (tài liệu kèm ghi chú).

Ink becomes an /Ink annotation, a highlight a /Highlight, a note a /Text (sticky note), an
arrow a /Line with an arrow head: any PDF reader shows them, lists them and lets the reader
hide them. The original file is copied and the annotations are added with an *incremental*
save, so the original bytes are the untouched first part of the export (a file MuPDF had to
repair cannot be saved incrementally and is saved whole instead).

Runs in a thread: the file passed the upload probe, and adding a few annotations is cheap.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pymupdf

from .annotations import Annotation

LINE_END_NONE: int = getattr(pymupdf, "PDF_ANNOT_LE_NONE", 0)
LINE_END_CLOSED_ARROW: int = getattr(pymupdf, "PDF_ANNOT_LE_CLOSED_ARROW", 5)


def _rgb(color: str) -> tuple[float, float, float]:
    return (int(color[1:3], 16) / 255, int(color[3:5], 16) / 255, int(color[5:7], 16) / 255)


def _to_page(page: pymupdf.Page, x: float, y: float) -> pymupdf.Point:
    """A normalised point of the displayed page → unrotated page coordinates."""
    rect = page.rect
    return pymupdf.Point(rect.x0 + x * rect.width, rect.y0 + y * rect.height) * page.derotation_matrix


def add_annotation(page: pymupdf.Page, annotation: Annotation) -> None:
    data = annotation.data
    kind = annotation.kind
    if kind == "ink":
        strokes: list[list[tuple[float, float]]] = []
        for stroke in data["strokes"]:
            points = [_to_page(page, x, y) for x, y in stroke]
            strokes.append([(p.x, p.y) for p in points])
        strokes = [s if len(s) > 1 else s * 2 for s in strokes]  # a dot is a stroke of one point
        annot = page.add_ink_annot(strokes)
        annot.set_colors(stroke=_rgb(data["color"]))
        annot.set_border(width=float(data["width"]))
    elif kind == "highlight":
        x0, y0, x1, y1 = data["rect"]
        rect = pymupdf.Rect(_to_page(page, x0, y0), _to_page(page, x1, y1)).normalize()
        annot = page.add_highlight_annot(rect)
        annot.set_colors(stroke=_rgb(data["color"]))
    elif kind == "note":
        annot = page.add_text_annot(_to_page(page, *data["at"]), data["text"], icon="Note")
    elif kind == "arrow":
        annot = page.add_line_annot(_to_page(page, *data["from"]), _to_page(page, *data["to"]))
        annot.set_line_ends(LINE_END_NONE, LINE_END_CLOSED_ARROW)
        annot.set_colors(stroke=_rgb(data["color"]), fill=_rgb(data["color"]))
        annot.set_border(width=float(data["width"]))
    else:  # pragma: no cover - validated on input
        return
    annot.set_info(title=annotation.author_label, content=data.get("text", "") if kind == "note" else "")
    annot.update()


def export_annotated(source: Path, annotations: Sequence[Annotation], out_dir: Path) -> Path:
    """A new PDF file in ``out_dir``: ``source`` plus ``annotations``. The caller deletes it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=out_dir, prefix="export-", suffix=".pdf")
    os.close(fd)
    target = Path(name)
    try:
        shutil.copyfile(source, target)
        doc = pymupdf.open(str(target))
        try:
            for annotation in annotations:
                if 1 <= annotation.page <= doc.page_count:
                    add_annotation(doc[annotation.page - 1], annotation)
            if doc.can_save_incrementally():
                doc.saveIncr()
                doc.close()
            else:
                whole = target.with_suffix(".full.pdf")
                doc.save(str(whole), garbage=1, deflate=True)
                doc.close()
                whole.replace(target)
        finally:
            if not doc.is_closed:
                doc.close()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target
