"""SQL table of meeting recordings (ghi hình), same metadata as tables.py.

A row is written ``recording`` when the recorder starts and changed once, when it ends:
``completed`` (file finalised, size and duration known), ``failed`` (the recorder died) or
``interrupted`` (the server stopped without finalising it: found at the next start). A row
never claims a file that was not finalised.
"""

from __future__ import annotations

import sqlalchemy as sa

from .tables import UTCDateTime, metadata

recordings = sa.Table(
    "recordings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("status", sa.String(16), nullable=False, index=True),  # recording|completed|failed|interrupted
    sa.Column("file_name", sa.String(255), nullable=False),  # relative to the recordings dir
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("stopped_at", UTCDateTime(), nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("size_bytes", sa.BigInteger, nullable=True),
    sa.Column("started_by", sa.String(255), nullable=False),
    sa.Column("stop_reason", sa.String(32), nullable=False, default=""),
    sa.Column("width", sa.Integer, nullable=False),
    sa.Column("height", sa.Integer, nullable=False),
    sa.Column("fps", sa.Integer, nullable=False),
    # which server wrote it (host and recordings dir): only that node may mark it interrupted
    sa.Column("node", sa.String(255), nullable=False, default=""),
)
