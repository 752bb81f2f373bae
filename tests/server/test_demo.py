"""Demo seeding (``diemcau serve --demo``): realistic, idempotent, passwords printed once."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from datetime import UTC
from pathlib import Path

import pytest
import sqlalchemy as sa

from meetings.models import MeetingState, PointLevel
from meetings.store.tables import meetings, point_tokens, users
from server.demo import DEMO_ACCOUNTS, demo_password, next_meeting_start, seed_demo
from server.services import Services
from tests.conftest import REPO

URL = "http://127.0.0.1:8080"


async def counts(services: Services) -> dict[str, int]:
    async with services.db.connect() as conn:
        return {
            "users": await conn.scalar(sa.select(sa.func.count()).select_from(users)),
            "meetings": await conn.scalar(sa.select(sa.func.count()).select_from(meetings)),
            "tokens": await conn.scalar(sa.select(sa.func.count()).select_from(point_tokens)),
            "points": len(await services.registry.list()),
        }


async def test_seed_twice_creates_once(services: Services) -> None:
    first = await seed_demo(services)
    after_first = await counts(services)
    second = await seed_demo(services)
    assert await counts(services) == after_first
    assert after_first == {"users": len(DEMO_ACCOUNTS), "meetings": 1, "tokens": 1, "points": 16}
    assert first.created_anything and not second.created_anything
    assert (first.meeting_id, first.invited) == (second.meeting_id, second.invited) == (first.meeting_id, 16)
    assert all(a.password for a in first.accounts) and not any(a.password for a in second.accounts)
    assert first.device_token and first.device_token.startswith("dcp_") and second.device_token is None
    assert first.join_links and not second.join_links


async def test_demo_province_shape(services: Services) -> None:
    await seed_demo(services)
    points = await services.registry.list()
    levels = [p.level for p in points]
    assert (levels.count(PointLevel.PROVINCE), levels.count(PointLevel.DISTRICT),
            levels.count(PointLevel.COMMUNE)) == (1, 3, 12)
    roots = await services.registry.tree()
    assert len(roots) == 1 and roots[0].point.name == "UBND tỉnh Tuyên Quang"
    assert all(len(d.children) == 4 for d in roots[0].children)
    meeting = (await services.calendar.list())[0]
    assert meeting.state is MeetingState.SCHEDULED
    assert meeting.title.startswith("Hội nghị trực tuyến sơ kết công tác chuyển đổi số 6 tháng đầu năm")
    assert meeting.host_point_id == roots[0].point.id
    chair = await services.accounts.get(meeting.chair_id or 0)
    assert chair.username == "chutri"


async def test_report_explains_how_to_log_in_and_passwords_work(services: Services) -> None:
    report = await seed_demo(services)
    text = report.render(URL + "/")
    assert f"open {URL}/ in a browser" in text
    assert "/api/auth/login" in text
    for account in report.accounts:
        assert re.search(rf"{account.role}\s+{re.escape(account.username)}\s+{account.password}", text)
        assert (await services.accounts.authenticate(account.username, account.password or "")).username
    assert f"{URL}/join/dci_" in text
    assert f"diemcau bridge --url {URL} --token {report.device_token}" in text
    async with services.db.connect() as conn:
        hashes = list((await conn.execute(sa.select(users.c.password_hash))).scalars())
    assert all(h.startswith("scrypt$") for h in hashes)
    assert not any(a.password in h for a in report.accounts for h in hashes if a.password)
    again = (await seed_demo(services)).render(URL)
    assert "already exists" in again and "users set-password" in again
    assert "dcp_" not in again and "dci_" not in again


def test_demo_helpers() -> None:
    password = demo_password()
    assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", password)
    from datetime import datetime

    friday_evening = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 22:00 Friday in Vietnam
    start = next_meeting_start(friday_evening)
    assert (start.weekday(), start.hour, start.utcoffset().total_seconds()) == (0, 8, 7 * 3600)  # type: ignore[union-attr]


@pytest.mark.slow
def test_serve_demo_prints_logins_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIEMCAU_")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--demo", "--port", "0",
                             "--data-dir", str(tmp_path / "data")], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "diemcau listening on" in line:
                break
        output = "".join(lines)
        assert "DEMO accounts" in output and "chutri" in output, output
        assert "diemcau bridge --url http://127.0.0.1:" in output
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""


async def test_demo_meeting_has_a_published_agenda_and_vietnamese_documents(services: Services) -> None:
    first = await seed_demo(services)
    second = await seed_demo(services)
    assert (first.agenda_items, first.documents) == (second.agenda_items, second.documents) == (5, 3)
    agenda = await services.agenda.get(first.meeting_id)
    assert agenda.published and agenda.items[0].title.startswith("Khai mạc")
    docs = await services.library.list(first.meeting_id)
    assert [d.visibility for d in docs] == ["all", "all", "restricted"]
    assert all(d.agenda_item_id is not None for d in docs)
    from meetings.library_search import search_meeting

    hits = await search_meeting(services.db, first.meeting_id, "tuyen quang", document_ids=[d.id for d in docs])
    start, end = hits[0].highlight
    assert hits[0].snippet[start:end].lower() == "tuyên quang"
    assert "3 Vietnamese PDFs" in second.render("http://127.0.0.1:8080")
