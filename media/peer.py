"""The server side of one participant's WebRTC connection (điểm cầu / người dự họp): one
aiortc RTCPeerConnection, bundled, whose incoming tracks become :class:`Source` objects and
whose outgoing m-lines become :class:`Sink` slots, all forwarded at the RTP packet level.

Negotiation model: the client offers. Each m-line it sends on (``sendonly``/``sendrecv``)
is published as a source ``"<participant>:<mid>"``; each m-line it receives on
(``recvonly``/``sendrecv``) becomes a slot (an outgoing stream with its own SSRC) that the
room fills with a source and can switch at keyframes without renegotiation.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.codecs import is_rtx
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcpeerconnection import reverse_direction
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

from media import aiortc_hooks as hooks
from media.codecs import CodecSpec
from media.config import MediaConfig
from media.errors import MediaError
from media.inbound import InboundDemux, ext_id
from media.rtp import URI_ABS_SEND_TIME, URI_AUDIO_LEVEL, URI_MID
from media.sdp_guard import validate_offer
from media.sink import Sink
from media.source import Source, ntp_now
from media.stream import StreamParams

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_S = 5.0


class PeerObserver(Protocol):
    """Who owns the peer (the room) hears about its sources, slots and end."""

    def source_added(self, peer: Peer, source: Source) -> None: ...

    def source_removed(self, peer: Peer, source: Source) -> None: ...

    def sink_event(self, peer: Peer, sink: Sink, event: str, source: Source | None) -> None: ...

    def peer_failed(self, peer: Peer) -> None: ...


@dataclass(frozen=True)
class SlotInfo:
    """An outgoing m-line of a participant, as the signalling layer needs to describe it."""

    mid: str
    kind: str
    codecs: tuple[str, ...]
    source_id: str | None


class IdleTrack(MediaStreamTrack):
    """Given to a slot's RTCRtpSender so aiortc's RTP loop waits forever: the forwarder
    writes the packets, the sender only does RTCP."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._never: asyncio.Future[None] | None = None

    async def recv(self) -> Any:
        if self.readyState != "live":
            raise MediaStreamError
        if self._never is None:
            self._never = asyncio.get_running_loop().create_future()
        await self._never
        raise MediaStreamError  # pragma: no cover - the future is never resolved

    def stop(self) -> None:
        if self._never is not None and not self._never.done():
            self._never.cancel()
        super().stop()


class _SenderOutput:
    """StreamOutput over a peer's raw writer, feeding the slot sender's RTCP reports."""

    __slots__ = ("_sender", "report", "write_rtp")

    def __init__(self, writer: hooks.RawWriter, sender: Any) -> None:
        self._sender = sender
        # bound once: both run for every packet sent
        self.write_rtp = writer.write_rtp
        self.report = hooks.sender_report_feeder(sender)


