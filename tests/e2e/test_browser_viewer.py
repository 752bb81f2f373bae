"""The paperless meeting in a real Chromium against a real server: upload through the form with
progress, presenter follow between two browsers, private and shared annotations, search without
diacritics, and how the viewer looks on a hall PC (1280x800) and a tablet."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from meetings.calendar import InviteSelection, MeetingDraft
from meetings.clock import utcnow
from meetings.library import DocumentDraft
from meetings.models import Principal
from tests.conftest import PASSWORD
from tests.data.make_pdfs import SamplePdfs, agenda_pdf
from tests.e2e.test_browser_pages import log_in, watch_errors
from tests.fixtures.browser import LiveServer, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TITLE = "Hội nghị trực tuyến sơ kết chuyển đổi số cấp xã"
HALL_PC = {"width": 1280, "height": 800}
TABLET = {"width": 820, "height": 1180}


@dataclass
class Seeded:
    meeting_id: int

    def url(self, server: LiveServer) -> str:
        return f"{server.url}/meetings/{self.meeting_id}"


def seed(server: LiveServer) -> Seeded:
    s = server.services

    async def run() -> Seeded:
        await s.registry.create("T17", "Tỉnh Hòa Bình", "province")
        await s.registry.create("H1701", "Huyện Tân Lạc", "district", "T17")
        await s.registry.create("X170101", "Xã Đông Lai", "commune", "H1701")
        await s.registry.create("X170102", "Xã Thanh Hối", "commune", "H1701")
        await s.accounts.create_user("chutri", PASSWORD, "chair", display_name="Nguyễn Văn Hùng")
        await s.accounts.create_user("thuky", PASSWORD, "secretary", display_name="Trần Thị Lan")
        await s.accounts.create_user("daibieu", PASSWORD, "delegate", display_name="Bùi Văn Đức",
                                     point_code="X170101")
        meeting = await s.calendar.create(MeetingDraft(
            title=TITLE, starts_at=utcnow() + timedelta(minutes=5), ends_at=utcnow() + timedelta(hours=3),
            host_point_code="T17", chair_username="chutri", secretary_username="thuky"), created_by=None)
        await s.calendar.invite(meeting.id, InviteSelection(under="H1701"))
        return Seeded(meeting.id)

    return server.call(run())


def add_document(server: LiveServer, meeting_id: int, pdf: Path, title: str, *, rendered: bool = True) -> int:
    """A document uploaded by the secretary through the library service (by default once all its
    pages are rendered)."""
    s = server.services

    async def run() -> int:
        data = pdf.read_bytes()

        async def chunks() -> Any:
            yield data

        stored = await s.files.put_stream(chunks(), max_bytes=len(data) + 1)
        secretary = await s.accounts.by_username("thuky")
        document = await s.library.add(meeting_id, stored, pdf.name, DocumentDraft(title=title),
                                       Principal(kind="user", user=secretary))
        return int(document.id)

    document_id = server.call(run())
    if not rendered:
        return document_id
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        document = server.call(s.library.get(document_id))
        version = document.versions[-1]
        if s.library.rendered_pages(version) >= version.page_count:
            return document_id
        time.sleep(0.2)
    raise AssertionError("the document was not rendered in time")


def open_viewer(page: Any, server: LiveServer, seeded: Seeded, document_id: int) -> None:
    page.goto(f"{seeded.url(server)}/documents/{document_id}")
    page.wait_for_selector('#viewer[data-state="ready"]')
    page.wait_for_selector('#conn-status[data-state="live"]')


def current_page(page: Any) -> int:
    return int(page.input_value("#page-input"))


def drag(page: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Drag across the page image; positions are fractions of the shown page."""
    box = page.locator("#page-img").bounding_box()
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    for step in range(1, 6):
        t = step / 5
        page.mouse.move(box["x"] + box["width"] * (start[0] + (end[0] - start[0]) * t),
                        box["y"] + box["height"] * (start[1] + (end[1] - start[1]) * t))
    page.mouse.up()


