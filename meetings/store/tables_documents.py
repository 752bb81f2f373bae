"""SQL tables of the documents feature (same metadata as tables.py)."""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401

from .tables import UTCDateTime, metadata  # noqa: F401
