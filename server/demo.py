"""Demo data for ``diemcau serve --demo`` (dữ liệu mẫu): one province with its districts and
communes, an account per role, a scheduled meeting with every point invited, and a device
token for one commune hall.

Seeding is idempotent: a second run creates nothing and says what already exists. Passwords
are random per data directory and printed once; only their scrypt hashes are stored.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from importlib import resources

from meetings.calendar import InviteSelection, MeetingDraft
from meetings.clock import utcnow
from meetings.models import Meeting, MeetingState, Role
from meetings.point_import import read_yaml

from .services import Services

DEMO_FILE = "tuyen_quang.yaml"
PROVINCE_CODE = "08"
DEVICE_POINT_CODE = "02530"  # UBND xã Tân Trào
LINK_POINT_CODES = ("075", "02437")  # a district and a commune, to try the join links
VIETNAM = timezone(timedelta(hours=7), "ICT")
MEETING_TITLE = "Hội nghị trực tuyến sơ kết công tác chuyển đổi số 6 tháng đầu năm {year}"
MEETING_DESCRIPTION = (
    "Sơ kết kết quả thực hiện nhiệm vụ chuyển đổi số, xây dựng chính quyền điện tử 6 tháng đầu năm; "
    "đánh giá tỷ lệ hồ sơ giải quyết trực tuyến, việc sử dụng chữ ký số chuyên dùng và trao đổi văn bản "
    "điện tử giữa các cơ quan nhà nước; triển khai nhiệm vụ trọng tâm 6 tháng cuối năm.\n"
    "Thành phần: lãnh đạo UBND tỉnh; lãnh đạo các sở, ban, ngành; UBND các huyện, thành phố; "
    "UBND các xã, phường, thị trấn tham dự tại điểm cầu."
)


@dataclass(frozen=True)
class DemoAccountSpec:
    username: str
    role: Role
    display_name: str
    point_code: str | None


DEMO_ACCOUNTS = (
    DemoAccountSpec("quantri", Role.ADMIN, "Quản trị hệ thống", PROVINCE_CODE),
    DemoAccountSpec("chutri", Role.CHAIR, "Phạm Minh Quang — Chủ tịch UBND tỉnh", PROVINCE_CODE),
    DemoAccountSpec("thuky", Role.SECRETARY, "Nguyễn Thị Thu Hà — Văn phòng UBND tỉnh", PROVINCE_CODE),
    DemoAccountSpec("daibieu.yenson", Role.DELEGATE, "Hoàng Văn Hùng — Chủ tịch UBND huyện Yên Sơn", "075"),
    DemoAccountSpec("quansat", Role.OBSERVER, "Trần Thị Lan — Sở Thông tin và Truyền thông", None),
)


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    display_name: str
    password: str | None
    """Shown once, when the account was created by this run; None when it already existed."""


@dataclass(frozen=True)
class DemoLink:
    code: str
    name: str
    token: str


@dataclass(frozen=True)
class DemoReport:
    """What ``seed_demo`` did; ``render(url)`` is what ``diemcau serve --demo`` prints."""

    points_created: int
    points_total: int
    accounts: tuple[DemoAccount, ...]
    meeting_id: int
    meeting_title: str
    meeting_starts_at: datetime
    meeting_created: bool
    invited: int
    join_links: tuple[DemoLink, ...]
    device_code: str
    device_name: str
    device_token: str | None
    agenda_items: int = 0
    """Items of the demo meeting's agenda (chương trình họp)."""
    documents: int = 0
    """Documents of the demo meeting (Vietnamese PDFs generated at seeding)."""

    @property
    def created_anything(self) -> bool:
        return bool(self.points_created or self.meeting_created or self.device_token
                    or any(a.password for a in self.accounts))

    def render(self, url: str) -> str:
        url = url.rstrip("/")
        lines = ["", "=== diemcau demo (dữ liệu mẫu — for trying out only) ==="]
        lines.append(f"Bridge points (điểm cầu): {self.points_total} in the registry"
                     + (f", {self.points_created} added now" if self.points_created else ", none added (already there)"))
        lines.append(f"Log in (đăng nhập): open {url}/ in a browser and use one of these DEMO accounts:")
        lines.append(f"  {'role':<10} {'username':<16} password")
        for a in self.accounts:
            shown = a.password if a.password else "(already exists — set when first created)"
            lines.append(f"  {a.role:<10} {a.username:<16} {shown}")
        if any(a.password for a in self.accounts):
            lines.append("  These passwords are random for this data directory and are shown only now.")
        if any(a.password is None for a in self.accounts):
            lines.append("  Forgot one? diemcau users set-password --username USER --password-stdin [--data-dir DIR]")
        lines.append(f"  API: curl -X POST {url}/api/auth/login -H 'Content-Type: application/json' "
                     "-d '{\"username\": \"chutri\", \"password\": \"…\"}'")
        when = self.meeting_starts_at.astimezone(VIETNAM).strftime("%H:%M %d/%m/%Y (UTC+7)")
        lines.append(f"Meeting #{self.meeting_id}: {self.meeting_title}")
        lines.append(f"  scheduled for {when}; {self.invited} bridge points invited"
                     + ("" if self.meeting_created else " (already seeded)"))
        lines.append(f"  agenda (chương trình họp): {self.agenda_items} items, published; "
                     f"documents (tài liệu): {self.documents} Vietnamese PDFs")
        if self.join_links:
            lines.append("  Join links (one bridge point each, shown once):")
            for link in self.join_links:
                lines.append(f"    {link.code} {link.name}: {url}/join/{link.token}")
        else:
            lines.append(f"  Join links were shown when the meeting was seeded; renew one with "
                         f"POST {url}/api/meetings/{self.meeting_id}/invitations/{{point_id}}/link")
        if self.device_token:
            lines.append(f"Device token of bridge point {self.device_code} {self.device_name} (hall PC; shown once):")
            lines.append(f"  diemcau bridge --url {url} --token {self.device_token}")
        else:
            lines.append(f"Bridge point {self.device_code} {self.device_name} already has a device token; "
                         f"issue another with `diemcau points token {self.device_code}`")
        lines.append("")
        return "\n".join(lines)


