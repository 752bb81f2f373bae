"""The SQL schema (SQLAlchemy Core). Migrations in ``migrations/versions`` must match it
(a test compares a migrated database with this metadata)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = sa.MetaData(naming_convention=NAMING)


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Stores UTC; always gives back timezone-aware datetimes (SQLite keeps none)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)


def _created() -> sa.Column[datetime]:
    return sa.Column("created_at", UTCDateTime(), nullable=False)


bridge_points = sa.Table(
    "bridge_points",
    metadata,
    _id(),
    sa.Column("code", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("name_folded", sa.String(255), nullable=False, index=True),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("parent_id", sa.Integer, sa.ForeignKey("bridge_points.id"), nullable=True, index=True),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    _created(),
)

users = sa.Table(
    "users",
    metadata,
    _id(),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("point_id", sa.Integer, sa.ForeignKey("bridge_points.id"), nullable=True),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    _created(),
)

sessions = sa.Table(
    "sessions",
    metadata,
    _id(),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True),
    _created(),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("client", sa.String(255), nullable=False, default=""),
)

point_tokens = sa.Table(
    "point_tokens",
    metadata,
    _id(),
    sa.Column("point_id", sa.Integer, sa.ForeignKey("bridge_points.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("label", sa.String(255), nullable=False, default=""),
    _created(),
    sa.Column("revoked_at", UTCDateTime(), nullable=True),
    sa.Column("last_used_at", UTCDateTime(), nullable=True),
)

meetings = sa.Table(
    "meetings",
    metadata,
    _id(),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("title_folded", sa.String(500), nullable=False),
    sa.Column("description", sa.Text, nullable=False, default=""),
    sa.Column("starts_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("ends_at", UTCDateTime(), nullable=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("host_point_id", sa.Integer, sa.ForeignKey("bridge_points.id"), nullable=True),
    sa.Column("chair_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("secretary_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("created_by", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    _created(),
    sa.Column("opened_at", UTCDateTime(), nullable=True),
    sa.Column("closed_at", UTCDateTime(), nullable=True),
)

invitations = sa.Table(
    "invitations",
    metadata,
    _id(),
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False),
    sa.Column("point_id", sa.Integer, sa.ForeignKey("bridge_points.id"), nullable=False, index=True),
    sa.Column("token_hash", sa.String(64), nullable=True, unique=True),
    _created(),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("meeting_id", "point_id", name="uq_invitations_meeting_point"),
)

presence_log = sa.Table(
    "presence_log",
    metadata,
    _id(),
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("session_key", sa.String(64), nullable=False, index=True),
    sa.Column("point_id", sa.Integer, sa.ForeignKey("bridge_points.id"), nullable=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("label", sa.String(255), nullable=False),
    sa.Column("joined_at", UTCDateTime(), nullable=False),
    sa.Column("left_at", UTCDateTime(), nullable=True),
)

chat_messages = sa.Table(
    "chat_messages",
    metadata,
    _id(),
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("point_id", sa.Integer, sa.ForeignKey("bridge_points.id"), nullable=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("sender", sa.String(255), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    _created(),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    _id(),
    sa.Column("at", UTCDateTime(), nullable=False, index=True),
    sa.Column("actor_kind", sa.String(16), nullable=False),  # user | point | system
    sa.Column("actor_user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("actor_point_id", sa.Integer, sa.ForeignKey("bridge_points.id"), nullable=True),
    sa.Column("actor_label", sa.String(255), nullable=False),
    sa.Column("action", sa.String(64), nullable=False, index=True),
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="SET NULL"), nullable=True, index=True),
    sa.Column("target", sa.String(255), nullable=False, default=""),
    sa.Column("details", sa.JSON, nullable=False, default=dict),
)

# Feature tables live in their own modules on the same metadata (one module per concept);
# importing them here keeps ``metadata`` complete for migrations and the schema test.
from . import tables_conduct as _conduct  # noqa: F401
from . import tables_documents as _documents  # noqa: F401
from . import tables_recordings as _recordings  # noqa: F401
