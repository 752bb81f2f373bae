"""The bridge-point registry: all-or-none imports, hierarchy rules, search, device tokens."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from meetings.credentials import hash_token
from meetings.errors import Conflict, Invalid, NotFound, Unauthenticated
from meetings.models import PointLevel
from meetings.point_import import ImportRejected
from meetings.registry import Registry
from meetings.store.tables import bridge_points, point_tokens
from server.services import Services

DATA = Path(__file__).resolve().parent.parent / "data"
PROVINCE = ("code,name,level,parent\n"
            "08,UBND tỉnh Tuyên Quang,province,\n"
            "070,UBND thành phố Tuyên Quang,district,08\n"
            "075,UBND huyện Yên Sơn,district,08\n"
            "02212,UBND phường Phan Thiết,commune,070\n"
            "02437,UBND xã Thắng Quân,commune,075\n"
            "02461,UBND xã Đông Lai,commune,075\n")


async def snapshot(services: Services) -> list[tuple]:
    async with services.db.connect() as conn:
        rows = (await conn.execute(sa.select(bridge_points).order_by(bridge_points.c.code))).all()
    return [tuple(r) for r in rows]


async def seed(registry: Registry) -> None:
    result = await registry.import_file("tq.csv", PROVINCE.encode())
    assert (result.created, result.updated) == (6, 0)


async def test_import_sample_files(services: Services) -> None:
    registry = services.registry
    csv_result = await registry.import_file("points_sample.csv", (DATA / "points_sample.csv").read_bytes())
    yaml_result = await registry.import_file("points_sample.yaml", (DATA / "points_sample.yaml").read_bytes())
    assert (csv_result.created, yaml_result.created) == (15, 13)
    assert len(await registry.list()) == 28
    quan = await registry.by_code("07195")
    assert quan.name == "UBND xã Quan Lạn" and quan.parent_code == "203" and quan.level is PointLevel.COMMUNE


async def test_bad_row_imports_nothing(services: Services) -> None:
    registry = services.registry
    await seed(registry)
    before = await snapshot(services)
    text = ("code,name,level,parent\n"
            "076,UBND huyện Sơn Dương,district,08\n"
            "02530,UBND xã Tân Trào,commune,076\n"
            "02554,UBND xã Hồng Lạc,commune,999\n")  # line 4: unknown parent
    with pytest.raises(ImportRejected) as info:
        await registry.import_file("more.csv", text.encode())
    assert info.value.details["errors"] == [
        {"row": 4, "message": "parent code '999' is not in the file nor registered"}]
    assert await snapshot(services) == before


async def test_file_errors_and_registry_errors_come_together(services: Services) -> None:
    registry = services.registry
    await seed(registry)
    before = await snapshot(services)
    text = ("code,name,level,parent\n"
            "070,UBND thành phố Tuyên Quang,district,08\n"  # 2: already registered
            "076,UBND huyện Sơn Dương,làng,08\n"  # 3: bad level (file error)
            "02530,UBND xã Tân Trào,commune,08\n"  # 4: commune under a province
            "02554,UBND xã Hồng Lạc,commune,075\n"
            "02554,UBND xã Hồng Lạc (trùng),commune,075\n"  # 6: duplicate in the file
            "09,Tỉnh khác,province,08\n"  # 7: a province with a parent
            "077,Huyện mồ côi,district,\n")  # 8: a district without parent
    with pytest.raises(ImportRejected) as info:
        await registry.import_file("bad.csv", text.encode())
    errors = info.value.details["errors"]
    assert [e["row"] for e in errors] == [2, 3, 4, 6, 7, 8]
    assert "already registered" in errors[0]["message"]
    assert "'làng'" in errors[1]["message"]
    assert "must be a district, not a province" in errors[2]["message"]
    assert "also on row 5" in errors[3]["message"]
    assert "a province has no parent" in errors[4]["message"]
    assert "needs a parent code" in errors[5]["message"]
    assert await snapshot(services) == before


async def test_parent_errors(services: Services) -> None:
    registry = services.registry
    await seed(registry)
    cases = [
        ("X1,Xã,commune,08\n", "must be a district, not a province"),  # commune under a province
        ("X2,Huyện,district,070\n", "must be a province, not a district"),  # district under a district
        ("X3,Xã,commune,02212\n", "must be a district, not a commune"),  # commune under a commune
        ("X4,Xã,commune,X4\n", "must be a district, not a commune"),  # its own parent
    ]
    for line, fragment in cases:
        with pytest.raises(ImportRejected) as info:
            await registry.import_file("p.csv", ("code,name,level,parent\n" + line).encode())
        assert fragment in info.value.details["errors"][0]["message"], line


async def test_update_mode(services: Services) -> None:
    registry = services.registry
    await seed(registry)
    text = "code,name,level,parent\n02437,UBND xã Thắng Quân (mới),commune,070\n02999,UBND xã Mới,commune,075\n"
    with pytest.raises(ImportRejected):
        await registry.import_file("u.csv", text.encode())
    result = await registry.import_file("u.csv", text.encode(), update=True)
    assert (result.created, result.updated) == (1, 1)
    moved = await registry.by_code("02437")
    assert moved.name == "UBND xã Thắng Quân (mới)" and moved.parent_code == "070"
    assert (await registry.list(query="thang quan (moi)"))[0].code == "02437"  # folded name updated too


async def test_update_cannot_strand_registered_children(services: Services) -> None:
    registry = services.registry
    await seed(registry)
    before = await snapshot(services)
    # 075 has communes; making it a commune would leave them under a commune.
    with pytest.raises(ImportRejected) as info:
        await registry.import_file("u.csv", "code,name,level,parent\n075,Yên Sơn,commune,070\n".encode(), update=True)
    assert "registered point '02437' is under '075'" in info.value.message
    assert await snapshot(services) == before


async def test_empty_file_is_rejected(services: Services) -> None:
    with pytest.raises(ImportRejected):
        await services.registry.import_file("e.csv", b"code,name,level,parent\n")


async def test_create_one(services: Services) -> None:
    registry = services.registry
    await seed(registry)
    point = await registry.create("02530", "  UBND xã Tân Trào ", "commune", "075")
    assert (point.name, point.parent_code, point.enabled) == ("UBND xã Tân Trào", "075", True)
    with pytest.raises(Conflict) as conflict:
        await registry.create("02530", "Khác", "commune", "075")
    assert conflict.value.code == "duplicate_code"
    for args, code in [
        (("", "Tên", "commune", "075"), "invalid_point"),
        (("x y", "Tên", "commune", "075"), "invalid_point"),
        (("X9", "", "commune", "075"), "invalid_point"),
        (("X9", "Tên", "hamlet", "075"), "invalid_point"),
        (("X9", "Tên", "commune", "08"), "invalid_parent"),
        (("X9", "Tên", "commune", "nope"), "invalid_parent"),
    ]:
        with pytest.raises(Invalid) as info:
            await registry.create(*args)
        assert info.value.code == code, args


async def test_search_folds_vietnamese(services: Services) -> None:
    registry = services.registry
    await seed(registry)
    assert [p.code for p in await registry.list(query="dong lai")] == ["02461"]
    assert [p.code for p in await registry.list(query="ĐÔNG LAI")] == ["02461"]
    assert [p.code for p in await registry.list(query="0221")] == ["02212"]
    assert await registry.list(query="%") == []  # LIKE wildcards are literal
    assert [p.code for p in await registry.list(level=PointLevel.DISTRICT)] == ["070", "075"]
    await registry.set_enabled((await registry.by_code("070")).id, False)
    assert [p.code for p in await registry.list(level=PointLevel.DISTRICT, enabled=True)] == ["075"]
    assert [p.code for p in await registry.list(enabled=False)] == ["070"]


async def test_tree_and_descendants(services: Services) -> None:
    registry = services.registry
    await seed(registry)
    roots = await registry.tree()
    assert [r.point.code for r in roots] == ["08"]
    assert [c.point.code for c in roots[0].children] == ["070", "075"]
    assert [c.point.code for c in roots[0].children[1].children] == ["02437", "02461"]
    yen_son = await registry.by_code("075")
    assert [p.code for p in await registry.descendants(yen_son.id)] == ["02437", "02461"]


async def test_device_tokens(services: Services) -> None:
    registry = services.registry
    await seed(registry)
    point = await registry.by_code("02437")
    issued = await registry.issue_token(point.id, label="PC hội trường")
    assert issued.token.startswith("dcp_")
    assert (await registry.resolve_token(issued.token)).code == "02437"
    async with services.db.connect() as conn:
        stored = (await conn.execute(sa.select(point_tokens))).all()
    assert [r.token_hash for r in stored] == [hash_token(issued.token)]
    assert issued.token not in repr(stored)
    listed = await registry.list_tokens(point.id)
    assert listed[0].label == "PC hội trường" and listed[0].last_used_at is not None
    # disabling the point stops its tokens; enabling brings them back
    await registry.set_enabled(point.id, False)
    with pytest.raises(Unauthenticated) as info:
        await registry.resolve_token(issued.token)
    assert info.value.code == "point_disabled"
    await registry.set_enabled(point.id, True)
    assert await registry.revoke_tokens(point.id) == 1
    assert await registry.revoke_tokens(point.id) == 0
    with pytest.raises(Unauthenticated):
        await registry.resolve_token(issued.token)
    with pytest.raises(Unauthenticated):
        await registry.resolve_token("dcp_forged")
    with pytest.raises(NotFound):
        await registry.issue_token(99999)
    with pytest.raises(NotFound):
        await registry.set_enabled(99999, True)
