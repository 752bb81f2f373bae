"""The recordings record (meetings/recordings.py) on the real store and bus: one running
recording per meeting, exactly one final status, events for the meeting, audit entries,
leftovers of this node interrupted at start."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meetings.calendar import MeetingDraft, topic
from meetings.errors import Conflict, NotFound
from meetings.models import Principal
from meetings.recordings import Recordings
from server.services import Services


async def test_one_running_recording_and_one_final_status(services: Services) -> None:
    chair = Principal("user", user=await services.accounts.create_user("chutri", "mat-khau-thu-nghiem", "chair"))
    meeting = await services.calendar.create(MeetingDraft(
        "Giao ban", datetime.now(UTC) + timedelta(hours=1), chair_username="chutri"), created_by=None)
    domain = Recordings(services.db, services.bus)
    sub = await services.bus.subscribe(topic(meeting.id))
    try:
        rec = await domain.begin(meeting.id, chair, width=640, height=360, fps=10, node="n1")
        assert rec.running and rec.file_name == f"hop-{meeting.id}-{rec.id}.webm"
        with pytest.raises(Conflict) as info:
            await domain.begin(meeting.id, chair, width=640, height=360, fps=10, node="n1")
        assert info.value.code == "recording_running"
        assert (await domain.running(meeting.id)) == rec
        done = await domain.finish(rec.id, chair, status="completed", reason="stopped", duration_s=3.5,
                                   size_bytes=1234)
        assert (done.status, done.duration_s, done.size_bytes) == ("completed", 3.5, 1234) and done.stopped_at
        with pytest.raises(Conflict) as info:
            await domain.finish(rec.id, chair, status="failed", reason="x")
        assert info.value.code == "recording_not_running"
        with pytest.raises(NotFound):
            await domain.get(999)
        kinds = []
        async for envelope in sub:
            kinds.append((envelope.event["type"], envelope.event["status"]))
            if len(kinds) == 2:
                break
        assert kinds == [("recording.started", "recording"), ("recording.stopped", "completed")]
        # leftovers: only this node's are interrupted
        mine = await domain.begin(meeting.id, chair, width=640, height=360, fps=10, node="n1")
        assert [r.id for r in await domain.interrupt_all("n2")] == []
        assert [r.id for r in await domain.interrupt_all("n1")] == [mine.id]
        assert (await domain.get(mine.id)).status == "interrupted"
        actions = [e.action for e in await services.audit.list(meeting_id=meeting.id)]
        assert actions.count("recording.start") == 2 and actions.count("recording.stop") == 2
    finally:
        await sub.close()
