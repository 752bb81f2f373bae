"""SQL tables of the paperless-documents feature (same metadata as tables.py): the agenda,
documents and their versions, page text for search, annotations and the presenter's view."""

import sqlalchemy as sa

from .tables import UTCDateTime, metadata

agenda_items = sa.Table(
    "agenda_items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("agenda_items.id", ondelete="CASCADE"), nullable=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("presenter", sa.String(255), nullable=False, default=""),
    sa.Column("duration_min", sa.Integer, nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

agenda_states = sa.Table(
    "agenda_states",
    metadata,
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("published", sa.Boolean, nullable=False, default=False),
    sa.Column("published_at", UTCDateTime(), nullable=True),
    sa.Column("current_item_id", sa.Integer, sa.ForeignKey("agenda_items.id", ondelete="SET NULL"), nullable=True),
)

documents = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("agenda_item_id", sa.Integer, sa.ForeignKey("agenda_items.id", ondelete="SET NULL"), nullable=True),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("visibility", sa.String(16), nullable=False),  # all | restricted
    sa.Column("allowed_roles", sa.JSON, nullable=False),
    sa.Column("allowed_points", sa.JSON, nullable=False),  # bridge-point codes
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("created_at", UTCDateTime(), nullable=False),
)

document_versions = sa.Table(
    "document_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("page_count", sa.Integer, nullable=False),
    sa.Column("pages", sa.JSON, nullable=False),  # [[width_pt, height_pt], ...]
    sa.Column("warnings", sa.JSON, nullable=False),
    sa.Column("uploaded_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("uploaded_by_label", sa.String(255), nullable=False),
    sa.Column("uploaded_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("document_id", "version", name="uq_document_versions_document_version"),
)

# Page text is content-addressed like the files: a file uploaded twice is read once.
document_pages = sa.Table(
    "document_pages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("page", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("folded", sa.Text, nullable=False),
    sa.UniqueConstraint("sha256", "page", name="uq_document_pages_sha256_page"),
)

annotations = sa.Table(
    "annotations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("page", sa.Integer, nullable=False),
    sa.Column("layer", sa.String(16), nullable=False),  # private | shared
    sa.Column("kind", sa.String(16), nullable=False),  # ink | highlight | note | arrow
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("author_key", sa.String(64), nullable=False),  # "user:<id>" | "point:<id>"
    sa.Column("author_label", sa.String(255), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=True),
    sa.Index("ix_annotations_document_version", "document_id", "version"),
)

presenter_views = sa.Table(
    "presenter_views",
    metadata,
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("page", sa.Integer, nullable=False),
    sa.Column("rect", sa.JSON, nullable=True),
    sa.Column("presenter_label", sa.String(255), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)
