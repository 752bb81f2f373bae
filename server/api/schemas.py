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

CODE = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$",
        "description": "Bridge-point code (mã định danh)."}
USERNAME = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9._-]{1,63}$"}
PASSWORD = {"type": "string", "minLength": 1, "maxLength": 1024}
STATE = {"type": "string", "enum": ["scheduled", "open", "closed"]}
NULLABLE_INT = {"type": "integer", "nullable": True}
NULLABLE_STR = {"type": "string", "nullable": True}
PERSON = {
    "type": "object",
    "nullable": True,
    "required": ["id", "username", "display_name"],
    "properties": {"id": {"type": "integer"}, "username": {"type": "string"}, "display_name": {"type": "string"}},
}

SCHEMAS.update({
    # --- accounts --------------------------------------------------------------------------
    "UserCreate": {
        "type": "object",
        "required": ["username", "password", "role"],
        "properties": {
            "username": USERNAME,
            "password": {**PASSWORD, "description": "At least auth.password_min_length characters."},
            "role": ROLE,
            "display_name": {"type": "string", "maxLength": 255, "description": "Họ và tên."},
            "point_code": {**CODE, "nullable": True, "description": "The bridge point this user attends from."},
        },
    },
    "UserUpdate": {
        "type": "object",
        "description": "Only the fields given change; point_code null detaches the account from its point.",
        "properties": {
            "display_name": {"type": "string", "minLength": 1, "maxLength": 255},
            "role": ROLE,
            "point_code": {**CODE, "nullable": True},
        },
    },
    "PasswordReset": {
        "type": "object",
        "required": ["password"],
        "properties": {"password": PASSWORD},
    },
    "PasswordChange": {
        "type": "object",
        "required": ["current_password", "new_password"],
        "properties": {"current_password": PASSWORD, "new_password": PASSWORD},
    },
    # --- bridge points ---------------------------------------------------------------------
    "BridgePoint": {
        "type": "object",
        "required": ["id", "code", "name", "level", "parent_code", "enabled"],
        "properties": {
            "id": {"type": "integer"},
            "code": {"type": "string"},
            "name": {"type": "string"},
            "level": LEVEL,
            "parent_code": NULLABLE_STR,
            "enabled": {"type": "boolean"},
        },
    },
    "PointNode": {
        "allOf": [
            ref("BridgePoint"),
            {"type": "object", "required": ["children"],
             "properties": {"children": {"type": "array", "items": {"$ref": "#/components/schemas/PointNode"}}}},
        ],
    },
    "PointCreate": {
        "type": "object",
        "required": ["code", "name", "level"],
        "properties": {
            "code": CODE,
            "name": {"type": "string", "minLength": 1, "maxLength": 255},
            "level": LEVEL,
            "parent_code": {**CODE, "nullable": True, "description": "Required for districts and communes."},
        },
    },
    "PointImport": {
        "type": "object",
        "required": ["file"],
        "properties": {
            "file": {"type": "string", "format": "binary",
                     "description": "CSV (code,name,level,parent; ',' ';' or tab; UTF-8, BOM allowed) "
                                    "or YAML (a list of points with nested children)."},
            "update": {"type": "string", "enum": ["true", "false"],
                       "description": "Update names, levels and parents of codes already registered."},
        },
    },
    "ImportResult": {
        "type": "object",
        "required": ["created", "updated"],
        "properties": {"created": {"type": "integer"}, "updated": {"type": "integer"}},
    },
    "ImportRejected": {
        "type": "object",
        "description": "The error body of a rejected import (code import_rejected): nothing was imported.",
        "required": ["error"],
        "properties": {"error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string", "enum": ["import_rejected"]},
                "message": {"type": "string"},
                "details": {"type": "object", "required": ["errors"], "properties": {"errors": {
                    "type": "array",
                    "items": {"type": "object", "required": ["row", "message"], "properties": {
                        "row": {"type": "integer", "description": "CSV line number (header = 1) or YAML line."},
                        "message": {"type": "string"}}},
                }}},
            },
        }},
    },
    "DeviceToken": {
        "type": "object",
        "required": ["id", "label", "created_at", "revoked_at", "last_used_at"],
        "properties": {
            "id": {"type": "integer"},
            "label": {"type": "string"},
            "created_at": DATETIME,
            "revoked_at": NULLABLE_DATETIME,
            "last_used_at": NULLABLE_DATETIME,
        },
    },
    "DeviceTokenRequest": {
        "type": "object",
        "properties": {"label": {"type": "string", "maxLength": 255, "description": "e.g. 'PC hội trường'"}},
    },
    "IssuedDeviceToken": {
        "type": "object",
        "required": ["token", "point"],
        "properties": {
            "token": {"type": "string", "description": "dcp_… — shown once; give it to `diemcau bridge --token`."},
            "point": ref("BridgePoint"),
        },
    },
    "RevokeResult": {
        "type": "object",
        "required": ["revoked"],
        "properties": {"revoked": {"type": "integer", "description": "How many active tokens were revoked."}},
    },
    # --- meetings --------------------------------------------------------------------------
    "Meeting": {
        "type": "object",
        "required": ["id", "title", "description", "starts_at", "ends_at", "state", "host_point_id",
                     "chair_id", "secretary_id", "created_at", "opened_at", "closed_at"],
        "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "starts_at": DATETIME,
            "ends_at": NULLABLE_DATETIME,
            "state": STATE,
            "host_point_id": NULLABLE_INT,
            "chair_id": NULLABLE_INT,
            "secretary_id": NULLABLE_INT,
            "created_at": DATETIME,
            "opened_at": NULLABLE_DATETIME,
            "closed_at": NULLABLE_DATETIME,
        },
    },
    "MeetingDetail": {
        "allOf": [
            ref("Meeting"),
            {"type": "object",
             "required": ["host_point", "chair", "secretary", "invited_points", "counts"],
             "properties": {
                 "host_point": {"allOf": [ref("BridgePoint")], "nullable": True},
                 "chair": PERSON,
                 "secretary": PERSON,
                 "invited_points": array_of("BridgePoint"),
                 "counts": {"type": "object", "required": ["invited", "province", "district", "commune"],
                            "properties": {"invited": {"type": "integer"}, "province": {"type": "integer"},
                                           "district": {"type": "integer"}, "commune": {"type": "integer"}}},
             }},
        ],
    },
    "MeetingCreate": {
        "type": "object",
        "required": ["title", "starts_at"],
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 500},
            "starts_at": {**DATETIME, "description": "ISO 8601 with a timezone, e.g. 2026-12-01T08:00:00+07:00"},
            "ends_at": NULLABLE_DATETIME,
            "description": {"type": "string", "maxLength": 20000},
            "host_point_code": {**CODE, "nullable": True, "description": "Invited automatically."},
            "chair_username": {**USERNAME, "nullable": True,
                               "description": "A chair creating the meeting without one becomes its chair."},
            "secretary_username": {**USERNAME, "nullable": True,
                                   "description": "A secretary creating the meeting without one becomes its secretary."},
        },
    },
    "MeetingUpdate": {
        "type": "object",
        "description": "Only the fields given change; null clears ends_at, host, chair or secretary. "
                       "Changing the chair needs meeting.control (the chair or an admin).",
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 500},
            "starts_at": DATETIME,
            "ends_at": NULLABLE_DATETIME,
            "description": {"type": "string", "maxLength": 20000},
            "host_point_code": {**CODE, "nullable": True},
            "chair_username": {**USERNAME, "nullable": True},
            "secretary_username": {**USERNAME, "nullable": True},
        },
    },
    "InviteRequest": {
        "type": "object",
        "description": "Give codes, and/or under (a parent code: that point and everything below it) "
                       "optionally narrowed by level; level alone invites every point of that level.",
        "properties": {
            "codes": {"type": "array", "items": CODE, "maxItems": 5000},
            "under": CODE,
            "level": LEVEL,
        },
    },
    "InviteResponse": {
        "type": "object",
        "required": ["invited", "already", "links"],
        "properties": {
            "invited": array_of("BridgePoint"),
            "already": array_of("BridgePoint"),
            "links": {"type": "object", "additionalProperties": {"type": "string", "format": "uri"},
                      "description": "Join URL per newly invited point code; shown once."},
        },
    },
    "Invitation": {
        "type": "object",
        "required": ["point", "invited_at", "expires_at", "link_expired"],
        "properties": {
            "point": ref("BridgePoint"),
            "invited_at": DATETIME,
            "expires_at": DATETIME,
            "link_expired": {"type": "boolean"},
        },
    },
    "InvitationLink": {
        "type": "object",
        "required": ["code", "link", "expires_at"],
        "properties": {
            "code": {"type": "string"},
            "link": {"type": "string", "format": "uri", "description": "Shown once; the old link stops working."},
            "expires_at": DATETIME,
        },
    },
})
