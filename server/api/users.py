"""User accounts (tài khoản): admin-only management, and changing one's own password."""

from __future__ import annotations

from aiohttp import web

from meetings.errors import Conflict, Invalid
from meetings.models import Principal, Role, User
from meetings.permissions import Action

from ..auth import authorize
from ..keys import LOGIN_LIMIT_USER, SERVICES
from ..openapi import operation
from ..ws.revalidate import withdrawn
from .body import field_opt_str, field_str, path_int
from .params import query_enum, query_str, strict_json_body
from .schemas import ROLE, array_of, ref
from .views import user_json

TAGS = ["users"]
USER_ID_ERRORS = (400, 401, 403, 404)


def _role(body: dict[str, object], name: str = "role") -> Role:
    text = field_str(body, name, max_len=32)
    try:
        return Role(text)
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise Invalid(f"{name}: one of {choices}; got {text!r}", code="invalid_role",
                      details={"field": name}) from None


async def _user_json(request: web.Request, user: User) -> dict[str, object]:
    registry = request.app[SERVICES].registry
    point_code = (await registry.get(user.point_id)).code if user.point_id else None
    return user_json(user, point_code=point_code)


def _not_self(principal: Principal, user_id: int, what: str) -> None:
    if principal.user is not None and principal.user.id == user_id:
        raise Conflict(f"you cannot {what} your own account; ask another admin", code="cannot_change_self")


@operation("listUsers", "List user accounts", tags=TAGS, response=array_of("User"),
           query=[("role", ROLE, "only this role"),
                  ("q", {"type": "string", "maxLength": 200}, "part of the username or display name")])
async def list_users(request: web.Request) -> web.Response:
    await authorize(request, Action.USERS_MANAGE)
    accounts = request.app[SERVICES].accounts
    found = await accounts.list_users(role=query_enum(request, "role", Role), query=query_str(request, "q"))
    codes = await accounts.point_codes()
    return web.json_response([user_json(u, point_code=codes.get(u.point_id or 0)) for u in found])


@operation("createUser", "Create a user account", tags=TAGS, status=201, request=ref("UserCreate"),
           response=ref("User"), errors=(400, 401, 403, 409),
           description="Usernames are lower-case; the password is stored as a scrypt hash.")
async def create_user(request: web.Request) -> web.Response:
    principal, _ = await authorize(request, Action.USERS_MANAGE)
    body = await strict_json_body(request)
    username = field_str(body, "username", max_len=64)
    password = field_str(body, "password", max_len=1024)
    role = _role(body)
    display_name = field_str(body, "display_name", required=False, max_len=255)
    point_code = field_opt_str(body, "point_code", max_len=64)
    user = await request.app[SERVICES].accounts.create_user(
        username, password, role, display_name=display_name, point_code=point_code)
    await request.app[SERVICES].audit.record(principal, "user.create", target=user.username,
                                             details={"role": user.role.value})
    return web.json_response(await _user_json(request, user), status=201)


@operation("getUser", "One user account", tags=TAGS, response=ref("User"), errors=USER_ID_ERRORS)
async def get_user(request: web.Request) -> web.Response:
    await authorize(request, Action.USERS_MANAGE)
    user = await request.app[SERVICES].accounts.get(path_int(request, "user_id"))
    return web.json_response(await _user_json(request, user))


@operation("updateUser", "Change an account's display name, role or bridge point", tags=TAGS,
           request=ref("UserUpdate"), response=ref("User"), errors=(400, 401, 403, 404, 409),
           description="An admin cannot change their own role (409 cannot_change_self). A change of "
                       "role or bridge point ends the account's sessions (open WebSockets at once): "
                       "the user logs in again with the new rights.")
