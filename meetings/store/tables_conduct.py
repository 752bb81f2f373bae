"""SQL tables of the conduct feature (same metadata as tables.py): floor, attendance, votes,
minutes.

Secret ballots: a secret vote's choices are only ever stored as aggregate counters
(``vote_tallies``), updated in the same transaction that records *that* someone voted
(``vote_voters``). No row links a voter to a choice, and no per-ballot row exists whose
timestamp or insertion order could betray one. Named votes add ``vote_named_choices``.
"""

from __future__ import annotations

import sqlalchemy as sa

from .tables import UTCDateTime, metadata

# -- floor (đăng ký phát biểu) ---------------------------------------------------------------

floor_requests = sa.Table(
    "floor_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("point_id", sa.Integer, sa.ForeignKey("bridge_points.id"), nullable=False),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=True),
    sa.Column("label", sa.String(255), nullable=False),
    sa.Column("topic", sa.String(500), nullable=False),
    # queued → speaking → done; queued → withdrawn; chair-picked turns start at speaking
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("requested_at", UTCDateTime(), nullable=False),
    sa.Column("granted_at", UTCDateTime(), nullable=True),
    sa.Column("ended_at", UTCDateTime(), nullable=True),
)

floor_state = sa.Table(
    "floor_state",
    metadata,
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("locked", sa.Boolean, nullable=False, default=False),
    sa.Column("main_point_id", sa.Integer, sa.ForeignKey("bridge_points.id"), nullable=True),
    sa.Column("main_reason", sa.String(16), nullable=False, default="host"),
)

point_controls = sa.Table(
    "point_controls",
    metadata,
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("point_id", sa.Integer, sa.ForeignKey("bridge_points.id"), primary_key=True),
    sa.Column("muted", sa.Boolean, nullable=False, default=False),
    sa.Column("removed", sa.Boolean, nullable=False, default=False),
)

# -- attendance (điểm danh) ------------------------------------------------------------------

attendance = sa.Table(
    "attendance",
    metadata,
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("point_id", sa.Integer, sa.ForeignKey("bridge_points.id"), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),  # online | in_hall | absent
    sa.Column("headcount", sa.Integer, nullable=True),
    sa.Column("reason", sa.String(500), nullable=False, default=""),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("updated_by", sa.String(255), nullable=False, default=""),
)

roll_calls = sa.Table(
    "roll_calls",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("closed_at", UTCDateTime(), nullable=True),
)

roll_call_confirmations = sa.Table(
    "roll_call_confirmations",
    metadata,
    sa.Column("roll_call_id", sa.Integer, sa.ForeignKey("roll_calls.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("point_id", sa.Integer, sa.ForeignKey("bridge_points.id"), primary_key=True),
    sa.Column("headcount", sa.Integer, nullable=True),
    sa.Column("confirmed_at", UTCDateTime(), nullable=False),
)

# -- votes (biểu quyết) ----------------------------------------------------------------------

votes = sa.Table(
    "votes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False, index=True),
    # the agenda item voted on (agenda_items belongs to the documents feature)
    sa.Column("agenda_item_id", sa.Integer, sa.ForeignKey("agenda_items.id", ondelete="SET NULL"), nullable=True),
    sa.Column("title", sa.String(500), nullable=False),
    sa.Column("choices", sa.JSON, nullable=False),  # [{"key", "label"}]
    sa.Column("secret", sa.Boolean, nullable=False),
    sa.Column("electorate", sa.String(16), nullable=False),  # points | delegates
    sa.Column("state", sa.String(16), nullable=False),  # open | closed | published
    sa.Column("opened_at", UTCDateTime(), nullable=False),
    sa.Column("closed_at", UTCDateTime(), nullable=True),
    sa.Column("published_at", UTCDateTime(), nullable=True),
    sa.Column("eligible", sa.Integer, nullable=True),  # frozen at close
)

vote_voters = sa.Table(
    "vote_voters",
    metadata,
    sa.Column("vote_id", sa.Integer, sa.ForeignKey("votes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("voter_key", sa.String(32), primary_key=True),  # p:<point id> | u:<user id>
    sa.Column("voter_label", sa.String(255), nullable=False),
    # sha256(vote_id, voter_key, client_ballot_id): recognises a resubmission, says nothing
    # about the choice
    sa.Column("receipt", sa.String(64), nullable=False),
)

vote_tallies = sa.Table(
    "vote_tallies",
    metadata,
    sa.Column("vote_id", sa.Integer, sa.ForeignKey("votes.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("choice", sa.String(32), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False, default=0),
)

vote_named_choices = sa.Table(
    "vote_named_choices",
    metadata,
    sa.Column("vote_id", sa.Integer, primary_key=True),
    sa.Column("voter_key", sa.String(32), primary_key=True),
    sa.Column("choice", sa.String(32), nullable=False),
    sa.Column("cast_at", UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(["vote_id", "voter_key"], ["vote_voters.vote_id", "vote_voters.voter_key"],
                            ondelete="CASCADE", name="fk_vote_named_choices_voter"),
)

# -- minutes (biên bản) ----------------------------------------------------------------------

minutes_drafts = sa.Table(
    "minutes_drafts",
    metadata,
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("conclusions", sa.Text, nullable=False, default=""),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

minutes_versions = sa.Table(
    "minutes_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("meeting_id", sa.Integer, sa.ForeignKey("meetings.id", ondelete="CASCADE"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("generated_at", UTCDateTime(), nullable=False),
    sa.Column("generated_by", sa.String(255), nullable=False),
    sa.Column("pages", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.UniqueConstraint("meeting_id", "version", name="uq_minutes_versions_meeting_version"),
)
