"""Active speaker detection, rendition choice and the ICE host-address setting (no network)."""

from __future__ import annotations

import aioice.ice
import pytest

from media import CodecSpec, MediaConfig, MediaError, Source, make_packet
from media.aiortc_hooks import use_host_addresses
from media.renditions import GRID_PREFERENCE, LinkQuality, pick, preference
from media.speakers import ActiveSpeakers

OPUS = CodecSpec("audio", "OPUS", 48000, 2)


def talk(source: Source, dbov: int, packets: int = 40) -> None:
    for i in range(packets):
        source.push(make_packet(OPUS, i, i * 960, False, b"\x00" * 20, audio_level=dbov))


async def test_active_speakers_rank_with_hysteresis() -> None:
    speakers = ActiveSpeakers(size=2, threshold_db=-55, hysteresis_db=6)
    sources = {name: Source(f"{name}:0", name, OPUS) for name in "abcd"}
    for s in sources.values():
        speakers.track(s)
    talk(sources["a"], 20)
    talk(sources["b"], 30)
    talk(sources["c"], 127)  # digital silence
    assert speakers.update()
    assert speakers.active == ["a:0", "b:0"]
    talk(sources["d"], 27)  # louder than b by 3 dB only: b keeps its place
    speakers.update()
    assert set(speakers.active) == {"a:0", "b:0"}
    talk(sources["d"], 10, 80)  # much louder: replaces the weakest
    assert speakers.update()
    assert set(speakers.active) == {"a:0", "d:0"}
    assert speakers.ranked(exclude={"a:0"}) == ["d:0"]
    sources["d"].close()
    speakers.forget("d:0")
    assert "d:0" not in speakers.active
    speakers.close()
    assert not sources["a"].sinks


async def test_level_summaries_weigh_as_the_packets_they_stand_for() -> None:
    """A link's summary of n packets moves a meter as far as the n packets would; meters are
    level observers, so tracking a source never makes it wanted."""
    from media.speakers import LevelMeter

    one_by_one, summarised = LevelMeter("a"), LevelMeter("b")
    for _ in range(7):
        one_by_one.on_level(30)
    summarised.on_level(30, 7)
    assert abs(one_by_one.level() - summarised.level()) < 1e-9
    speakers = ActiveSpeakers()
    wanted: list[bool] = []
    source = Source("a:0", "a", OPUS)
    source.set_demand_listener(wanted.append)
    speakers.track(source)
    source.feed_level(25, 10)
    assert speakers.level("a:0") > -127 and wanted == [] and not source.sinks
    speakers.close()


def test_remb_throttle_lets_a_falling_estimate_through_soon() -> None:
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpRrPacket, pack_remb_fci

    from media.remb import RembThrottle

    def remb(bps: int) -> RtcpPsfbPacket:
        return RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0,
                              fci=pack_remb_fci(bps, [5]))

    throttle = RembThrottle(interval_s=0.2, urgent_s=0.05, drop=0.03)
    assert throttle.allow(remb(1_000_000), now=10.0)
    assert not throttle.allow(remb(1_000_000), now=10.01)  # per-packet repeats are dropped
    assert not throttle.allow(remb(900_000), now=10.02)    # a fall, but too soon
    assert throttle.allow(remb(900_000), now=10.06)        # a fall > 3 %: after 50 ms
    assert not throttle.allow(remb(890_000), now=10.12)    # a small fall waits the interval
    assert throttle.allow(remb(950_000), now=10.27)
    assert throttle.allow(RtcpRrPacket(ssrc=1), now=10.28)  # other RTCP is never held
    assert throttle.suppressed == 3


def test_rendition_preferences() -> None:
    published = {"camera": "p:0", "camera-low": "p:1"}
    assert pick(published, preference(0)) == ("camera", "p:0")
    assert pick(published, preference(1)) == ("camera-low", "p:1")
    assert pick(published, preference(2)) == ("camera-low", "p:1")  # no thumb: next best
    assert pick(published, GRID_PREFERENCE) == ("camera-low", "p:1")
    assert pick({}, GRID_PREFERENCE) is None


def test_link_quality_steps_down_on_loss_and_recovers_slowly() -> None:
    link = LinkQuality(recover_reports=3, hold_s=2.0)
    assert link.observe(reports=1, fraction_lost=0.2, remb_bps=None, current_bps=300e3,
                        higher_bps=None, now=0.0)
    assert link.level == 1
    assert not link.observe(reports=1, fraction_lost=0.2, remb_bps=None, current_bps=None,
                            higher_bps=None, now=0.1)  # the same report again: ignored
    assert not link.observe(reports=2, fraction_lost=0.3, remb_bps=None, current_bps=None,
                            higher_bps=None, max_level=1, now=0.5)  # nothing lower published
    for n, t in ((3, 1.0), (4, 1.5), (5, 2.6)):
        changed = link.observe(reports=n, fraction_lost=0.0, remb_bps=None, current_bps=None,
                               higher_bps=None, now=t)
    assert changed and link.level == 0
    # REMB far below the bitrate twice in a row is congestion too
    assert not link.observe(reports=6, fraction_lost=0.0, remb_bps=100e3, current_bps=300e3,
                            higher_bps=None, now=3.0)
    assert link.observe(reports=7, fraction_lost=0.0, remb_bps=100e3, current_bps=300e3,
                        higher_bps=None, now=3.5)


def test_host_addresses_setting() -> None:
    original = aioice.ice.get_host_addresses
    restore = use_host_addresses(("127.0.0.1", "::1"))
    try:
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
    finally:
        restore()
    assert aioice.ice.get_host_addresses is original
    use_host_addresses(())()  # empty: nothing patched
    with pytest.raises(MediaError):
        MediaConfig(host_addresses=("not-an-ip",))
