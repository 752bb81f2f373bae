"""Domain objects as JSON (the API's response shapes)."""

from __future__ import annotations

from typing import Any

from meetings.clock import isoformat
from meetings.models import BridgePoint, Meeting, PointNode, User


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