def choose_tool(page: Any, tool: str) -> None:
    page.click(f"#tool-choice label:has(input[value={tool}])")


RECORD_TEXTS = """() => {
  window.__seen = [];
  const note = () => {
    for (const el of document.querySelectorAll('#upload-progress-text, .doc-status-text')) {
      if (el.textContent && window.__seen[window.__seen.length - 1] !== el.textContent) window.__seen.push(el.textContent);
    }
  };
  new MutationObserver(note).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def test_upload_then_view_and_search(live_server: LiveServer, page: Any, browser_context: Any, tmp_path: Path,
                                     sample_pdfs: SamplePdfs) -> None:
    seeded = seed(live_server)
    errors = watch_errors(page)
    log_in(page, live_server, "thuky")
    page.wait_for_url(f"{live_server.url}/meetings")
    page.goto(seeded.url(live_server))
    page.wait_for_selector('#conn-status[data-state="live"]')

    # The agenda: two items, published, one under discussion.
    page.click("#agenda-add summary")
    for title in ("Khai mạc hội nghị", "Báo cáo kết quả chuyển đổi số năm 2026"):
        page.fill("#ag-title", title)
        page.fill("#ag-presenter", "Trần Thị Lan")
        page.click("#agenda-form button[type=submit]")
        page.wait_for_selector(f".agenda-title:text-is('{title}')")
    # Reorder (the second item up and back down) and edit an item in place.
    page.click(".agenda-item:has-text('Báo cáo kết quả') button[data-action=up]")
    page.wait_for_function("() => document.querySelector('.agenda-title').textContent.startsWith('Báo cáo')")
    page.click(".agenda-item:has-text('Báo cáo kết quả') button[data-action=down]")
    page.wait_for_function("() => document.querySelector('.agenda-title').textContent === 'Khai mạc hội nghị'")
    page.click(".agenda-item:has-text('Khai mạc') button[data-action=edit]")
    page.fill("form.agenda-edit input[name=title]", "Khai mạc, giới thiệu đại biểu")
    page.fill("form.agenda-edit input[name=duration_min]", "10")
    page.click("form.agenda-edit button[type=submit]")
    page.wait_for_selector(".agenda-title:text-is('Khai mạc, giới thiệu đại biểu')")
    assert "10 phút" in page.inner_text(".agenda-item:has-text('Khai mạc')")

    # A delegate sees nothing before publication, then the agenda, and the current item live.
    delegate = browser_context().pages[0]
    log_in(delegate, live_server, "daibieu")
    delegate.wait_for_url(f"{live_server.url}/meetings")
    delegate.goto(seeded.url(live_server))
    delegate.wait_for_selector('#conn-status[data-state="live"]')
    assert delegate.inner_text("#agenda-empty") == "Chương trình họp chưa được công bố."
    page.click("#agenda-publish")
    page.wait_for_selector("#agenda-state:text-is('Đã công bố')")
    delegate.wait_for_selector(".agenda-title:text-is('Báo cáo kết quả chuyển đổi số năm 2026')")
    assert delegate.locator(".agenda-actions").count() == 0
    page.click(".agenda-item:has-text('Báo cáo kết quả') button[data-action=current]")
    page.wait_for_selector("#agenda-now:not([hidden])")
    assert page.inner_text("#agenda-now-title") == "2. Báo cáo kết quả chuyển đổi số năm 2026"
    delegate.wait_for_selector("#agenda-now:not([hidden])")
    assert delegate.inner_text("#agenda-now-title") == "2. Báo cáo kết quả chuyển đổi số năm 2026"
    assert delegate.locator('.agenda-item[data-current="true"]').count() == 1

    # The limits are shown before any upload.
    page.click("#upload summary")
    page.wait_for_function("() => document.querySelector('#upload-limits').textContent.startsWith('Chỉ nhận tệp PDF')")
    assert re.search(r"tối đa [\d,.]+ MB và \d+ trang", page.inner_text("#upload-limits"))

    # A picture renamed .pdf: refused with the translated message, nothing listed.
    page.set_input_files("#up-file", str(sample_pdfs.png_renamed))
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-error:not([hidden])")
    assert page.inner_text("#upload-error") == "Tệp không phải là tài liệu PDF."
    page.set_input_files("#up-file", str(sample_pdfs.encrypted))
    page.click("#upload-form button[type=submit]")
    page.wait_for_function("() => document.querySelector('#upload-error').textContent.includes('mật khẩu')")

    # A real 30-page pack: upload progress, then rendering progress, then ready.
    pdf = tmp_path / "bao-cao-chuyen-doi-so.pdf"
    agenda_pdf(pdf, 30)
    page.evaluate(RECORD_TEXTS)
    page.set_input_files("#up-file", str(pdf))
    page.fill("#up-title", "Báo cáo chuyển đổi số 2026")
    page.select_option("#up-agenda", label="2. Báo cáo kết quả chuyển đổi số năm 2026")
    page.click("#upload-form button[type=submit]")
    page.wait_for_selector("#upload-ok:not([hidden])")
    assert "Báo cáo chuyển đổi số 2026" in page.inner_text("#upload-ok")
    item = page.locator(".doc-item", has_text="Báo cáo chuyển đổi số 2026")
    item.wait_for()
    page.wait_for_selector('.doc-item[data-ready="true"]', timeout=60_000)
    seen = page.evaluate("window.__seen")
    assert any(t.startswith(("Đang tải lên", "Đã tải lên")) for t in seen), seen
    assert "Sẵn sàng" in item.inner_text()
    assert "30 trang · phiên bản 1" in item.inner_text()
    # The agenda item now lists its document.
    page.wait_for_selector(".agenda-docs a:text-is('Báo cáo chuyển đổi số 2026')")
    # The delegate's list shows it too, live.
    delegate.wait_for_selector(".doc-item[data-ready=true]:has-text('Báo cáo chuyển đổi số 2026')")
    delegate.wait_for_selector(".agenda-docs a:text-is('Báo cáo chuyển đổi số 2026')")
    assert delegate.locator("#upload-form").count() == 0
    screenshot(delegate, "paperless-meeting-delegate-vi")
    screenshot(page, "paperless-meeting-vi")

    # The viewer on a hall PC screen.
    page.set_viewport_size(HALL_PC)
    item.locator("a.doc-title").click()
    page.wait_for_selector('#viewer[data-state="ready"]')
    assert page.inner_text("#page-count") == "30"
    assert page.locator("#thumbs .thumb").count() == 30
    assert page.locator("#thumbs img[loading=lazy]").count() == 30
    # Only a few thumbnails are fetched at first (lazy), not all thirty.
    thumbs_loaded = page.evaluate("performance.getEntriesByType('resource').filter(e => e.name.includes('/thumb')).length")
    assert thumbs_loaded < 30, thumbs_loaded

    # Search without diacritics finds the Vietnamese phrase; a hit opens its page.
    page.fill("#search-q", "ha tang ky thuat so")
    page.click("#search-form button[type=submit]")
    page.wait_for_selector("#search-hits li")
    marks = page.locator("#search-hits mark").all_inner_texts()
    assert marks and all(m.lower() == "hạ tầng kỹ thuật số" for m in marks), marks
    hits = page.locator("#search-hits a.hit")
    target = next(i for i in range(hits.count()) if hits.nth(i).get_attribute("data-page") != "1")
    wanted = int(hits.nth(target).get_attribute("data-page"))
    hits.nth(target).click()
    page.wait_for_function(f"() => document.querySelector('#page-input').value === '{wanted}'")
    assert f"/pages/{wanted}/view" in page.get_attribute("#page-img", "src")
    page.wait_for_function("() => document.querySelector('#page-img').complete && document.querySelector('#page-img').naturalWidth > 0")
    screenshot(page, "viewer-hall-pc-vi", full_page=False)

    # Zoom in and back to the whole page.
    page.click("#zoom-in")
    assert page.inner_text("#zoom-level") == "125%"
    page.click("#zoom-fit")
    assert page.inner_text("#zoom-level") == "100%"
    # Keyboard paging.
    page.click("#stage")
    page.keyboard.press("ArrowRight")
    assert current_page(page) == min(30, wanted + 1)
    assert [e for e in errors if "400" not in e and "422" not in e] == []  # the refused uploads answer 4xx


def test_follow_the_presenter_and_annotations(live_server: LiveServer, browser_context: Any,
                                              sample_pdfs: SamplePdfs, tmp_path: Path) -> None:
    seeded = seed(live_server)
    document_id = add_document(live_server, seeded.meeting_id, sample_pdfs.agenda, "Chương trình hội nghị")
    presenter = browser_context(viewport=HALL_PC).pages[0]
    delegate = browser_context(viewport=HALL_PC).pages[0]
    presenter_errors, delegate_errors = watch_errors(presenter), watch_errors(delegate)
    log_in(presenter, live_server, "thuky")
    presenter.wait_for_url(f"{live_server.url}/meetings")
    log_in(delegate, live_server, "daibieu")
    delegate.wait_for_url(f"{live_server.url}/meetings")
    open_viewer(presenter, live_server, seeded, document_id)
    delegate.goto(seeded.url(live_server))
    delegate.wait_for_selector('#conn-status[data-state="live"]')

    # The secretary presents; the meeting page offers to follow; the viewer follows page turns live.
    presenter.click("#present-btn")
    presenter.wait_for_selector('#present-btn[aria-pressed="true"]')
    presenter.click("#next-page")
    delegate.wait_for_selector("#presenting-now:not([hidden])")
    assert delegate.inner_text("#presenting-now-text") == "Trần Thị Lan đang trình bày “Chương trình hội nghị”."
    delegate.click("#presenting-now-link")
    delegate.wait_for_selector('#viewer[data-state="ready"]')
    delegate.wait_for_selector('#conn-status[data-state="live"]')
    delegate.wait_for_function("() => document.querySelector('#page-input').value === '2'")
    presenter.click("#next-page")
    delegate.wait_for_function("() => document.querySelector('#page-input').value === '3'")
    assert "/pages/3/view" in delegate.get_attribute("#page-img", "src")
    delegate.wait_for_selector('#follow-state[data-state="following"]')
    assert delegate.inner_text("#follow-state") == "Đang theo Trần Thị Lan"
    assert delegate.is_hidden("#follow-btn")

    # The delegate browses away: following stops, and the presenter sees it.
    delegate.click('.thumb[data-page="5"]')
    delegate.wait_for_selector('#follow-state[data-state="free"]')
    assert current_page(delegate) == 5
    assert delegate.inner_text("#follow-btn") == "Theo người trình bày"
    presenter.wait_for_selector("#not-following li:has-text('Bùi Văn Đức')")
    assert presenter.inner_text("#not-following-count") == "1"
    presenter.click("#next-page")  # the presenter goes on; the free delegate stays
    time.sleep(0.5)
    assert current_page(delegate) == 5

    # One click back to where the presenter is.
    delegate.click("#follow-btn")
    delegate.wait_for_function("() => document.querySelector('#page-input').value === '4'")
    delegate.wait_for_selector('#follow-state[data-state="following"]')
    presenter.wait_for_selector("#all-following:not([hidden])")
    assert presenter.locator("#not-following li").count() == 0

    # The presenter's zoom (the part of the page on screen) is followed too.
    presenter.click("#zoom-in")
    presenter.click("#zoom-in")
    assert presenter.inner_text("#zoom-level") == "150%"
    delegate.wait_for_function("() => document.querySelector('#zoom-level').textContent !== '100%'")
    zoom = int(delegate.inner_text("#zoom-level").rstrip("%"))
    assert 130 <= zoom <= 170, zoom
    presenter.click("#zoom-fit")
    delegate.wait_for_function("() => document.querySelector('#zoom-level').textContent === '100%'")

    # A private highlight stays with the delegate.
    choose_tool(delegate, "highlight")
    drag(delegate, (0.15, 0.30), (0.70, 0.36))
    delegate.wait_for_selector('.ann-highlight[data-layer="private"]')
    assert "Riêng" in delegate.inner_text("#note-list")
    choose_tool(delegate, "ink")
    drag(delegate, (0.2, 0.5), (0.5, 0.55))
    delegate.wait_for_selector('.ann-ink[data-layer="private"] polyline')
    mine = delegate.evaluate(f"fetch('/api/documents/{document_id}/versions/1/annotations').then(r => r.json())")
    assert sorted(a["kind"] for a in mine["annotations"]) == ["highlight", "ink"]
    theirs = presenter.evaluate(f"fetch('/api/documents/{document_id}/versions/1/annotations').then(r => r.json())")
    assert theirs["annotations"] == []
    assert presenter.locator(".ann").count() == 0

    # A shared arrow and note from the presenter appear live for the delegate.
    presenter.select_option("#tool-layer", "shared")
    choose_tool(presenter, "arrow")
    drag(presenter, (0.60, 0.60), (0.30, 0.45))
    presenter.wait_for_selector('.ann-arrow[data-layer="shared"]')
    delegate.wait_for_selector('.ann-arrow[data-layer="shared"]')
    choose_tool(presenter, "note")
    box = presenter.locator("#page-img").bounding_box()
    presenter.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.2)
    presenter.fill("#note-text", "Đề nghị các xã bổ sung số liệu quý IV")
    presenter.click("#note-form button[type=submit]")
    delegate.wait_for_selector(".note-sticky:text-is('Đề nghị các xã bổ sung số liệu quý IV')")
    assert delegate.locator('.ann-highlight[data-layer="private"]').count() == 1
    notes = delegate.inner_text("#note-list")
    assert "Chung" in notes and "Trần Thị Lan" in notes
    # Only one's own annotations can be deleted.
    assert delegate.locator('.note-item[data-layer="shared"] button[data-action=delete]').count() == 0
    assert delegate.locator('.note-item[data-layer="private"] button[data-action=delete]').count() == 2
    # The presenter edits the shared note: everyone sees the new text live.
    presenter.click('.note-item[data-layer="shared"]:has-text("quý IV") button[data-action=edit]')
    presenter.fill("#note-text", "Đề nghị các xã bổ sung số liệu quý IV trước ngày 15/12")
    presenter.click("#note-form button[type=submit]")
    delegate.wait_for_selector(".note-sticky:text-is('Đề nghị các xã bổ sung số liệu quý IV trước ngày 15/12')")
    # The delegate deletes their own ink (after confirming).
    delegate.once("dialog", lambda dialog: dialog.accept())
    delegate.click('.note-item[data-layer="private"]:has-text("Bút") button[data-action=delete]')
    delegate.wait_for_selector(".ann-ink", state="detached")
    assert delegate.locator('.note-item[data-layer="private"]').count() == 1
    choose_tool(delegate, "none")
    screenshot(presenter, "viewer-presenter-hall-pc-vi", full_page=False)
    screenshot(delegate, "viewer-delegate-hall-pc-vi", full_page=False)
    delegate.set_viewport_size(TABLET)
    time.sleep(0.3)
    screenshot(delegate, "viewer-delegate-tablet-vi", full_page=False)

    # The export with my notes is a PDF.
    exported = delegate.evaluate(
        "fetch(document.querySelector('#export-link').href).then(async r => [r.status, r.headers.get('content-type'), (await r.arrayBuffer()).byteLength])")
    assert exported[0] == 200 and exported[1] == "application/pdf" and exported[2] > 1000

    # A new version: a viewer browsing freely is told and switches; notes stay on version 1.
    delegate.set_viewport_size(HALL_PC)
    delegate.click('.thumb[data-page="2"]')
    delegate.wait_for_selector('#follow-state[data-state="free"]')
    newer = tmp_path / "chuong-trinh-v2.pdf"
    agenda_pdf(newer, 7)
    presenter.set_input_files("#replace-file", str(newer))
    presenter.click("#replace-form button[type=submit]")
    presenter.wait_for_function("() => document.querySelector('#page-count').textContent === '7'")
    assert presenter.input_value("#version-select") == "2"
    delegate.wait_for_selector("#version-notice:not([hidden])")
    assert "phiên bản 2" in delegate.inner_text("#version-notice-text")
    assert current_page(delegate) == 2 and delegate.locator(".ann").count() == 0
    delegate.click('.thumb[data-page="4"]')
    assert delegate.locator(".ann-highlight").count() == 1  # still on version 1, page 4
    screenshot(delegate, "viewer-new-version-vi", full_page=False)
    delegate.click("#version-switch")
    delegate.wait_for_selector("#version-notice", state="hidden")
    assert delegate.input_value("#version-select") == "2"
    assert "/versions/2/pages/4/view" in delegate.get_attribute("#page-img", "src")
    assert delegate.locator(".ann").count() == 0
    # Back to the presenter in one click: version 2, the presenter's page.
    delegate.click("#follow-btn")
    delegate.wait_for_selector('#follow-state[data-state="following"]')
    delegate.wait_for_function(f"() => document.querySelector('#page-input').value === '{current_page(presenter)}'")
    assert "/versions/2/" in delegate.get_attribute("#page-img", "src")
    assert presenter_errors == [] and delegate_errors == []


def test_a_long_document_stays_usable(live_server: LiveServer, page: Any, tmp_path: Path) -> None:
    """220 pages, opened while its pages are still being rendered: the strip holds every page but
    fetches only the visible thumbnails; a far page opens at once and the next one is prefetched."""
    seeded = seed(live_server)
    pdf = tmp_path / "ho-so-220-trang.pdf"
    agenda_pdf(pdf, 220)
    document_id = add_document(live_server, seeded.meeting_id, pdf, "Hồ sơ 220 trang", rendered=False)
    errors = watch_errors(page)
    page.set_viewport_size(HALL_PC)
    log_in(page, live_server, "daibieu")
    page.wait_for_url(f"{live_server.url}/meetings")
    started = time.monotonic()
    open_viewer(page, live_server, seeded, document_id)
    ready_s = time.monotonic() - started
    assert page.locator("#thumbs .thumb").count() == 220
    thumbs = page.evaluate("() => performance.getEntriesByType('resource').filter(e => e.name.includes('/thumb')).length")
    assert thumbs <= 20, thumbs
    started = time.monotonic()
    page.fill("#page-input", "200")
    page.press("#page-input", "Enter")
    page.wait_for_function("() => { const i = document.querySelector('#page-img');"
                           " return i.src.includes('/pages/200/view') && i.complete && i.naturalWidth > 0; }")
    jump_s = time.monotonic() - started
    assert page.locator('.thumb[data-page="200"][aria-current="page"]').is_visible()
    page.wait_for_function("() => performance.getEntriesByType('resource').some(e => e.name.includes('/pages/201/view'))"
                           " || document.querySelector('#page-pending').hidden === false")
    started = time.monotonic()
    page.click("#prev-page")
    page.wait_for_function("() => { const i = document.querySelector('#page-img');"
                           " return i.src.includes('/pages/199/view') && i.complete && i.naturalWidth > 0; }")
    turn_s = time.monotonic() - started
    screenshot(page, "viewer-220-pages-vi", full_page=False)
    print(f"\n220 pages: viewer ready {ready_s:.2f}s, {thumbs} thumbnails fetched, "
          f"jump to page 200 {jump_s:.2f}s, page turn {turn_s:.2f}s")
    assert jump_s < 15 and turn_s < 15
    # The strip follows the rendering live; let it finish (a server shutdown waits for it).
    started = time.monotonic()
    page.wait_for_function("() => document.querySelector('#page-pending').hidden", timeout=120_000)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        document = live_server.call(live_server.services.library.get(document_id))
        if live_server.services.library.rendered_pages(document.versions[-1]) >= 220:
            break
        time.sleep(0.5)
    print(f"rendering finished {time.monotonic() - started:.1f}s after the checks")
    assert errors == []
