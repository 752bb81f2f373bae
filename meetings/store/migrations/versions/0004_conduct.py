"""meeting conduct: floor, attendance, votes, minutes

Revision ID: 0004
Revises: 0003

Written from ``meetings/store/tables_conduct.py`` (a test compares the migrated schema with it).
``votes.agenda_item_id`` refers to the documents feature's ``agenda_items`` (revision 0003).
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('attendance',
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('point_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('headcount', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_attendance_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['point_id'], ['bridge_points.id'], name=op.f('fk_attendance_point_id_bridge_points')),
    sa.PrimaryKeyConstraint('meeting_id', 'point_id', name=op.f('pk_attendance'))
    )
    op.create_table('floor_requests',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('point_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=255), nullable=False),
    sa.Column('topic', sa.String(length=500), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('granted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_floor_requests_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['point_id'], ['bridge_points.id'], name=op.f('fk_floor_requests_point_id_bridge_points')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_floor_requests_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_floor_requests'))
    )
    op.create_index(op.f('ix_floor_requests_meeting_id'), 'floor_requests', ['meeting_id'], unique=False)
    op.create_index(op.f('ix_floor_requests_state'), 'floor_requests', ['state'], unique=False)
    op.create_table('floor_state',
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('locked', sa.Boolean(), nullable=False),
    sa.Column('main_point_id', sa.Integer(), nullable=True),
    sa.Column('main_reason', sa.String(length=16), nullable=False),
    sa.ForeignKeyConstraint(['main_point_id'], ['bridge_points.id'], name=op.f('fk_floor_state_main_point_id_bridge_points')),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_floor_state_meeting_id_meetings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('meeting_id', name=op.f('pk_floor_state'))
    )
    op.create_table('minutes_drafts',
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('conclusions', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_minutes_drafts_meeting_id_meetings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('meeting_id', name=op.f('pk_minutes_drafts'))
    )
    op.create_table('minutes_versions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('generated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('generated_by', sa.String(length=255), nullable=False),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_minutes_versions_meeting_id_meetings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_minutes_versions')),
    sa.UniqueConstraint('meeting_id', 'version', name='uq_minutes_versions_meeting_version')
    )
    op.create_table('point_controls',
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('point_id', sa.Integer(), nullable=False),
    sa.Column('muted', sa.Boolean(), nullable=False),
    sa.Column('removed', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_point_controls_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['point_id'], ['bridge_points.id'], name=op.f('fk_point_controls_point_id_bridge_points')),
    sa.PrimaryKeyConstraint('meeting_id', 'point_id', name=op.f('pk_point_controls'))
    )
    op.create_table('roll_calls',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_roll_calls_meeting_id_meetings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_roll_calls'))
    )
    op.create_index(op.f('ix_roll_calls_meeting_id'), 'roll_calls', ['meeting_id'], unique=False)
    op.create_table('votes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('agenda_item_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('secret', sa.Boolean(), nullable=False),
    sa.Column('electorate', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('eligible', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['agenda_item_id'], ['agenda_items.id'], name=op.f('fk_votes_agenda_item_id_agenda_items'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_votes_meeting_id_meetings'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_votes'))
    )
    op.create_index(op.f('ix_votes_meeting_id'), 'votes', ['meeting_id'], unique=False)
    op.create_table('roll_call_confirmations',
    sa.Column('roll_call_id', sa.Integer(), nullable=False),
    sa.Column('point_id', sa.Integer(), nullable=False),
    sa.Column('headcount', sa.Integer(), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['point_id'], ['bridge_points.id'], name=op.f('fk_roll_call_confirmations_point_id_bridge_points')),
    sa.ForeignKeyConstraint(['roll_call_id'], ['roll_calls.id'], name=op.f('fk_roll_call_confirmations_roll_call_id_roll_calls'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('roll_call_id', 'point_id', name=op.f('pk_roll_call_confirmations'))
    )
    op.create_table('vote_tallies',
    sa.Column('vote_id', sa.Integer(), nullable=False),
    sa.Column('choice', sa.String(length=32), nullable=False),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['vote_id'], ['votes.id'], name=op.f('fk_vote_tallies_vote_id_votes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('vote_id', 'choice', name=op.f('pk_vote_tallies'))
    )
    op.create_table('vote_voters',
    sa.Column('vote_id', sa.Integer(), nullable=False),
    sa.Column('voter_key', sa.String(length=32), nullable=False),
    sa.Column('voter_label', sa.String(length=255), nullable=False),
    sa.Column('receipt', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['vote_id'], ['votes.id'], name=op.f('fk_vote_voters_vote_id_votes'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('vote_id', 'voter_key', name=op.f('pk_vote_voters'))
    )
    op.create_table('vote_named_choices',
    sa.Column('vote_id', sa.Integer(), nullable=False),
    sa.Column('voter_key', sa.String(length=32), nullable=False),
    sa.Column('choice', sa.String(length=32), nullable=False),
    sa.Column('cast_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['vote_id', 'voter_key'], ['vote_voters.vote_id', 'vote_voters.voter_key'], name='fk_vote_named_choices_voter', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('vote_id', 'voter_key', name=op.f('pk_vote_named_choices'))
    )


def downgrade() -> None:
    op.drop_table('vote_named_choices')
    op.drop_table('vote_voters')
    op.drop_table('vote_tallies')
    op.drop_table('roll_call_confirmations')
    op.drop_index(op.f('ix_votes_meeting_id'), table_name='votes')
    op.drop_table('votes')
    op.drop_index(op.f('ix_roll_calls_meeting_id'), table_name='roll_calls')
    op.drop_table('roll_calls')
    op.drop_table('point_controls')
    op.drop_table('minutes_versions')
    op.drop_table('minutes_drafts')
    op.drop_table('floor_state')
    op.drop_index(op.f('ix_floor_requests_state'), table_name='floor_requests')
    op.drop_index(op.f('ix_floor_requests_meeting_id'), table_name='floor_requests')
    op.drop_table('floor_requests')
    op.drop_table('attendance')
