"""The per-sink rewrite, keyframe gating, NACK/RTX and codec parsing, driven with real
encoder output and checked with aiortc's own RTP parser (no network)."""

from __future__ import annotations

import asyncio
import fractions
import itertools
import struct

import av
import numpy as np
import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from media import CodecSpec, MediaError, Sink, Source, StreamParams, make_packet
from media.history import PacketHistory

VP8 = CodecSpec("video", "VP8", 90000)
H264 = CodecSpec("video", "H264", 90000, "1", "42e0")
OPUS = CodecSpec("audio", "OPUS", 48000)


def frames(n: int) -> list[av.VideoFrame]:
    out = []
    for i in range(n):
        img = np.full((240, 320, 3), 40 + 20 * i, np.uint8)
        f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
        f.pts = i * 3000
        f.time_base = fractions.Fraction(1, 90000)
        out.append(f)
    return out


class RecordingOutput:
    """A StreamOutput that keeps what the sink wrote."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.reports: list[tuple[int, int, int, int]] = []
        self.accept = True

    def write_rtp(self, data: bytes) -> bool:
        if self.accept:
            self.packets.append(data)
        return self.accept

    def report(self, ntp_time: int, rtp_timestamp: int, packets: int, octets: int) -> None:
        self.reports.append((ntp_time, rtp_timestamp, packets, octets))


def ext_map() -> HeaderExtensionsMap:
    m = HeaderExtensionsMap()
    m.configure(RTCRtpParameters(headerExtensions=[
        RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
        RTCRtpHeaderExtensionParameters(
            id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"),
        RTCRtpHeaderExtensionParameters(id=2, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
    ]))
    return m


def vp8_payload(pid: int, key: bool, start: bool = True) -> bytes:
    descriptor = bytes([0x90 if start else 0x80, 0x80]) + struct.pack("!H", 0x8000 | pid)
    return descriptor + (bytes([0x00 if key else 0x01]) if start else b"") + b"data" * 10


def video_params() -> StreamParams:
    return StreamParams(kind="video", ssrc=1111, codecs=((VP8, 96),), rtx=((96, 97),),
                        rtx_ssrc=2222, mid="3", mid_ext_id=1, abs_send_time_ext_id=3)


class Requests:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


async def test_vp8_keyframes_detected_on_real_encoder_output() -> None:
    enc = Vp8Encoder()
    f = frames(3)
    key, _ = enc.encode(f[0])
    delta, _ = enc.encode(f[1])
    forced, _ = enc.encode(f[2], force_keyframe=True)
    first = make_packet(VP8, 1, 0, False, key[0])
    assert first.keyframe
    assert first.vp8 is not None
    assert first.vp8.picture_id == VpxPayloadDescriptor.parse(key[0])[0].picture_id
    assert not make_packet(VP8, 2, 0, False, delta[0]).keyframe
    assert make_packet(VP8, 3, 0, False, forced[0]).keyframe
    for p in key[1:]:
        assert not make_packet(VP8, 4, 0, False, p).keyframe


async def test_h264_keyframes_detected_on_real_encoder_output() -> None:
    enc = H264Encoder()
    f = frames(2)
    key, _ = enc.encode(f[0])
    delta, _ = enc.encode(f[1])
    assert make_packet(H264, 1, 0, False, key[0]).keyframe
    assert not any(make_packet(H264, 2, 0, False, p).keyframe for p in delta)


async def test_sink_starts_at_keyframe_and_stays_continuous_across_switch() -> None:
    req_a, req_b = Requests(), Requests()
    a = Source("a", "pa", VP8, request_keyframe=req_a, min_keyframe_interval=0.0)
    b = Source("b", "pb", VP8, request_keyframe=req_b, min_keyframe_interval=0.0)
    out = RecordingOutput()
    sink = Sink(video_params(), out)
    sink.attach(a)
    sink.set_ready()
    assert req_a.count == 1  # asked as soon as the stream could send
    # delta frames before the first keyframe are not sent
    a.push(make_packet(VP8, 100, 9000, True, vp8_payload(10, key=False)))
    assert out.packets == []
    for i, key in enumerate([True, False, False]):
        a.push(make_packet(VP8, 101 + i, 12000 + 3000 * i, True, vp8_payload(11 + i, key)))
    # switch: A keeps flowing until B's keyframe
    sink.attach(b)
    assert req_b.count == 1
    b.push(make_packet(VP8, 50000, 777, True, vp8_payload(30000, key=False)))
    a.push(make_packet(VP8, 104, 21000, True, vp8_payload(14, key=False)))
    b.push(make_packet(VP8, 50001, 3777, True, vp8_payload(30001, key=True)))
    b.push(make_packet(VP8, 50002, 6777, True, vp8_payload(30002, key=False)))
    a.push(make_packet(VP8, 105, 24000, True, vp8_payload(15, key=False)))  # detached: dropped
    assert sink.source is b and sink.stats.switches == 1
    parsed = [RtpPacket.parse(p, ext_map()) for p in out.packets]
    assert len(parsed) == 6
    seqs = [p.sequence_number for p in parsed]
    assert all((s2 - s1) & 0xFFFF == 1 for s1, s2 in itertools.pairwise(seqs))
    assert {p.ssrc for p in parsed} == {1111} and {p.payload_type for p in parsed} == {96}
    ts = [p.timestamp for p in parsed]
    assert all(0 < (t2 - t1) & 0xFFFFFFFF < 90000 for t1, t2 in itertools.pairwise(ts))
    pids = [VpxPayloadDescriptor.parse(p.payload)[0].picture_id or 0 for p in parsed]
    assert all((p2 - p1) & 0x7FFF == 1 for p1, p2 in itertools.pairwise(pids))
    assert {p.extensions.mid for p in parsed} == {"3"}
    assert all(p.extensions.abs_send_time is not None for p in parsed)
    # the payload after the descriptor is untouched
    assert parsed[-1].payload[5:] == vp8_payload(30002, key=False)[5:]


async def test_nack_retransmits_as_rtx_and_missing_history_asks_keyframe() -> None:
    req = Requests()
    src = Source("a", "pa", VP8, request_keyframe=req, min_keyframe_interval=0.0)
    out = RecordingOutput()
    sink = Sink(video_params(), out, history_size=16)
    sink.attach(src)
    sink.set_ready()
    for i in range(20):
        src.push(make_packet(VP8, 500 + i, 3000 * i, True, vp8_payload(i, key=i == 0)))
    sent = [RtpPacket.parse(p, ext_map()) for p in out.packets]
    asked = req.count
    sink.on_nack([sent[-1].sequence_number, sent[-2].sequence_number])
    rtx = [RtpPacket.parse(p, ext_map()) for p in out.packets[20:]]
    assert [p.payload_type for p in rtx] == [97, 97] and {p.ssrc for p in rtx} == {2222}
    assert struct.unpack("!H", rtx[0].payload[:2])[0] == sent[-1].sequence_number
    assert rtx[0].payload[2:] == sent[-1].payload and rtx[0].timestamp == sent[-1].timestamp
    assert (rtx[1].sequence_number - rtx[0].sequence_number) & 0xFFFF == 1
    # a duplicate NACK right away is not served twice
    sink.on_nack([sent[-1].sequence_number])
    assert len(out.packets) == 22
    # the first packets fell out of the 16-packet history: a keyframe is requested instead
    sink.on_nack([sent[0].sequence_number])
    assert sink.stats.retransmit_misses == 1 and req.count == asked + 1


async def test_sink_refuses_wrong_kind_and_codec() -> None:
    sink = Sink(video_params(), RecordingOutput())
    with pytest.raises(MediaError) as e:
        sink.attach(Source("o", "p", OPUS))
    assert e.value.code == "kind_mismatch"
    with pytest.raises(MediaError) as e:
        sink.attach(Source("h", "p", H264))
    assert e.value.code == "codec_mismatch"


async def test_audio_sink_forwards_level_and_needs_no_keyframe() -> None:
    params = StreamParams(kind="audio", ssrc=5, codecs=((OPUS, 111),), mid="1", mid_ext_id=1,
                          audio_level_ext_id=2)
    out = RecordingOutput()
    src = Source("o", "p", OPUS)
    sink = Sink(params, out)
    sink.attach(src)
    sink.set_ready()
    src.push(make_packet(OPUS, 9, 960, True, b"\xfc\xff\xfe", audio_level=0x80 | 30))
    (p,) = [RtpPacket.parse(d, ext_map()) for d in out.packets]
    assert p.payload == b"\xfc\xff\xfe" and p.payload_type == 111
    assert p.extensions.audio_level == (True, 30)
    assert sink.history_len == 0  # no NACK for audio: no history kept


async def test_failing_sink_never_breaks_the_source() -> None:
    class Broken(RecordingOutput):
        def write_rtp(self, data: bytes) -> bool:
            raise ConnectionError("gone")

    events: list[str] = []
    src = Source("a", "pa", VP8)
    good_out = RecordingOutput()
    bad = Sink(video_params(), Broken(), listener=lambda s, e, so: events.append(e))
    good = Sink(video_params(), good_out)
    for s in (bad, good):
        s.attach(src)
        s.set_ready()
    for i in range(3):
        src.push(make_packet(VP8, i, 3000 * i, True, vp8_payload(i, key=i == 0)))
    assert len(good_out.packets) == 3
    assert events == ["failed"] and bad.closed and src.sinks == (good,)


def test_history_is_bounded_and_budgeted() -> None:
    h = PacketHistory(16, retransmits_per_s=3)
    for seq in range(1000):
        h.put(seq, b"h", b"p")
    assert len(h) == 16 and h.get(999) == (b"h", b"p") and h.get(983) is None
    served = [h.get(seq) is not None and h.may_retransmit(seq, min_gap_s=0)
              for seq in range(990, 1000)]
    assert sum(served) == 3  # budget spent


async def test_keyframe_requests_are_rate_limited_and_answered_by_keyframes() -> None:
    req = Requests()
    src = Source("a", "pa", VP8, request_keyframe=req, min_keyframe_interval=0.2)
    for _ in range(10):
        src.request_keyframe()
    assert req.count == 1  # the rest wait for the window to end
    await asyncio.sleep(0.3)
    assert req.count == 2  # one deferred request, not nine
    for _ in range(5):
        src.request_keyframe()
    src.push(make_packet(VP8, 1, 0, True, vp8_payload(1, key=True)))  # answers them
    await asyncio.sleep(0.3)
    assert req.count == 2
    assert src.stats.keyframe_requests == 15 and src.stats.keyframe_requests_sent == 2
    src.close()
    src.close()


async def test_waiting_sink_asks_again_when_the_keyframe_is_lost() -> None:
    req = Requests()
    src = Source("a", "pa", VP8, request_keyframe=req, min_keyframe_interval=0.0)
    out = RecordingOutput()
    sink = Sink(video_params(), out, keyframe_retry_s=0.05)
    sink.attach(src)
    sink.set_ready()
    assert req.count == 1
    # the keyframe's first packet never arrives: only deltas
    for i in range(6):
        await asyncio.sleep(0.03)
        src.push(make_packet(VP8, 10 + i, 3000 * i, True, vp8_payload(i, key=False)))
    assert out.packets == [] and sink.stats.dropped_waiting_keyframe == 6
    assert req.count >= 3  # asked again about every 50 ms of waiting
    src.push(make_packet(VP8, 20, 30000, True, vp8_payload(20, key=True)))
    assert len(out.packets) == 1 and sink.sending


async def test_switching_back_before_the_keyframe_keeps_the_stream_running() -> None:
    a = Source("a", "pa", VP8, min_keyframe_interval=0.0)
    b = Source("b", "pb", VP8, min_keyframe_interval=0.0)
    out = RecordingOutput()
    sink = Sink(video_params(), out)
    sink.attach(a)
    sink.set_ready()
    a.push(make_packet(VP8, 1, 0, True, vp8_payload(1, key=True)))
    sink.attach(b)  # pending until b's keyframe...
    sink.attach(a)  # ...but the chair changed their mind
    assert b.sinks == () and sink.source is a and sink.sending
    a.push(make_packet(VP8, 2, 3000, True, vp8_payload(2, key=False)))
    assert len(out.packets) == 2
    # the old source ending while a switch is pending hands the slot to the new one
    sink.attach(b)
    a.close()
    assert sink.source is b and not sink.sending
    b.push(make_packet(VP8, 70, 100, True, vp8_payload(9, key=True)))
    assert len(out.packets) == 3 and sink.sending
