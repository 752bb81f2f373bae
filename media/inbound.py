"""The publisher side of a peer: demultiplexes the raw RTP of one bundled DTLS transport
into its sources (by SSRC, unwrapping RTX), and asks the publisher for keyframes (PLI)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiortc.codecs import is_rtx
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters
from aiortc.rtp import RTCP_PSFB_PLI, RtcpPsfbPacket

from media import aiortc_hooks as hooks
from media.codecs import CodecSpec
from media.packet import make_packet
from media.rtp import URI_AUDIO_LEVEL, find_extension, parse_rtp
from media.source import Source

MAX_SSRCS = 64
"Most incoming SSRCs remembered per peer (a hostile publisher can't grow the table)."


@dataclass
class _Stream:
    """What an incoming SSRC carries."""

    source: Source
    rtx: bool
    payload_types: dict[int, int]
    "Accepted payload type -> media payload type (identity for media, apt for RTX)."
    audio_level_id: int | None
    media_ssrc: int
    receiver: Any = None
    "aiortc's receiver of a non-RTX audio stream: its packets skip aiortc's receive path."


@dataclass
class _Published:
    """One published m-line: its source, aiortc receiver and negotiated payload types."""

    source: Source
    receiver: Any
    rtcp_ssrc: int
    "SSRC our feedback (PLI) is sent from."
    payload_types: dict[int, int]
    rtx_payload_types: dict[int, int]
    audio_level_id: int | None = None


def ext_id(extensions: Any, uri: str) -> int | None:
    """The negotiated id of header extension ``uri``, or None."""
    for ext in extensions:
        if ext.uri == uri:
            return int(ext.id)
    return None


class InboundDemux:
    """Taps one DTLS transport and pushes each publisher packet to its :class:`Source`."""

    def __init__(self, dtls: RTCDtlsTransport, writer: hooks.RawWriter) -> None:
        self._dtls = dtls
        self._writer = writer
        self._streams: dict[int, _Stream] = {}
        self._published: dict[Any, _Published] = {}  # by aiortc receiver
        self._closed = False
        hooks.install_rtp_tap(dtls, self._tap)

    def publish(self, source: Source, transceiver: Any) -> None:
        """Route the transceiver's incoming RTP to ``source`` once aiortc starts receiving."""
        published = _Published(source, transceiver.receiver,
                               hooks.receiver_rtcp_ssrc(transceiver.receiver)
                               or transceiver.sender._ssrc, {}, {})
        self._published[transceiver.receiver] = published
        source.set_keyframe_requester(lambda: self._send_pli(published))

        def on_receive(parameters: RTCRtpReceiveParameters) -> None:
            self._learn(published, parameters)

        hooks.hook_receiver(transceiver.receiver, on_receive)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        hooks.remove_rtp_tap(self._dtls)
        self._streams.clear()
        self._published.clear()

    # --- learning SSRCs -------------------------------------------------------------------

    def _learn(self, published: _Published, parameters: RTCRtpReceiveParameters) -> None:
        source = published.source
        for c in parameters.codecs:
            if c.payloadType is None:
                continue
            if is_rtx(c):
                apt = c.parameters.get("apt")
                if isinstance(apt, int):
                    published.rtx_payload_types[c.payloadType] = apt
            elif CodecSpec.from_aiortc(c) == source.codec:
                published.payload_types[c.payloadType] = c.payloadType
        published.rtx_payload_types = {pt: apt for pt, apt in published.rtx_payload_types.items()
                                       if apt in published.payload_types}
        published.audio_level_id = ext_id(parameters.headerExtensions, URI_AUDIO_LEVEL)
        for enc in parameters.encodings:
            if enc.ssrc:
                self._add(enc.ssrc, published, rtx=False, media_ssrc=enc.ssrc)
                if enc.rtx is not None and enc.rtx.ssrc:
                    self._add(enc.rtx.ssrc, published, rtx=True, media_ssrc=enc.ssrc)

    def _add(self, ssrc: int, published: _Published, *, rtx: bool, media_ssrc: int
             ) -> _Stream | None:
        if len(self._streams) >= MAX_SSRCS and ssrc not in self._streams:
            return None
        stream = _Stream(published.source, rtx,
                         published.rtx_payload_types if rtx else published.payload_types,
                         None if rtx else published.audio_level_id, media_ssrc,
                         published.receiver if published.source.kind == "audio" and not rtx
                         else None)
        self._streams[ssrc] = stream
        return stream

    def _learn_routed(self, ssrc: int, payload_type: int) -> _Stream | None:
        """An SSRC the offer did not announce, which aiortc routed by payload type."""
        published = self._published.get(hooks.routed_receiver(self._dtls, ssrc))
        if published is None:
            return None
        if payload_type in published.rtx_payload_types:
            media = self._media_ssrc(published.source)
            if media is None:
                return None
            return self._add(ssrc, published, rtx=True, media_ssrc=media)
        return self._add(ssrc, published, rtx=False, media_ssrc=ssrc)

    def _media_ssrc(self, source: Source) -> int | None:
        return next((s.media_ssrc for s in self._streams.values()
                     if s.source is source and not s.rtx), None)

    # --- packet path ----------------------------------------------------------------------

    def _tap(self, data: bytes, after_routing: bool) -> int:
        view = parse_rtp(data)
        if view is None:
            return hooks.TAP_PASS
        stream = self._streams.get(view.ssrc)
        if stream is None:
            if not after_routing:
                return hooks.TAP_AGAIN
            stream = self._learn_routed(view.ssrc, view.payload_type)
            if stream is None:
                return hooks.TAP_PASS
        if view.payload_type not in stream.payload_types:
            return hooks.TAP_PASS
        payload = data[view.payload_start:view.payload_end]
        seq = view.sequence_number
        source = stream.source
        if stream.rtx:
            if len(payload) <= 2:  # RTX padding (bandwidth probing)
                return hooks.TAP_PASS
            seq = (payload[0] << 8) | payload[1]
            payload = payload[2:]
            source.stats.retransmitted += 1
        elif not payload:
            return hooks.TAP_PASS
        level = None
        if stream.audio_level_id:
            value = find_extension(data, view, stream.audio_level_id)
            if value:
                level = value[0]
        source.push(make_packet(source.codec, seq, view.timestamp, view.marker, payload, level))
        if stream.receiver is not None and not after_routing:
            hooks.count_received(stream.receiver, view.ssrc, source.codec.clock_rate, view)
            return hooks.TAP_CONSUMED
        return hooks.TAP_PASS

    def _send_pli(self, published: _Published) -> None:
        """Ask the publisher for a keyframe (RTCP PLI, RFC 4585 §6.3.1)."""
        media_ssrc = self._media_ssrc(published.source)
        if self._closed or media_ssrc is None:
            return
        packet = RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=published.rtcp_ssrc,
                                media_ssrc=media_ssrc)
        try:
            self._writer.write_rtcp(bytes(packet))
        except ConnectionError:
            pass