class Peer:
    """One participant's server-side peer connection. Create through :class:`media.Room`."""

    def __init__(self, participant_id: str, config: MediaConfig, observer: PeerObserver) -> None:
        self.participant_id = participant_id
        self.config = config
        self._observer = observer
        servers = [RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                   for s in config.ice_servers]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers,
                                                     bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self._sources: dict[str, Source] = {}
        self._sinks: dict[str, Sink] = {}
        self._demux: InboundDemux | None = None
        self._writer: hooks.RawWriter | None = None
        self._offered: dict[str, str] = {}  # mid -> direction offered (our point of view)
        self._broken = False
        self._trickled = 0
        self._closed = False
        self._close_lock = asyncio.Lock()
        self.pc.on("connectionstatechange", self._on_connection_state)

    # --- introspection ------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def broken(self) -> bool:
        """An offer failed after it was applied: the peer must be removed."""
        return self._broken

    @property
    def connection_state(self) -> str:
        return str(self.pc.connectionState)

    @property
    def sources(self) -> dict[str, Source]:
        """Published sources by mid."""
        return dict(self._sources)

    @property
    def sinks(self) -> dict[str, Sink]:
        """Outgoing slots by mid."""
        return dict(self._sinks)

    def slots(self) -> list[SlotInfo]:
        return [SlotInfo(mid, s.kind, tuple(c.name for c, _ in s.params.codecs),
                         s.source.source_id if s.source else None)
                for mid, s in self._sinks.items()]

    # --- negotiation --------------------------------------------------------------------

    async def accept_offer(self, sdp: str) -> str:
        """Validate the client's offer, apply it and return the SDP answer.

        A later offer (renegotiation) may add m-lines (more slots, more published tracks);
        the existing ones must keep their order and direction. Raises MediaError
        (``invalid_sdp``, ``unsupported_codec``, ... see errors.py); after one raised once
        the offer was applied, the peer is unusable and must be removed."""
        if self._closed:
            raise MediaError("peer_closed", "the peer connection is closed")
        if self._broken or self.pc.signalingState != "stable":
            raise MediaError("invalid_state", "the peer cannot take an offer now")
        validate_offer(sdp, self.config)
        self._check_reoffer(sdp)
        self._broken = True  # until the answer is made
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc raises ValueError, OperationError, KeyError, ...
            raise MediaError("invalid_sdp", f"offer rejected: {exc}"[:300]) from exc
        transceivers = self.pc.getTransceivers()
        for t in transceivers:
            self._restrict_codecs(t)
        if self._demux is None:
            dtls = transceivers[0].receiver.transport
            self._writer = hooks.RawWriter(dtls, self.config.send_buffer_limit_bytes)
            self._demux = InboundDemux(dtls, self._writer)
        new_sources: list[Source] = []
        for t in transceivers:
            mid = str(t.mid)
            if mid in self._offered:
                continue
            offered = t._offerDirection or "inactive"
            self._offered[mid] = offered
            if offered in ("recvonly", "sendrecv"):
                new_sources.append(self._publish(t))
            if offered in ("sendonly", "sendrecv"):
                self._open_slot(t)
                t.direction = "sendrecv" if offered == "sendrecv" else "sendonly"
        try:
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except Exception as exc:
            raise MediaError("invalid_sdp", f"cannot answer the offer: {exc}"[:300]) from exc
        self._broken = False
        for source in new_sources:
            self._observer.source_added(self, source)
        return str(self.pc.localDescription.sdp)

    def _check_reoffer(self, sdp: str) -> None:
        """A renegotiation keeps every known m-line, in order, with the same direction."""
        if not self._offered:
            return
        try:
            description = aiortc_sdp.SessionDescription.parse(sdp)
        except Exception as exc:
            raise MediaError("invalid_sdp", f"unparsable offer: {exc}"[:300]) from exc
        mids = [m.rtp.muxId for m in description.media if m.kind in ("audio", "video")]
        known = list(self._offered)
        if mids[:len(known)] != known:
            raise MediaError("invalid_sdp", "a new offer must keep the existing m-lines first")
        for media in description.media[:len(known)]:
            if reverse_direction(media.direction or "sendrecv") != self._offered[media.rtp.muxId]:
                raise MediaError("invalid_state",
                                 "changing the direction of an m-line is not supported yet")

    async def add_ice_candidate(self, candidate: str | None, sdp_mid: str | None = None,
                                sdp_mline_index: int | None = None) -> None:
        """A trickled remote candidate (the ``candidate:...`` attribute value, with or
        without ``a=``); None or "" means end of candidates."""
        if self._closed:
            raise MediaError("peer_closed", "the peer connection is closed")
        if not self._offered:
            raise MediaError("invalid_state", "no offer yet")
        if not candidate:
            await self.pc.addIceCandidate(None)
            return
        if not isinstance(candidate, str) or len(candidate) > self.config.max_candidate_length:
            raise MediaError("candidate_too_long", "candidate too long or not text")
        self._trickled += 1
        if self._trickled > self.config.max_candidates:
            raise MediaError("too_many_candidates",
                             f"more than {self.config.max_candidates} candidates")
        text = candidate.removeprefix("a=").removeprefix("candidate:")
        try:
            parsed = aiortc_sdp.candidate_from_sdp(text)
        except Exception as exc:
            raise MediaError("invalid_candidate", f"unparsable candidate: {exc}"[:200]) from exc
        # Everything is bundled on the first m-line's transport; aiortc ignores candidates
        # addressed to the other (bundled) m-lines, so address them all to the first.
        del sdp_mid, sdp_mline_index
        parsed.sdpMid = self.pc.getTransceivers()[0].mid
        try:
            await self.pc.addIceCandidate(parsed)
        except Exception as exc:
            raise MediaError("invalid_candidate", f"candidate refused: {exc}"[:200]) from exc

    def _restrict_codecs(self, t: RTCRtpTransceiver) -> None:
        """Keep only the codecs diemcau forwards, in the configured order, plus their RTX."""
        allowed = ("OPUS",) if t.kind == "audio" else tuple(c.upper() for c in
                                                                 self.config.video_codecs)
        media = [c for c in t._codecs if not is_rtx(c) and c.name.upper() in allowed]
        media.sort(key=lambda c: allowed.index(c.name.upper()))
        if not media:
            raise MediaError("unsupported_codec", f"no supported {t.kind} codec negotiated")
        kept = {c.payloadType for c in media}
        rtx = [c for c in t._codecs if is_rtx(c) and c.parameters.get("apt") in kept]
        ordered: list[Any] = []
        for c in media:
            ordered.append(c)
            ordered.extend(r for r in rtx if r.parameters.get("apt") == c.payloadType)
        t._codecs = ordered

    def _publish(self, t: RTCRtpTransceiver) -> Source:
        mid = str(t.mid)
        codec = next(c for c in t._codecs if not is_rtx(c))
        source = Source(f"{self.participant_id}:{mid}", self.participant_id,
                        CodecSpec.from_aiortc(codec),
                        min_keyframe_interval=self.config.keyframe_min_interval_s)
        self._sources[mid] = source
        assert self._demux is not None
        self._demux.publish(source, t)
        return source

    def _open_slot(self, t: RTCRtpTransceiver) -> None:
        assert self._writer is not None
        mid = str(t.mid)
        codecs = tuple((CodecSpec.from_aiortc(c), int(c.payloadType or 0)) for c in t._codecs
                       if not is_rtx(c))
        rtx = tuple((int(str(c.parameters["apt"])), int(c.payloadType or 0)) for c in t._codecs
                    if is_rtx(c))
        ext = t._headerExtensions
        params = StreamParams(
            kind=t.kind, ssrc=t.sender._ssrc, codecs=codecs, rtx=rtx,
            rtx_ssrc=t.sender._rtx_ssrc if rtx else None, mid=mid,
            mid_ext_id=ext_id(ext, URI_MID), abs_send_time_ext_id=ext_id(ext, URI_ABS_SEND_TIME),
            audio_level_ext_id=ext_id(ext, URI_AUDIO_LEVEL))
        sink = Sink(params, _SenderOutput(self._writer, t.sender),
                    history_size=self.config.history_size,
                    retransmits_per_s=self.config.retransmits_per_s,
                    keyframe_retry_s=self.config.keyframe_retry_s,
                    listener=self._on_sink_event, name=f"{self.participant_id}:{mid}")
        self._sinks[mid] = sink
        t.sender.replaceTrack(IdleTrack(t.kind))

        def on_send(parameters: RTCRtpSendParameters) -> None:
            sink.set_ready()

        def on_rtcp(packet: Any) -> bool:
            return self._on_slot_rtcp(sink, packet)

        hooks.hook_sender(t.sender, on_send=on_send, on_rtcp=on_rtcp)

    # --- packet path --------------------------------------------------------------------

    def _on_slot_rtcp(self, sink: Sink, packet: Any) -> bool:
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            _note_reports(sink, packet.reports)
            return False  # aiortc keeps its own statistics too
        if isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            sink.on_nack(list(packet.lost))
            return True
        if isinstance(packet, RtcpPsfbPacket):
            if packet.fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
                sink.on_keyframe_request()
                return True
            if packet.fmt == RTCP_PSFB_APP:
                try:
                    bitrate, _ = unpack_remb_fci(packet.fci)
                except ValueError:
                    return True
                sink.on_remb(bitrate)
                return True
        return False

    # --- events -------------------------------------------------------------------------

    def _on_sink_event(self, sink: Sink, event: str, source: Source | None) -> None:
        self._observer.sink_event(self, sink, event, source)

    def _on_connection_state(self) -> None:
        if self.pc.connectionState in ("failed", "closed") and not self._closed:
            self._observer.peer_failed(self)

    # --- teardown -----------------------------------------------------------------------

    async def close(self) -> None:
        """Stop forwarding, end this participant's sources (their subscribers are told),
        close the peer connection. Safe to call twice and concurrently."""
        async with self._close_lock:
            if self._closed:
                return
            self._closed = True
            for sink in self._sinks.values():
                sink.close()
            for source in self._sources.values():
                source.close()
                self._observer.source_removed(self, source)
            if self._demux is not None:
                self._demux.close()
            try:
                await asyncio.wait_for(self.pc.close(), CLOSE_TIMEOUT_S)
            except TimeoutError:
                logger.warning("closing the peer connection of %s timed out", self.participant_id)
            except Exception:
                logger.exception("closing the peer connection of %s failed", self.participant_id)
            self.pc.remove_all_listeners()

    def __repr__(self) -> str:
        return f"Peer({self.participant_id!r}, {self.connection_state})"


def _note_reports(sink: Sink, reports: list[Any]) -> None:
    """Loss and round trip time from the subscriber's report blocks about this stream."""
    for report in reports:
        if report.ssrc != sink.params.ssrc:
            continue
        stats = sink.stats
        stats.reports += 1
        stats.fraction_lost = report.fraction_lost / 256.0
        if report.lsr:
            middle = (ntp_now() >> 16) & 0xFFFFFFFF
            delay = (middle - report.lsr - report.dlsr) & 0xFFFFFFFF
            if delay < 0x80000000:
                stats.rtt_ms = delay * 1000.0 / 65536.0
