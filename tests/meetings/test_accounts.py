"""Accounts: validation, scrypt hashes at rest, sessions (hashed, expiring, revoked)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from meetings.clock import utcnow
from meetings.credentials import hash_token, verify_password
from meetings.errors import Conflict, Invalid, NotFound, Unauthenticated
from meetings.models import Role
from meetings.store.tables import sessions, users
from server.services import Services

PASSWORD = "mat-khau-rat-dai-2026"


async def test_create_and_store_scrypt_hash(services: Services) -> None:
    accounts = services.accounts
    user = await accounts.create_user("  ChuTri.Tinh ", PASSWORD, "chair", display_name="Phạm Minh Quang")
    assert (user.username, user.role, user.display_name, user.disabled) == (
        "chutri.tinh", Role.CHAIR, "Phạm Minh Quang", False)
    async with services.db.connect() as conn:
        stored = await conn.scalar(sa.select(users.c.password_hash).where(users.c.id == user.id))
    assert stored.startswith("scrypt$16384$8$1$")
    assert PASSWORD not in stored
    assert verify_password(PASSWORD, stored) and not verify_password(PASSWORD + "x", stored)


@pytest.mark.parametrize("username, password, role, code", [
    ("a", PASSWORD, "chair", "invalid_username"),
    ("có-dấu", PASSWORD, "chair", "invalid_username"),
    ("-dash", PASSWORD, "chair", "invalid_username"),
    ("ok.name", "short", "chair", "weak_password"),
    ("ok.name", "x" * 1025, "chair", "weak_password"),
    ("ok.name", PASSWORD, "president", "invalid_role"),
])
async def test_create_rejects(services: Services, username: str, password: str, role: str, code: str) -> None:
    with pytest.raises(Invalid) as info:
        await services.accounts.create_user(username, password, role)
    assert info.value.code == code


async def test_duplicate_username_and_unknown_point(services: Services) -> None:
    accounts = services.accounts
    await accounts.create_user("thuky", PASSWORD, "secretary")
    with pytest.raises(Conflict) as info:
        await accounts.create_user("THUKY", PASSWORD, "secretary")
    assert info.value.code == "username_taken"
    with pytest.raises(Invalid) as bad_point:
        await accounts.create_user("daibieu", PASSWORD, "delegate", point_code="nope")
    assert bad_point.value.code == "point_not_found"
    with pytest.raises(Invalid):
        await accounts.create_user("daibieu", PASSWORD, "delegate", display_name="x" * 300)


async def test_authenticate(services: Services) -> None:
    accounts = services.accounts
    user = await accounts.create_user("daibieu", PASSWORD, "delegate")
    assert (await accounts.authenticate("DaiBieu", PASSWORD)).id == user.id
    for name, password in [("daibieu", "wrong-password"), ("nobody", PASSWORD)]:
        with pytest.raises(Unauthenticated) as info:
            await accounts.authenticate(name, password)
        assert info.value.code == "bad_credentials"
    await accounts.set_disabled(user.id, True)
    with pytest.raises(Unauthenticated):
        await accounts.authenticate("daibieu", PASSWORD)


async def test_sessions_are_hashed_expire_and_revoke(services: Services) -> None:
    accounts = services.accounts
    user = await accounts.create_user("quansat", PASSWORD, "observer")
    issued, session_id = await accounts.open_session(user, client="pytest")
    assert issued.token.startswith("dcs_")
    async with services.db.connect() as conn:
        row = (await conn.execute(sa.select(sessions).where(sessions.c.id == session_id))).one()
    assert row.token_hash == hash_token(issued.token) and issued.token not in tuple(map(str, row))
    assert (await accounts.resolve_session(issued.token))[0].id == user.id
    # expire it
    async with services.db.transaction() as conn:
        await conn.execute(sessions.update().values(expires_at=utcnow() - timedelta(seconds=1)))
    with pytest.raises(Unauthenticated) as info:
        await accounts.resolve_session(issued.token)
    assert info.value.code == "token_expired"
    with pytest.raises(Unauthenticated) as forged:
        await accounts.resolve_session("dcs_" + "A" * 43)
    assert forged.value.code == "invalid_token"
    # closed session
    issued2, sid2 = await accounts.open_session(user)
    await accounts.close_session(sid2)
    with pytest.raises(Unauthenticated):
        await accounts.resolve_session(issued2.token)


async def test_short_session_ttl(services: Services) -> None:
    from meetings.accounts import Accounts

    accounts = Accounts(services.db, session_ttl=timedelta(seconds=-1))
    user = await accounts.create_user("ngan", PASSWORD, "observer")
    issued, _ = await accounts.open_session(user)
    with pytest.raises(Unauthenticated) as info:
        await accounts.resolve_session(issued.token)
    assert info.value.code == "token_expired"


async def test_disabling_ends_sessions(services: Services) -> None:
    accounts = services.accounts
    user = await accounts.create_user("daibieu", PASSWORD, "delegate")
    issued, _ = await accounts.open_session(user)
    await accounts.set_disabled(user.id, True)
    with pytest.raises(Unauthenticated):
        await accounts.resolve_session(issued.token)
    await accounts.set_disabled(user.id, False)
    with pytest.raises(Unauthenticated):  # re-enabling does not revive old sessions
        await accounts.resolve_session(issued.token)
    with pytest.raises(NotFound):
        await accounts.set_disabled(9999, True)


async def test_set_and_change_password(services: Services) -> None:
    accounts = services.accounts
    user = await accounts.create_user("chutri", PASSWORD, "chair")
    here, here_id = await accounts.open_session(user)
    elsewhere, _ = await accounts.open_session(user)
    with pytest.raises(Invalid) as wrong:
        await accounts.change_password(user.id, "not-the-password", "mat-khau-moi-2026")
    assert wrong.value.code == "wrong_password"
    with pytest.raises(Invalid) as same:
        await accounts.change_password(user.id, PASSWORD, PASSWORD)
    assert same.value.code == "weak_password"
    await accounts.change_password(user.id, PASSWORD, "mat-khau-moi-2026", keep_session_id=here_id)
    assert (await accounts.resolve_session(here.token))[0].id == user.id
    with pytest.raises(Unauthenticated):
        await accounts.resolve_session(elsewhere.token)
    assert (await accounts.authenticate("chutri", "mat-khau-moi-2026")).id == user.id
    # an admin reset ends every session
    await accounts.set_password(user.id, "mat-khau-thu-ba-2026")
    with pytest.raises(Unauthenticated):
        await accounts.resolve_session(here.token)
    with pytest.raises(NotFound):
        await accounts.set_password(9999, "mat-khau-thu-ba-2026")


async def test_a_new_role_or_point_ends_the_accounts_sessions_a_new_name_does_not(services: Services) -> None:
    """What an open session may do was decided with the old role and point: a change of
    either revokes every login of the account (it logs in again with the new rights)."""
    accounts = services.accounts
    await services.registry.import_file("p.csv", "code,name,level,parent\n08,UBND tỉnh Tuyên Quang,tỉnh,\n".encode())
    user = await accounts.create_user("chutri", PASSWORD, "chair")
    first, _ = await accounts.open_session(user)
    await accounts.update_user(user.id, display_name="Nguyễn Văn Hùng")
    await accounts.update_user(user.id, role="chair")  # the same role: nothing changes
    assert (await accounts.resolve_session(first.token))[0].display_name == "Nguyễn Văn Hùng"
    await accounts.update_user(user.id, role="delegate")
    with pytest.raises(Unauthenticated):
        await accounts.resolve_session(first.token)
    second, _ = await accounts.open_session(user)
    await accounts.update_user(user.id, point_code="08")
    with pytest.raises(Unauthenticated):
        await accounts.resolve_session(second.token)
    third, _ = await accounts.open_session(user)
    await accounts.update_user(user.id, point_code="08", display_name="Nguyễn Văn Hùng")  # unchanged
    assert (await accounts.resolve_session(third.token))[0].role is Role.DELEGATE


async def test_update_user_and_list(services: Services) -> None:
    accounts = services.accounts
    await services.registry.import_file("p.csv", "code,name,level,parent\n08,UBND tỉnh Tuyên Quang,tỉnh,\n".encode())
    user = await accounts.create_user("daibieu", PASSWORD, "delegate")
    await accounts.create_user("thuky", PASSWORD, "secretary", display_name="Nguyễn Thị Thu Hà")
    changed = await accounts.update_user(user.id, display_name="Hoàng Văn Hùng", role="observer", point_code="08")
    assert (changed.display_name, changed.role, changed.point_id is not None) == ("Hoàng Văn Hùng", Role.OBSERVER, True)
    cleared = await accounts.update_user(user.id, clear_point=True)
    assert cleared.point_id is None
    assert (await accounts.update_user(user.id)).id == user.id  # nothing to change
    with pytest.raises(Invalid):
        await accounts.update_user(user.id, role="king")
    with pytest.raises(Invalid):
        await accounts.update_user(user.id, display_name="  ")
    with pytest.raises(NotFound):
        await accounts.update_user(9999, display_name="X")
    assert [u.username for u in await accounts.list_users()] == ["daibieu", "thuky"]
    assert [u.username for u in await accounts.list_users(role=Role.SECRETARY)] == ["thuky"]
    assert [u.username for u in await accounts.list_users(query="Thu Hà")] == ["thuky"]
    assert [u.username for u in await accounts.list_users(query="bieu")] == ["daibieu"]