async def update_user(request: web.Request) -> web.Response:
    principal, _ = await authorize(request, Action.USERS_MANAGE)
    user_id = path_int(request, "user_id")
    body = await strict_json_body(request)
    unknown = set(body) - {"display_name", "role", "point_code"}
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}", code="invalid_field",
                      details={"fields": sorted(unknown)})
    role = _role(body) if "role" in body else None
    if role is not None and principal.user is not None and principal.user.id == user_id and role is not principal.role:
        _not_self(principal, user_id, "change the role of")
    display_name = field_str(body, "display_name", max_len=255) if "display_name" in body else None
    point_code = field_opt_str(body, "point_code", max_len=64)
    before = await request.app[SERVICES].accounts.get(user_id)
    user = await request.app[SERVICES].accounts.update_user(
        user_id, display_name=display_name, role=role, point_code=point_code,
        clear_point="point_code" in body and body["point_code"] is None)
    if user.role is not before.role:  # role changes are audited (never passwords)
        await request.app[SERVICES].audit.record(principal, "user.role", target=user.username,
                                                 details={"from": before.role.value, "to": user.role.value})
    if user.role is not before.role or user.point_id != before.point_id:
        await withdrawn(request.app[SERVICES], "account_changed")  # its sessions were revoked
    return web.json_response(await _user_json(request, user))


@operation("disableUser", "Disable an account (its sessions end at once)", tags=TAGS, response=ref("User"),
           errors=(400, 401, 403, 404, 409))
async def disable_user(request: web.Request) -> web.Response:
    principal, _ = await authorize(request, Action.USERS_MANAGE)
    user_id = path_int(request, "user_id")
    _not_self(principal, user_id, "disable")
    user = await request.app[SERVICES].accounts.set_disabled(user_id, True)
    await request.app[SERVICES].audit.record(principal, "user.disable", target=user.username)
    await withdrawn(request.app[SERVICES], "user_disabled")
    return web.json_response(await _user_json(request, user))


@operation("enableUser", "Enable a disabled account", tags=TAGS, response=ref("User"), errors=USER_ID_ERRORS)
async def enable_user(request: web.Request) -> web.Response:
    await authorize(request, Action.USERS_MANAGE)
    user = await request.app[SERVICES].accounts.set_disabled(path_int(request, "user_id"), False)
    return web.json_response(await _user_json(request, user))


@operation("resetUserPassword", "Set a new password for an account (its sessions end)", tags=TAGS,
           status=204, request=ref("PasswordReset"), errors=USER_ID_ERRORS)
async def reset_password(request: web.Request) -> web.Response:
    await authorize(request, Action.USERS_MANAGE)
    user_id = path_int(request, "user_id")
    body = await strict_json_body(request)
    password = field_str(body, "password", max_len=1024)
    await request.app[SERVICES].accounts.set_password(user_id, password)
    await withdrawn(request.app[SERVICES], "password_reset")
    return web.Response(status=204)


@operation("changeOwnPassword", "Change your own password", tags=["auth"], status=204,
           request=ref("PasswordChange"), errors=(400, 401, 403, 429),
           description="Needs the current password (wrong attempts count like failed logins). "
           "Your other sessions end; this one stays.")
async def change_own_password(request: web.Request) -> web.Response:
    principal, _ = await authorize(request, Action.ACCOUNT_SELF)
    assert principal.user is not None
    body = await strict_json_body(request)
    current = field_str(body, "current_password", max_len=1024)
    new = field_str(body, "new_password", max_len=1024)
    limiter = request.app[LOGIN_LIMIT_USER]
    limiter.check(principal.user.username)
    try:
        await request.app[SERVICES].accounts.change_password(
            principal.user.id, current, new, keep_session_id=principal.session_id)
    except Invalid as exc:
        if exc.code == "wrong_password":
            limiter.hit(principal.user.username)
        raise
    await withdrawn(request.app[SERVICES], "password_changed")
    return web.Response(status=204)


def setup(app: web.Application) -> None:
    app.router.add_get("/api/users", list_users)
    app.router.add_post("/api/users", create_user)
    app.router.add_post("/api/users/me/password", change_own_password)
    app.router.add_get("/api/users/{user_id}", get_user)
    app.router.add_patch("/api/users/{user_id}", update_user)
    app.router.add_post("/api/users/{user_id}/disable", disable_user)
    app.router.add_post("/api/users/{user_id}/enable", enable_user)
    app.router.add_post("/api/users/{user_id}/password", reset_password)
