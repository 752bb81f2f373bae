"""Typed value objects at the domain's boundaries."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class Role(str, enum.Enum):
    """Roles of user accounts (vai trò)."""

    ADMIN = "admin"  # quản trị: accounts, bridge-point registry
    CHAIR = "chair"  # chủ trì: hosts and runs meetings
    SECRETARY = "secretary"  # thư ký: agenda, documents, minutes
    DELEGATE = "delegate"  # đại biểu: attends, reads, speaks, votes
    OBSERVER = "observer"  # khách mời / quan sát: attends and reads only


class PointLevel(str, enum.Enum):
    """Administrative level of a bridge point (cấp)."""

    PROVINCE = "province"  # tỉnh
    DISTRICT = "district"  # huyện
    COMMUNE = "commune"  # xã

    @property
    def rank(self) -> int:
        return {"province": 0, "district": 1, "commune": 2}[self.value]


class MeetingState(str, enum.Enum):
    SCHEDULED = "scheduled"  # đã lên lịch
    OPEN = "open"  # đang họp
    CLOSED = "closed"  # đã kết thúc


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str
    role: Role
    disabled: bool
    created_at: datetime
    point_id: int | None = None  # the bridge point (hall) this user attends from, if any


@dataclass(frozen=True)
class BridgePoint:
    """A bridge point (điểm cầu): a hall with a screen, camera and microphones."""

    id: int
    code: str
    name: str
    level: PointLevel
    parent_id: int | None
    enabled: bool
    created_at: datetime
    parent_code: str | None = None


@dataclass(frozen=True)
class PointNode:
    """A bridge point with its children, for the registry tree."""

    point: BridgePoint
    children: list[PointNode] = field(default_factory=list)


@dataclass(frozen=True)
class Meeting:
    """An online meeting (hội nghị truyền hình trực tuyến)."""

    id: int
    title: str
    description: str
    starts_at: datetime
    ends_at: datetime | None
    state: MeetingState
    host_point_id: int | None
    chair_id: int | None
    secretary_id: int | None
    created_by: int | None
    created_at: datetime
    opened_at: datetime | None
    closed_at: datetime | None


@dataclass(frozen=True)
class Invitation:
    """A bridge point invited to a meeting, with its per-meeting join link."""

    meeting_id: int
    point: BridgePoint
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class IssuedToken:
    """A secret shown once to its owner; only its hash is stored."""

    token: str
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Principal:
    """Who is calling: a logged-in user, or a bridge-point device.

    A point authenticated by an invitation link is limited to ``meeting_id``.
    """

    kind: str  # "user" | "point"
    user: User | None = None
    point: BridgePoint | None = None
    meeting_id: int | None = None
    session_id: int | None = None

    @property
    def role(self) -> Role | None:
        return self.user.role if self.user else None

    @property
    def label(self) -> str:
        if self.user:
            return self.user.display_name or self.user.username
        if self.point:
            return self.point.name
        return "?"
