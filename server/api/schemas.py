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

# --- meeting conduct: floor, attendance, votes, minutes, audit ------------------------------
_INT = {"type": "integer"}
_STR = {"type": "string"}
_BOOL = {"type": "boolean"}


def _obj(required: list[str], **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


_FLOOR_REQUEST = _obj(["id", "point_code", "label", "topic", "requested_at"], id=_INT, point_code=_STR,
                      label=_STR, topic=_STR, requested_at=DATETIME)
_ROLL_CALL = _obj(["id", "started_at", "confirmed", "closed"], id=_INT, started_at=DATETIME,
                  confirmed={"type": "array", "items": _STR}, closed=_BOOL)
_CHOICE = {"oneOf": [{"type": "string", "maxLength": 200},
                     _obj(["label"], key={"type": "string", "pattern": "^[a-z0-9_-]{1,32}$"},
                          label={"type": "string", "maxLength": 200})]}
SCHEMAS.update({
    "FloorRequest": _FLOOR_REQUEST,
    "FloorRequestCreate": {"type": "object", "properties": {"topic": {"type": "string", "maxLength": 500}}},
    "FloorGrant": {"type": "object", "description": "request_id or point_code",
                   "properties": {"request_id": _INT, "point_code": CODE}},
    "Floor": _obj(
        ["speaker", "queue", "main_screen", "locked", "muted", "totals"],
        speaker={**_obj(["request_id", "point_code", "label", "since", "topic"], request_id=NULLABLE_INT,
                        point_code=_STR, label=_STR, since=DATETIME, topic=_STR), "nullable": True},
        queue={"type": "array", "items": _FLOOR_REQUEST},
        main_screen=_obj(["point_code", "label", "reason"], point_code=NULLABLE_STR, label=_STR,
                         reason={"type": "string", "enum": ["host", "floor", "chair"]}),
        locked=_BOOL, muted={"type": "array", "items": _STR},
        totals={"type": "array", "items": _obj(["point_code", "label", "seconds"], point_code=_STR, label=_STR,
                                               seconds=_INT)}),
    "MutedFlag": _obj(["muted"], muted=_BOOL),
    "LockedFlag": _obj(["locked"], locked=_BOOL),
    "AttendanceSheet": _obj(
        ["points", "roll_call"],
        points={"type": "array", "items": _obj(
            ["point_code", "name", "level", "status"], point_code=_STR, name=_STR, level=LEVEL,
            status={"type": "string", "enum": ["online", "in_hall", "absent", "unknown"]},
            headcount=NULLABLE_INT, reason=_STR, first_joined_at=NULLABLE_DATETIME, last_left_at=NULLABLE_DATETIME,
            online_seconds=_INT)},
        roll_call={**_ROLL_CALL, "nullable": True}),
    "AttendanceSet": _obj(["status"], status={"type": "string", "enum": ["online", "in_hall", "absent"]},
                          headcount={"type": "integer", "minimum": 0, "maximum": 10000, "nullable": True},
                          reason={"type": "string", "maxLength": 500}),
    "RollCall": _ROLL_CALL,
    "RollCallConfirm": {"type": "object", "properties": {
        "headcount": {"type": "integer", "minimum": 0, "maximum": 10000, "nullable": True}}},
    "VoteCreate": _obj(["title"], title={"type": "string", "maxLength": 500}, agenda_item_id=NULLABLE_INT,
                       choices={"type": "array", "minItems": 2, "maxItems": 20, "items": _CHOICE,
                                "description": "default agree / disagree / abstain"},
                       secret={"type": "boolean", "default": False},
                       electorate={"type": "string", "enum": ["points", "delegates"], "default": "points"}),
    "Vote": _obj(
        ["id", "title", "choices", "secret", "electorate", "state", "ballots_cast", "eligible", "you_voted"],
        id=_INT, meeting_id=_INT, title=_STR, agenda_item_id=NULLABLE_INT,
        choices={"type": "array", "items": _obj(["key", "label"], key=_STR, label=_STR)}, secret=_BOOL,
        electorate={"type": "string", "enum": ["points", "delegates"]},
        state={"type": "string", "enum": ["open", "closed", "published"]}, opened_at=DATETIME,
        closed_at=NULLABLE_DATETIME, ballots_cast=_INT, eligible=_INT, you_voted=_BOOL),
    "VoteList": _obj(["votes"], votes=array_of("Vote")),
    "BallotCast": _obj(["choice", "client_ballot_id"], choice={"type": "string", "maxLength": 32},
                       client_ballot_id={"type": "string", "pattern": "^[A-Za-z0-9._:-]{8,128}$",
                                         "description": "Chosen by the client (e.g. a UUID); resending it never "
                                         "counts twice."}),
    "BallotAccepted": _obj(["accepted", "duplicate"], accepted=_BOOL, duplicate=_BOOL),
    "VoteResult": _obj(
        ["vote_id", "state", "eligible", "cast", "counts", "percentages", "named"], vote_id=_INT,
        state={"type": "string", "enum": ["open", "closed", "published"]}, eligible=_INT, cast=_INT,
        counts={"type": "object", "additionalProperties": _INT},
        percentages={"type": "object", "additionalProperties": {"type": "number"}},
        named={"type": "array", "items": _obj(["voter_label", "choice"], voter_label=_STR, choice=_STR)}),
    "MinutesGenerate": {"type": "object", "properties": {
        "conclusions": {"type": "string", "maxLength": 50000}, "number": {"type": "string", "maxLength": 200},
        "place": {"type": "string", "maxLength": 200}, "issuer": {"type": "string", "maxLength": 200}}},
    "MinutesGenerated": _obj(["version", "generated_at", "pages", "url"], version=_INT, generated_at=DATETIME,
                             pages=_INT, url=_STR),
    "MinutesList": _obj(
        ["versions", "conclusions"], conclusions=_STR,
        versions={"type": "array", "items": _obj(["version", "generated_at", "generated_by", "pages"],
                                                 version=_INT, generated_at=DATETIME, generated_by=_STR,
                                                 pages=_INT, url=_STR)},
        recordings={"type": "array", "items": _obj(["id", "started_at"], id=_INT, started_at=DATETIME,
                                                   stopped_at={**DATETIME, "nullable": True},
                                                   duration_s={"type": "number", "nullable": True})}),
    "ConclusionsSet": _obj(["text"], text={"type": "string", "maxLength": 50000}),
    "Conclusions": _obj(["text"], text=_STR),
    "AuditList": _obj(["entries"], entries={"type": "array", "items": _obj(
        ["id", "at", "actor_label", "actor_kind", "action", "meeting_id", "target", "details"], id=_INT,
        at=DATETIME, actor_label=_STR, actor_kind={"type": "string", "enum": ["user", "point", "system"]},
        action=_STR, meeting_id=NULLABLE_INT, target=_STR, details={"type": "object"})}),
})

# --- media: the chair's main-screen command (server/api/media.py) ---------------------------
SCHEMAS.update({
    "MainScreenSet": {"type": "object", "required": ["point_code"], "additionalProperties": False,
                      "properties": {"point_code": {"type": "string", "minLength": 1, "maxLength": 64}}},
    "MainScreen": {"type": "object", "required": ["point_code", "label", "reason"], "properties": {
        "point_code": {"type": "string"}, "label": {"type": "string"},
        "reason": {"type": "string", "enum": ["host", "floor", "chair", "share"]}}},
})