def demo_password() -> str:
    """A random, readable password: 3 groups of 4 from an alphabet without look-alikes."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


def next_meeting_start(now: datetime) -> datetime:
    """08:00 Vietnam time on the next working day after ``now``."""
    day = now.astimezone(VIETNAM).date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, time(8, 0), VIETNAM)


async def _seed_points(services: Services) -> tuple[int, int]:
    data = resources.files("server").joinpath("demo_data", DEMO_FILE).read_bytes()
    parsed = read_yaml(data)
    parsed.raise_if_errors()
    existing = {p.code for p in await services.registry.list()}
    missing = [r for r in parsed.rows if r.code not in existing]
    created = 0
    if missing:
        created = (await services.registry.import_rows(missing)).created
    return created, len(existing) + created


async def _seed_accounts(services: Services) -> tuple[DemoAccount, ...]:
    out = []
    for spec in DEMO_ACCOUNTS:
        if await services.accounts.by_username(spec.username) is not None:
            out.append(DemoAccount(spec.username, spec.role.value, spec.display_name, None))
            continue
        password = demo_password()
        while len(password) < services.accounts.password_min_length:
            password += "-" + demo_password()
        await services.accounts.create_user(spec.username, password, spec.role,
                                            display_name=spec.display_name, point_code=spec.point_code)
        out.append(DemoAccount(spec.username, spec.role.value, spec.display_name, password))
    return tuple(out)


async def _seed_meeting(services: Services) -> tuple[Meeting, bool, tuple[DemoLink, ...]]:
    calendar = services.calendar
    for meeting in await calendar.list(query="chuyen doi so 6 thang dau nam"):
        if meeting.title.startswith(MEETING_TITLE.split("{")[0]) and meeting.state is not MeetingState.CLOSED:
            return meeting, False, ()
    starts_at = next_meeting_start(utcnow())
    chair = await services.accounts.by_username("chutri")
    meeting = await calendar.create(MeetingDraft(
        title=MEETING_TITLE.format(year=starts_at.year),
        starts_at=starts_at,
        ends_at=starts_at + timedelta(hours=3, minutes=30),
        description=MEETING_DESCRIPTION,
        host_point_code=PROVINCE_CODE,
        chair_username="chutri",
        secretary_username="thuky",
    ), created_by=chair.id if chair else None)
    result = await calendar.invite(meeting.id, InviteSelection(under=PROVINCE_CODE))
    names = {p.code: p.name for p in result.invited}
    links = tuple(DemoLink(code, names[code], result.links[code]) for code in LINK_POINT_CODES if code in result.links)
    return meeting, True, links


DEMO_AGENDA = (
    ("Khai mạc, giới thiệu thành phần tham dự tại các điểm cầu", "Văn phòng UBND tỉnh", 10),
    ("Báo cáo kết quả xây dựng chính quyền điện tử 6 tháng đầu năm", "Sở Thông tin và Truyền thông", 30),
    ("Thảo luận tại các điểm cầu huyện, xã", "Các huyện, xã", 45),
    ("Kế hoạch chuyển đổi số cấp xã 6 tháng cuối năm", "Sở Thông tin và Truyền thông", 20),
    ("Kết luận của đồng chí Chủ tịch UBND tỉnh", "Chủ tịch UBND tỉnh", 15),
)


async def _seed_papers(services: Services, meeting: Meeting) -> tuple[int, int]:
    """The meeting's agenda (published) and its Vietnamese documents, once."""
    import asyncio

    from meetings.agenda import AgendaItemDraft
    from meetings.documents.samples import SAMPLES, sample_pdf
    from meetings.library import DocumentDraft
    from meetings.library_models import DocumentAccess

    agenda = await services.agenda.get(meeting.id)
    if not agenda.items:
        for title, presenter, minutes in DEMO_AGENDA:
            await services.agenda.create(meeting.id, AgendaItemDraft(title, presenter, minutes))
        agenda = await services.agenda.publish(meeting.id)
    items = agenda.children_of(None)
    existing = await services.library.list(meeting.id)
    if not existing:
        for sample in SAMPLES:
            data = await asyncio.to_thread(sample_pdf, sample)
            stored = services.files.put_bytes(data)
            access = DocumentAccess("restricted", ("chair", "secretary")) if sample.restricted else DocumentAccess()
            item = items[sample.agenda_index].id if sample.agenda_index < len(items) else None
            await services.library.add(meeting.id, stored, f"tai-lieu-{len(existing) + 1}.pdf",
                                       DocumentDraft(sample.title, item, access), None)
            existing = await services.library.list(meeting.id)
    return len(agenda.items), len(existing)


async def seed_demo(services: Services) -> DemoReport:
    """Seed the demo province, accounts, meeting and device token (idempotent)."""
    points_created, points_total = await _seed_points(services)
    accounts = await _seed_accounts(services)
    meeting, meeting_created, links = await _seed_meeting(services)
    invited = len(await services.calendar.invitations(meeting.id))
    agenda_items, documents = await _seed_papers(services, meeting)
    device = await services.registry.by_code(DEVICE_POINT_CODE)
    token = None
    if not any(t.revoked_at is None for t in await services.registry.list_tokens(device.id)):
        token = (await services.registry.issue_token(device.id, label="PC hội trường (demo)")).token
    return DemoReport(
        points_created=points_created,
        points_total=points_total,
        accounts=accounts,
        meeting_id=meeting.id,
        meeting_title=meeting.title,
        meeting_starts_at=meeting.starts_at,
        meeting_created=meeting_created,
        invited=invited,
        agenda_items=agenda_items,
        documents=documents,
        join_links=links,
        device_code=device.code,
        device_name=device.name,
        device_token=token,
    )
