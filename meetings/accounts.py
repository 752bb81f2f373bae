"""User accounts and login sessions (tài khoản, phiên đăng nhập)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .clock import utcnow
from .credentials import DUMMY_HASH, hash_password, hash_token, new_token, verify_password
from .errors import Conflict, Invalid, NotFound, Unauthenticated
from .models import IssuedToken, Role, User
from .store.db import Database
from .store.tables import (
    UTCDateTime,
    bridge_points,
    invitations,
    meetings,
    point_tokens,
    sessions,
    users,
)
from .text import clean_line

MAX_PASSWORD = 1024
CREDENTIAL_KINDS = ("dcs", "dcp", "dci")
"""Token kinds :func:`credential_status` checks: login sessions, device tokens, invitation links."""
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def new_id(result: Any) -> int:
    """The primary key an INSERT created."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def _user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=Role(row.role),
        disabled=row.disabled,
        created_at=row.created_at,
        point_id=row.point_id,
    )


class Accounts:
    def __init__(self, db: Database, *, password_min_length: int = 10, session_ttl: timedelta = timedelta(hours=12)):
        self.db = db
        self.password_min_length = password_min_length
        self.session_ttl = session_ttl

    def _check_password(self, password: str) -> None:
        if len(password) < self.password_min_length:
            raise Invalid(
                f"password must have at least {self.password_min_length} characters",
                code="weak_password",
                details={"min_length": self.password_min_length},
            )
        if len(password) > MAX_PASSWORD:
            raise Invalid(f"password is longer than {MAX_PASSWORD} characters", code="weak_password")

    async def create_user(
        self,
        username: str,
        password: str,
        role: Role | str,
        *,
        display_name: str = "",
        point_code: str | None = None,
    ) -> User:
        username = username.strip().lower()
        if not USERNAME.match(username):
            raise Invalid("username: 2-64 characters a-z 0-9 . _ -, starting with a letter or digit",
                          code="invalid_username")
        try:
            role = Role(role)
        except ValueError:
            raise Invalid(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}",
                          code="invalid_role") from None
        if len(clean_line(display_name)) > 255:
            raise Invalid("display_name: at most 255 characters", code="invalid_field",
                          details={"field": "display_name"})
        self._check_password(password)
        # scrypt takes ~50 ms of CPU: keep it off the event loop.
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self.db.transaction() as conn:
            point_id = None
            if point_code:
                point_id = await conn.scalar(sa.select(bridge_points.c.id).where(bridge_points.c.code == point_code))
                if point_id is None:
                    raise Invalid(f"no bridge point with code {point_code!r}", code="point_not_found",
                                  details={"field": "point_code"})
            try:
                result = await conn.execute(
                    users.insert().values(
                        username=username,
                        display_name=clean_line(display_name) or username,
                        role=role.value,
                        password_hash=password_hash,
                        point_id=point_id,
                        disabled=False,
                        created_at=utcnow(),
                    )
                )
            except IntegrityError:
                raise Conflict(f"username {username!r} is taken", code="username_taken") from None
            user_id = new_id(result)
        return await self.get(user_id)

    async def get(self, user_id: int) -> User:
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).first()
        if row is None:
            raise NotFound(f"no user {user_id}", code="user_not_found")
        return _user(row)

    async def by_username(self, username: str) -> User | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.username == username.strip().lower()))).first()
        return None if row is None else _user(row)

    async def list_users(self, *, role: Role | None = None, query: str | None = None) -> list[User]:
        """Accounts by username; ``query`` matches a part of the username or display name."""
        stmt = sa.select(users).order_by(users.c.username)
        if role is not None:
            stmt = stmt.where(users.c.role == role.value)
        if query and query.strip():
            q = query.strip()
            stmt = stmt.where(users.c.username.contains(q.lower(), autoescape=True)
                              | users.c.display_name.contains(q, autoescape=True))
        async with self.db.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [_user(r) for r in rows]

    async def point_codes(self) -> dict[int, str]:
        """Bridge-point codes by id (to show each account's point)."""
        async with self.db.connect() as conn:
            rows = (await conn.execute(sa.select(bridge_points.c.id, bridge_points.c.code))).all()
        return {r.id: r.code for r in rows}

    async def update_user(self, user_id: int, *, display_name: str | None = None, role: Role | str | None = None,
                          point_code: str | None = None, clear_point: bool = False) -> User:
        """Change the name, role or bridge point of an account (only what is given). A change
        of role or bridge point ends the account's login sessions: what an open session (a
        WebSocket in a meeting, a bearer token) may do was decided with the old ones, so the
        user logs in again and gets the new rights everywhere at once."""
        values: dict[str, Any] = {}
        if display_name is not None:
            name = clean_line(display_name)
            if not name or len(name) > 255:
                raise Invalid("display_name: 1-255 characters", code="invalid_field", details={"field": "display_name"})
            values["display_name"] = name
        if role is not None:
            try:
                values["role"] = Role(role).value
            except ValueError:
                raise Invalid(f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}",
                              code="invalid_role") from None
        async with self.db.transaction() as conn:
            if clear_point:
                values["point_id"] = None
            elif point_code:
                point_id = await conn.scalar(sa.select(bridge_points.c.id).where(bridge_points.c.code == point_code))
                if point_id is None:
                    raise Invalid(f"no bridge point with code {point_code!r}", code="point_not_found",
                                  details={"field": "point_code"})
                values["point_id"] = point_id
            before = (await conn.execute(sa.select(users.c.role, users.c.point_id)
                                         .where(users.c.id == user_id))).first()
            if before is None:
                raise NotFound(f"no user {user_id}", code="user_not_found")
            if values:
                await conn.execute(users.update().where(users.c.id == user_id).values(**values))
            if values.get("role", before.role) != before.role \
                    or values.get("point_id", before.point_id) != before.point_id:
                await conn.execute(sessions.update()
                                   .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                                   .values(revoked_at=utcnow()))
        return await self.get(user_id)

    async def set_password(self, user_id: int, password: str, *, keep_session_id: int | None = None) -> None:
        """Set a new password and end the user's sessions (except ``keep_session_id``)."""
        self._check_password(password)
        password_hash = await asyncio.to_thread(hash_password, password)
        async with self.db.transaction() as conn:
            result = await conn.execute(users.update().where(users.c.id == user_id).values(password_hash=password_hash))
            if result.rowcount == 0:
                raise NotFound(f"no user {user_id}", code="user_not_found")
            revoke = sessions.update().where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
            if keep_session_id is not None:
                revoke = revoke.where(sessions.c.id != keep_session_id)
            await conn.execute(revoke.values(revoked_at=utcnow()))

    async def change_password(self, user_id: int, current: str, new: str, *, keep_session_id: int | None = None) -> None:
        """A user changing their own password: the current one must be right."""
        async with self.db.connect() as conn:
            stored = await conn.scalar(sa.select(users.c.password_hash).where(users.c.id == user_id))
        if stored is None:
            raise NotFound(f"no user {user_id}", code="user_not_found")
        if not await asyncio.to_thread(verify_password, current, stored):
            raise Invalid("the current password is wrong", code="wrong_password",
                          details={"field": "current_password"})
        if new == current:
            raise Invalid("the new password is the same as the current one", code="weak_password",
                          details={"field": "new_password"})
        await self.set_password(user_id, new, keep_session_id=keep_session_id)

    async def set_disabled(self, user_id: int, disabled: bool) -> User:
        async with self.db.transaction() as conn:
            result = await conn.execute(users.update().where(users.c.id == user_id).values(disabled=disabled))
            if result.rowcount == 0:
                raise NotFound(f"no user {user_id}", code="user_not_found")
            if disabled:
                await conn.execute(
                    sessions.update()
                    .where(sessions.c.user_id == user_id, sessions.c.revoked_at.is_(None))
                    .values(revoked_at=utcnow())
                )
        return await self.get(user_id)

    async def authenticate(self, username: str, password: str) -> User:
        """The user whose password this is, or :class:`Unauthenticated` (same error and
        about the same time whether the username exists or not)."""
        async with self.db.connect() as conn:
            row = (await conn.execute(sa.select(users).where(users.c.username == username.strip().lower()))).first()
        stored = row.password_hash if row is not None else DUMMY_HASH
        ok = await asyncio.to_thread(verify_password, password, stored)
        if row is None or not ok or row.disabled:
            raise Unauthenticated("wrong username or password", code="bad_credentials")
        return _user(row)

    async def open_session(self, user: User, *, client: str = "") -> tuple[IssuedToken, int]:
        token = new_token("dcs")
        now = utcnow()
        expires = now + self.session_ttl
        async with self.db.transaction() as conn:
            result = await conn.execute(
                sessions.insert().values(
                    token_hash=hash_token(token), user_id=user.id, created_at=now,
                    expires_at=expires, client=clean_line(client)[:255],
                )
            )
        return IssuedToken(token, expires), new_id(result)

    async def resolve_session(self, token: str) -> tuple[User, int]:
        """The user and session id behind a session token, or :class:`Unauthenticated`."""
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(sessions.c.id.label("session_id"), sessions.c.expires_at,
                              sessions.c.revoked_at, users)
                    .join(users, users.c.id == sessions.c.user_id)
                    .where(sessions.c.token_hash == hash_token(token))
                )
            ).first()
        if row is None:
            raise Unauthenticated("unknown or forged token", code="invalid_token")
        if row.revoked_at is not None or row.expires_at <= utcnow():
            raise Unauthenticated("session expired; log in again", code="token_expired")
        if row.disabled:
            raise Unauthenticated("account disabled", code="account_disabled")
        return _user(row), row.session_id

    async def close_session(self, session_id: int) -> None:
        async with self.db.transaction() as conn:
            await conn.execute(
                sessions.update().where(sessions.c.id == session_id, sessions.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )

    async def purge_expired_sessions(self) -> int:
        async with self.db.transaction() as conn:
            result = await conn.execute(sessions.delete().where(sessions.c.expires_at < utcnow() - timedelta(days=7)))
        return result.rowcount or 0


CREDENTIAL_BATCH = 10_000
"""Hashes per statement of :func:`credential_status` (SQLite and asyncpg allow 32 766 bound
parameters): one statement up to this many sessions on a node, one more per batch beyond."""


async def credential_status(db: Database, hashes: dict[str, set[str]]) -> dict[str, str]:
    """Why each of these credentials no longer admits anyone, in one statement (per
    :data:`CREDENTIAL_BATCH` hashes).

    ``hashes`` maps a token kind (``dcs``, ``dcp``, ``dci``) to token hashes (SHA-256, as
    stored). The answer holds only the credentials that are no longer valid, each with its
    reason: ``disabled`` (the user account or the bridge point is disabled), ``revoked``
    (logged out, replaced, revoked or unknown) or ``expired`` (past its ``expires_at``, or the
    invitation's meeting is closed). Valid credentials are absent. The signalling hub asks
    this for all its sessions at once, every ``signalling.revalidate_s``.
    """
    flat = [(kind, h) for kind in CREDENTIAL_KINDS for h in sorted(set(hashes.get(kind, ())))]
    if not flat:
        return {}
    rows: list[Any] = []
    async with db.connect() as conn:
        for start in range(0, len(flat), CREDENTIAL_BATCH):
            batch: dict[str, list[str]] = {kind: [] for kind in CREDENTIAL_KINDS}
            for kind, token_hash in flat[start:start + CREDENTIAL_BATCH]:
                batch[kind].append(token_hash)
            rows.extend((await conn.execute(_credential_statement(batch))).all())
    now = utcnow()
    found: dict[str, str | None] = {}
    for row in rows:
        token_hash, revoked_at, expires_at, disabled, closed = tuple(row)
        if disabled:  # first: disabling an account also revokes its sessions
            found[token_hash] = "disabled"
        elif revoked_at is not None:
            found[token_hash] = "revoked"
        elif (expires_at is not None and expires_at <= now) or closed:
            found[token_hash] = "expired"
        else:
            found[token_hash] = None
    status: dict[str, str] = {}
    for _kind, token_hash in flat:
        reason = found.get(token_hash, "revoked")  # unknown: deleted or replaced
        if reason is not None:
            status[token_hash] = reason
    return status


def _credential_statement(wanted: dict[str, list[str]]) -> Any:
    """One SELECT (a UNION ALL over the kinds asked for) of ``token_hash, revoked_at,
    expires_at, disabled, closed`` for each known credential."""
    no_time = sa.cast(sa.null(), UTCDateTime())
    parts = []
    if wanted["dcs"]:
        parts.append(sa.select(
            sessions.c.token_hash.label("token_hash"), sessions.c.revoked_at.label("revoked_at"), sessions.c.expires_at.label("expires_at"),
            users.c.disabled.label("disabled"), sa.false().label("closed"),
        ).join(users, users.c.id == sessions.c.user_id)
         .where(sessions.c.token_hash.in_(wanted["dcs"])))
    if wanted["dcp"]:
        parts.append(sa.select(
            point_tokens.c.token_hash, point_tokens.c.revoked_at, no_time,
            sa.not_(bridge_points.c.enabled), sa.false(),
        ).join(bridge_points, bridge_points.c.id == point_tokens.c.point_id)
         .where(point_tokens.c.token_hash.in_(wanted["dcp"])))
    if wanted["dci"]:
        parts.append(sa.select(
            invitations.c.token_hash, no_time, invitations.c.expires_at,
            sa.not_(bridge_points.c.enabled), meetings.c.state == "closed",
        ).join(bridge_points, bridge_points.c.id == invitations.c.point_id)
         .join(meetings, meetings.c.id == invitations.c.meeting_id)
         .where(invitations.c.token_hash.in_(wanted["dci"])))
    return parts[0] if len(parts) == 1 else sa.union_all(*parts)
