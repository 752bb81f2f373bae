"""media/ stays a library: no aiohttp, no module-level mutable state, small modules."""

from __future__ import annotations

import ast
from pathlib import Path

MEDIA = Path(__file__).resolve().parents[2] / "media"


def test_media_never_imports_aiohttp() -> None:
    for path in MEDIA.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "aiohttp" for n in names), path.name


def test_modules_are_small() -> None:
    for path in MEDIA.glob("*.py"):
        assert len(path.read_text().splitlines()) <= 400, path.name
