"""initial schema: accounts, bridge points, meetings, presence, chat

Revision ID: 0001
Revises: 
Create Date: 2026-11-21 08:37:21.675760
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('bridge_points',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=255), nullable=False),
    sa.Column('name_folded', sa.String(length=255), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['parent_id'], ['bridge_points.id'], name=op.f('fk_bridge_points_parent_id_bridge_points')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bridge_points')),
    sa.UniqueConstraint('code', name=op.f('uq_bridge_points_code'))
    )
    with op.batch_alter_table('bridge_points', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bridge_points_name_folded'), ['name_folded'], unique=False)
        batch_op.create_index(batch_op.f('ix_bridge_points_parent_id'), ['parent_id'], unique=False)

    op.create_table('point_tokens',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('point_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['point_id'], ['bridge_points.id'], name=op.f('fk_point_tokens_point_id_bridge_points'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_point_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_point_tokens_token_hash'))
    )
    with op.batch_alter_table('point_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_point_tokens_point_id'), ['point_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('point_id', sa.Integer(), nullable=True),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['point_id'], ['bridge_points.id'], name=op.f('fk_users_point_id_bridge_points')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    op.create_table('meetings',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('title_folded', sa.String(length=500), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('host_point_id', sa.Integer(), nullable=True),
    sa.Column('chair_id', sa.Integer(), nullable=True),
    sa.Column('secretary_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['chair_id'], ['users.id'], name=op.f('fk_meetings_chair_id_users')),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_meetings_created_by_users')),
    sa.ForeignKeyConstraint(['host_point_id'], ['bridge_points.id'], name=op.f('fk_meetings_host_point_id_bridge_points')),
    sa.ForeignKeyConstraint(['secretary_id'], ['users.id'], name=op.f('fk_meetings_secretary_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_meetings'))
    )
    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meetings_starts_at'), ['starts_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_meetings_state'), ['state'], unique=False)

    op.create_table('sessions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('client', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_sessions_token_hash'))
    )
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sessions_user_id'), ['user_id'], unique=False)

    op.create_table('chat_messages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('point_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('sender', sa.String(length=255), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_chat_messages_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['point_id'], ['bridge_points.id'], name=op.f('fk_chat_messages_point_id_bridge_points')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_chat_messages_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_messages'))
    )
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_chat_messages_meeting_id'), ['meeting_id'], unique=False)

    op.create_table('invitations',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('point_id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_invitations_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['point_id'], ['bridge_points.id'], name=op.f('fk_invitations_point_id_bridge_points')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invitations')),
    sa.UniqueConstraint('meeting_id', 'point_id', name='uq_invitations_meeting_point'),
    sa.UniqueConstraint('token_hash', name=op.f('uq_invitations_token_hash'))
    )
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_invitations_point_id'), ['point_id'], unique=False)

    op.create_table('presence_log',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('meeting_id', sa.Integer(), nullable=False),
    sa.Column('session_key', sa.String(length=64), nullable=False),
    sa.Column('point_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('label', sa.String(length=255), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['meeting_id'], ['meetings.id'], name=op.f('fk_presence_log_meeting_id_meetings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['point_id'], ['bridge_points.id'], name=op.f('fk_presence_log_point_id_bridge_points')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_presence_log_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_presence_log'))
    )
    with op.batch_alter_table('presence_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_presence_log_meeting_id'), ['meeting_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_presence_log_session_key'), ['session_key'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('presence_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_presence_log_session_key'))
        batch_op.drop_index(batch_op.f('ix_presence_log_meeting_id'))

    op.drop_table('presence_log')
    with op.batch_alter_table('invitations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invitations_point_id'))

    op.drop_table('invitations')
    with op.batch_alter_table('chat_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_chat_messages_meeting_id'))

    op.drop_table('chat_messages')
    with op.batch_alter_table('sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sessions_user_id'))

    op.drop_table('sessions')
    with op.batch_alter_table('meetings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meetings_state'))
        batch_op.drop_index(batch_op.f('ix_meetings_starts_at'))

    op.drop_table('meetings')
    op.drop_table('users')
    with op.batch_alter_table('point_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_point_tokens_point_id'))

    op.drop_table('point_tokens')
    with op.batch_alter_table('bridge_points', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_bridge_points_parent_id'))
        batch_op.drop_index(batch_op.f('ix_bridge_points_name_folded'))

    op.drop_table('bridge_points')
    
