"""JSON schemas shared by the OpenAPI document (components/schemas)."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def array_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": ref(name)}


DATETIME = {"type": "string", "format": "date-time"}
NULLABLE_DATETIME = {"type": "string", "format": "date-time", "nullable": True}
ROLE = {"type": "string", "enum": ["admin", "chair", "secretary", "delegate", "observer"]}
LEVEL = {"type": "string", "enum": ["province", "district", "commune"]}

SCHEMAS: dict[str, Any] = {
    "User": {
        "type": "object",
        "required": ["id", "username", "display_name", "role"],
        "properties": {
            "id": {"type": "integer"},
            "username": {"type": "string"},
            "display_name": {"type": "string"},
            "role": ROLE,
            "point_code": {"type": "string", "nullable": True},
            "disabled": {"type": "boolean"},
            "created_at": DATETIME,
        },
    },
    "LoginRequest": {
        "type": "object",
        "required": ["username", "password"],
        "properties": {"username": {"type": "string", "maxLength": 64}, "password": {"type": "string", "maxLength": 1024}},
    },
    "LoginResponse": {
        "type": "object",
        "required": ["token", "expires_at", "user"],
        "properties": {
            "token": {"type": "string", "description": "Bearer token (dcs_…); shown once."},
            "expires_at": DATETIME,
            "csrf_token": {"type": "string", "description": "For cookie-authenticated writes (X-CSRF-Token)."},
            "user": ref("User"),
        },
    },
}
