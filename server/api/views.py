"""Domain objects as JSON (the API's response shapes)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from meetings.clock import isoformat, utcnow
from meetings.models import BridgePoint, Invitation, Meeting, PointLevel, PointNode, User
from meetings.registry import DeviceToken


def user_json(user: User, *, point_code: str | None = None) -> dict[str, Any]:
    return {
        "id": user.id, "username": user.username, "display_name": user.display_name,
        "role": user.role.value, "point_code": point_code, "disabled": user.disabled,
        "created_at": isoformat(user.created_at),
    }


def point_json(point: BridgePoint) -> dict[str, Any]:
    return {
        "id": point.id, "code": point.code, "name": point.name, "level": point.level.value,
        "parent_code": point.parent_code, "enabled": point.enabled,
    }


def node_json(node: PointNode) -> dict[str, Any]:
    return {**point_json(node.point), "children": [node_json(c) for c in node.children]}


def meeting_json(meeting: Meeting) -> dict[str, Any]:
    return {
        "id": meeting.id, "title": meeting.title, "description": meeting.description,
        "starts_at": isoformat(meeting.starts_at), "ends_at": isoformat(meeting.ends_at),
        "state": meeting.state.value, "host_point_id": meeting.host_point_id,
        "chair_id": meeting.chair_id, "secretary_id": meeting.secretary_id,
        "created_at": isoformat(meeting.created_at), "opened_at": isoformat(meeting.opened_at),
        "closed_at": isoformat(meeting.closed_at),
    }


def person_json(user: User | None) -> dict[str, Any] | None:
    """A user as others see them in a meeting (no role, no account details)."""
    if user is None:
        return None
    return {"id": user.id, "username": user.username, "display_name": user.display_name}


def invitation_json(invitation: Invitation, *, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    return {
        "point": point_json(invitation.point),
        "invited_at": isoformat(invitation.created_at),
        "expires_at": isoformat(invitation.expires_at),
        "link_expired": invitation.expires_at <= now,
    }


def meeting_detail_json(meeting: Meeting, invited: list[Invitation], *, host: BridgePoint | None,
                        chair: User | None, secretary: User | None) -> dict[str, Any]:
    """A meeting with its people, its invited points and their counts per level."""
    points = [i.point for i in invited]
    counts = {level.value: sum(1 for p in points if p.level is level) for level in PointLevel}
    return {
        **meeting_json(meeting),
        "host_point": point_json(host) if host else None,
        "chair": person_json(chair),
        "secretary": person_json(secretary),
        "invited_points": [point_json(p) for p in points],
        "counts": {"invited": len(points), **counts},
    }


def device_token_json(token: DeviceToken) -> dict[str, Any]:
    return {
        "id": token.id, "label": token.label, "created_at": isoformat(token.created_at),
        "revoked_at": isoformat(token.revoked_at), "last_used_at": isoformat(token.last_used_at),
    }
