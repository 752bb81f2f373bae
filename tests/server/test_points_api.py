"""The bridge-point registry over HTTP: listing, search, tree, create, file import, tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from meetings.credentials import hash_token
from meetings.store.tables import bridge_points, point_tokens
from server.api.points import MAX_IMPORT_BYTES
from tests.conftest import Api

DATA = Path(__file__).resolve().parent.parent / "data"


async def error(resp: Any) -> tuple[int, str]:
    body = await resp.json()
    return resp.status, body["error"]["code"]


def upload(data: bytes, filename: str = "points.csv", content_type: str = "text/csv",
           update: str | None = None) -> aiohttp.FormData:
    form = aiohttp.FormData()
    if update is not None:
        form.add_field("update", update)
    form.add_field("file", data, filename=filename, content_type=content_type)
    return form


async def registry_rows(api: Api) -> list[tuple]:
    async with api.services.db.connect() as conn:
        return [tuple(r) for r in (await conn.execute(sa.select(bridge_points).order_by(bridge_points.c.id))).all()]


@pytest.fixture
async def admin(api: Api) -> dict[str, str]:
    login = await api.user("quantri", "admin")
    api.client.session.cookie_jar.clear()
    return api.bearer(login)


async def test_import_csv_and_yaml_then_list_and_tree(api: Api, admin: dict[str, str]) -> None:
    resp = await api.client.post("/api/points/import", data=upload((DATA / "points_sample.csv").read_bytes()),
                                 headers=admin)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"created": 15, "updated": 0}
    resp = await api.client.post("/api/points/import", headers=admin, data=upload(
        (DATA / "points_sample.yaml").read_bytes(), "points_sample.yaml", "application/yaml"))
    assert await resp.json() == {"created": 13, "updated": 0}
    listed = await (await api.client.get("/api/points", headers=admin)).json()
    assert len(listed) == 28
    assert set(listed[0]) == {"id", "code", "name", "level", "parent_code", "enabled"}
    # search without diacritics, filters
    found = await (await api.client.get("/api/points", params={"q": "nhon ai"}, headers=admin)).json()
    assert [(p["code"], p["name"]) for p in found] == [("31300", "UBND xã Nhơn Ái")]
    found = await (await api.client.get("/api/points", params={"q": "HẠ LONG"}, headers=admin)).json()
    assert [p["code"] for p in found] == ["193"]
    districts = await (await api.client.get("/api/points?level=district", headers=admin)).json()
    assert [p["code"] for p in districts] == ["193", "203", "207", "916", "918", "926"]
    tree = await (await api.client.get("/api/points/tree", headers=admin)).json()
    assert [root["code"] for root in tree] == ["22", "92"]
    can_tho = tree[1]
    assert [d["code"] for d in can_tho["children"]] == ["916", "918", "926"]
    assert [c["name"] for c in can_tho["children"][2]["children"]] == [
        "UBND thị trấn Phong Điền", "UBND xã Nhơn Ái", "UBND xã Mỹ Khánh", "UBND xã Giai Xuân"]
    one = await (await api.client.get(f"/api/points/{can_tho['id']}", headers=admin)).json()
    assert one["name"] == "UBND thành phố Cần Thơ" and one["parent_code"] is None


@pytest.mark.parametrize("query, code", [
    ("level=hamlet", "invalid_query"),
    ("enabled=maybe", "invalid_query"),
    ("q=" + "x" * 201, "invalid_query"),
])
async def test_list_bad_queries(api: Api, admin: dict[str, str], query: str, code: str) -> None:
    assert await error(await api.client.get(f"/api/points?{query}", headers=admin)) == (400, code)


async def test_import_semicolon_bom_csv_with_raw_body(api: Api, admin: dict[str, str]) -> None:
    text = ("Mã định danh;Tên điểm cầu;Cấp;Mã cấp trên\r\n08;UBND tỉnh Tuyên Quang;Tỉnh;\r\n"
            "075;UBND huyện Yên Sơn;Huyện;08\r\n02437;UBND xã Thắng Quân;Xã;075\r\n")
    resp = await api.client.post("/api/points/import", data=b"\xef\xbb\xbf" + text.encode(),
                                 headers={**admin, "Content-Type": "text/csv"})
    assert await resp.json() == {"created": 3, "updated": 0}
    found = await (await api.client.get("/api/points?q=thang quan", headers=admin)).json()
    assert found[0]["parent_code"] == "075"


async def test_bad_rows_import_nothing_and_report_rows(api: Api, admin: dict[str, str]) -> None:
    await api.client.post("/api/points/import", data=upload((DATA / "points_sample.csv").read_bytes()),
                          headers=admin)
    before = await registry_rows(api)
    text = ("code,name,level,parent\n"
            "08,UBND tỉnh Tuyên Quang,province,\n"
            "075,UBND huyện Yên Sơn,district,08\n"
            "916,Trùng mã đã đăng ký,district,08\n"  # 4: already registered
            "02437,UBND xã Thắng Quân,commune,08\n"  # 5: commune under a province
            "075,UBND huyện Yên Sơn (lặp),district,08\n"  # 6: duplicate in file
            "02461,,commune,075\n"  # 7: empty name
            "02464,UBND xã Chân Sơn,commune,404\n")  # 8: unknown parent
    resp = await api.client.post("/api/points/import", data=upload(text.encode()), headers=admin)
    status, code = await error(resp)
    assert (status, code) == (400, "import_rejected")
    errors = (await resp.json())["error"]["details"]["errors"]
    assert [e["row"] for e in errors] == [4, 5, 6, 7, 8]
    assert all(isinstance(e["message"], str) and e["message"] for e in errors)
    assert await registry_rows(api) == before  # nothing imported, not even the good rows


async def test_import_update_flag(api: Api, admin: dict[str, str]) -> None:
    csv_data = (DATA / "points_sample.csv").read_bytes()
    await api.client.post("/api/points/import", data=upload(csv_data), headers=admin)
    renamed = csv_data.replace("UBND xã Mỹ Khánh".encode(), "UBND xã Mỹ Khánh (đổi tên)".encode())
    resp = await api.client.post("/api/points/import", data=upload(renamed), headers=admin)
    assert (await error(resp))[1] == "import_rejected"
    resp = await api.client.post("/api/points/import?update=true", data=upload(renamed), headers=admin)
    assert await resp.json() == {"created": 0, "updated": 15}
    resp = await api.client.post("/api/points/import", data=upload(renamed, update="true"), headers=admin)
    assert await resp.json() == {"created": 0, "updated": 15}
    found = await (await api.client.get("/api/points?q=doi ten", headers=admin)).json()
    assert [p["code"] for p in found] == ["31303"]


async def test_import_yaml_nested_errors_use_lines(api: Api, admin: dict[str, str]) -> None:
    text = ("- code: '08'\n  name: UBND tỉnh Tuyên Quang\n  level: tỉnh\n  children:\n"
            "    - {code: '075', name: UBND huyện Yên Sơn, level: huyện}\n"
            "    - {code: '076', name: UBND huyện Sơn Dương, level: xã}\n")  # line 6: a commune under a province
    resp = await api.client.post("/api/points/import", data=upload(text.encode(), "p.yml", "text/yaml"),
                                 headers=admin)
    assert (await resp.json())["error"]["details"]["errors"][0]["row"] == 6


@pytest.mark.parametrize("make, code", [
    (lambda: aiohttp.FormData({"other": "x"}), "missing_field"),
    (lambda: aiohttp.FormData({"other": "x"}, default_to_multipart=True), "invalid_field"),
    (lambda: aiohttp.FormData({"update": "true"}, default_to_multipart=True), "missing_field"),
    (lambda: upload(b"code,name,level\n", "points.xlsx"), "unsupported_format"),
    (lambda: upload(b"", "empty.csv"), "import_rejected"),
    (lambda: upload(b"\xff\xfe\x00garbage", "bad.csv"), "import_rejected"),
    (lambda: upload(b"code,name,level,parent\n", "header_only.csv"), "import_rejected"),
    (lambda: upload(b"code,name,level,parent\n08,X,province,\n", update="perhaps"), "invalid_query"),
    (lambda: upload(b"code,name,level,parent\n08,X,province,\n", update="t" * 5000), "invalid_query"),
])
async def test_import_bad_uploads(api: Api, admin: dict[str, str], make: Any, code: str) -> None:
    resp = await api.client.post("/api/points/import", data=make(), headers=admin)
    assert await error(resp) == (400, code)


async def test_import_needs_multipart_or_a_file_type(api: Api, admin: dict[str, str]) -> None:
    resp = await api.client.post("/api/points/import", json={"file": "x"}, headers=admin)
    assert await error(resp) == (400, "unsupported_media_type")


async def test_import_size_cap(api: Api, admin: dict[str, str]) -> None:
    big = b"code,name,level,parent\n" + b"x" * (MAX_IMPORT_BYTES + 10)
    resp = await api.client.post("/api/points/import", data=upload(big), headers=admin)
    assert await error(resp) == (413, "too_large")
    assert await registry_rows(api) == []


async def test_create_point_and_its_errors(api: Api, admin: dict[str, str]) -> None:
    body = {"code": "08", "name": "UBND tỉnh Tuyên Quang", "level": "province"}
    resp = await api.client.post("/api/points", json=body, headers=admin)
    assert resp.status == 201
    assert (await resp.json())["code"] == "08"
    assert await error(await api.client.post("/api/points", json=body, headers=admin)) == (409, "duplicate_code")
    cases = [
        ({"code": "075", "name": "UBND huyện Yên Sơn"}, "missing_field"),
        ({"code": "075", "name": "UBND huyện Yên Sơn", "level": 2}, "invalid_field"),
        ({"code": "075", "name": "UBND huyện Yên Sơn", "level": "town", "parent_code": "08"}, "invalid_point"),
        ({"code": "07 5", "name": "UBND huyện Yên Sơn", "level": "district", "parent_code": "08"}, "invalid_point"),
        ({"code": "075", "name": "UBND huyện Yên Sơn", "level": "district"}, "invalid_parent"),
        ({"code": "02437", "name": "UBND xã Thắng Quân", "level": "commune", "parent_code": "08"}, "invalid_parent"),
        ({"code": "075", "name": "UBND huyện Yên Sơn", "level": "district", "parent_code": "999"}, "invalid_parent"),
    ]
    for bad, code in cases:
        assert await error(await api.client.post("/api/points", json=bad, headers=admin)) == (400, code), bad
    resp = await api.client.post("/api/points", data=b"{,}", headers={**admin, "Content-Type": "application/json"})
    assert await error(resp) == (400, "malformed_json")


async def test_enable_disable_and_device_tokens(api: Api, admin: dict[str, str]) -> None:
    await api.client.post("/api/points/import", data=upload((DATA / "points_sample.csv").read_bytes()),
                          headers=admin)
    point = (await (await api.client.get("/api/points?q=31300", headers=admin)).json())[0]
    pid = point["id"]
    resp = await api.client.post(f"/api/points/{pid}/tokens", json={"label": "PC hội trường"}, headers=admin)
    assert resp.status == 201 and resp.headers["Cache-Control"] == "no-store"
    issued = await resp.json()
    assert issued["token"].startswith("dcp_") and issued["point"]["code"] == "31300"
    second = await (await api.client.post(f"/api/points/{pid}/tokens", headers=admin)).json()  # no body
    device = {"Authorization": f"Bearer {issued['token']}"}
    me = await (await api.client.get("/api/auth/me", headers=device)).json()
    assert me["kind"] == "point" and me["point"]["code"] == "31300"
    # stored hashed
    async with api.services.db.connect() as conn:
        hashes = list((await conn.execute(sa.select(point_tokens.c.token_hash))).scalars())
    assert sorted(hashes) == sorted([hash_token(issued["token"]), hash_token(second["token"])])
    listed = await (await api.client.get(f"/api/points/{pid}/tokens", headers=admin)).json()
    assert [t["label"] for t in listed] == ["PC hội trường", ""]
    assert "token" not in listed[0] and listed[0]["last_used_at"] is not None
    # disabling the point locks its devices out
    resp = await api.client.post(f"/api/points/{pid}/disable", headers=admin)
    assert (await resp.json())["enabled"] is False
    assert await error(await api.client.get("/api/auth/me", headers=device)) == (401, "point_disabled")
    await api.client.post(f"/api/points/{pid}/enable", headers=admin)
    assert (await api.client.get("/api/auth/me", headers=device)).status == 200
    # revoking
    resp = await api.client.delete(f"/api/points/{pid}/tokens", headers=admin)
    assert await resp.json() == {"revoked": 2}
    assert await error(await api.client.get("/api/auth/me", headers=device)) == (401, "invalid_token")
    listed = await (await api.client.get(f"/api/points/{pid}/tokens", headers=admin)).json()
    assert all(t["revoked_at"] for t in listed)


async def test_unknown_points(api: Api, admin: dict[str, str]) -> None:
    for method, path in [("GET", "/api/points/999"), ("POST", "/api/points/999/enable"),
                         ("POST", "/api/points/999/tokens"), ("DELETE", "/api/points/999/tokens"),
                         ("GET", "/api/points/999/tokens")]:
        assert await error(await api.client.request(method, path, headers=admin)) == (404, "point_not_found")
    assert await error(await api.client.get("/api/points/x1", headers=admin)) == (400, "invalid_path")
    resp = await api.client.post("/api/points/1/tokens", json={"label": 5}, headers=admin)
    assert resp.status in (400, 404)


async def test_roles_on_the_registry(api: Api) -> None:
    chair = api.bearer(await api.user("chutri", "chair"))
    secretary = api.bearer(await api.user("thuky", "secretary"))
    delegate = api.bearer(await api.user("daibieu", "delegate"))
    api.client.session.cookie_jar.clear()
    for who in (chair, secretary):
        assert (await api.client.get("/api/points", headers=who)).status == 200
        assert (await api.client.get("/api/points/tree", headers=who)).status == 200
        resp = await api.client.post("/api/points", json={"code": "08", "name": "X", "level": "province"}, headers=who)
        assert await error(resp) == (403, "forbidden")
        resp = await api.client.post("/api/points/import", data=upload(b"code,name,level\n08,X,province\n"),
                                     headers=who)
        assert await error(resp) == (403, "forbidden")
    assert await error(await api.client.get("/api/points", headers=delegate)) == (403, "forbidden")
    assert (await api.client.get("/api/points")).status == 401
    assert await registry_rows(api) == []
