"""Web assets: jinja2 templates, static ES modules and CSS, and the i18n catalogs (vi, en)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
I18N = ROOT / "i18n"
