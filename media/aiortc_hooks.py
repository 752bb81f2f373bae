"""Every aiortc 1.16 / aioice 0.13 internal that diemcau touches, in one module.

aiortc has no public API for packet-level forwarding (see LAB.md), so the forwarder:

* taps raw RTP on a publisher's DTLS transport (``RTCDtlsTransport._handle_rtp_data``,
  after SRTP unprotect, before parsing) and then lets aiortc's receiver run as usual so it
  still sends receiver reports, NACKs and REMB upstream;
* stops the receiver's decoder thread once it has started (nothing reads the decoded
  frames; they would pile up in an unbounded queue);
* writes outgoing packets itself: SRTP-protect with the transport's ``_tx_srtp`` session and
  ``sendto`` on the nominated ICE pair's datagram transport (no coroutine, no copy);
* keeps each subscriber's ``RTCRtpSender`` for RTCP: feeds the counters its sender reports
  use, and intercepts its ``_handle_rtcp_packet`` to route NACK/PLI/FIR/REMB to diemcau;
* throttles the REMB feedback of each receiver (:class:`media.remb.RembThrottle`);
* lets the tap consume audio packets, feeding only the receiver's report statistics
  (:func:`count_received`);
* writes to the nominated socket directly while asyncio buffers nothing (:class:`RawWriter`).

:func:`check_aiortc_internals` verifies all of it against the installed aiortc; the test
suite runs it, and :meth:`media.Room.create_peer` refuses to work when it fails.
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aioice.ice
import aiortc
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtcdtlstransport import RTCDtlsTransport, State
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtcrtpreceiver import StreamStatistics

from media.remb import RembThrottle

logger = logging.getLogger(__name__)

SUPPORTED_AIORTC = "1.16."

_TAP_MARK = "_diemcau_rtp_tap"
_SENDER_MARK = "_diemcau_sender_hooked"
_RECEIVER_MARK = "_diemcau_receiver_hooked"

# Name-mangled private attributes of RTCRtpSender / RTCRtpReceiver.
_S_PACKETS = "_RTCRtpSender__packet_count"
_S_OCTETS = "_RTCRtpSender__octet_count"
_S_NTP = "_RTCRtpSender__ntp_timestamp"
_S_RTP_TS = "_RTCRtpSender__rtp_timestamp"
_S_RTX_PT = "_RTCRtpSender__rtx_payload_type"
_R_STOP_DECODER = "_RTCRtpReceiver__stop_decoder"
_R_DECODER_THREAD = "_RTCRtpReceiver__decoder_thread"
_R_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_R_REMOTE_STREAMS = "_RTCRtpReceiver__remote_streams"

TAP_PASS, TAP_AGAIN, TAP_CONSUMED = 0, 1, 2
RtpTap = Callable[[bytes, bool], int]
"""Gets each plain RTP packet first (``after_routing`` False) and returns :data:`TAP_PASS`
(aiortc's receiver handles it too), :data:`TAP_AGAIN` (unknown stream: call again with
``after_routing`` True once aiortc's own routing ran) or :data:`TAP_CONSUMED` (aiortc never
sees it: the tap fed the receiver's statistics itself, see :func:`count_received`)."""


def check_aiortc_internals() -> list[str]:
    """Problems found with the aiortc internals this module relies on (empty when fine).

    Must run inside an event loop (aiortc objects grab it on construction)."""
    problems: list[str] = []
    if not aiortc.__version__.startswith(SUPPORTED_AIORTC):
        problems.append(f"aiortc {aiortc.__version__} is not {SUPPORTED_AIORTC}x")

    def need(obj: Any, name: str, what: str) -> None:
        if not hasattr(obj, name):
            problems.append(f"{what} has no attribute {name}")

    for name in ("_handle_rtp_data", "_handle_rtcp_data", "_send_rtp"):
        fn = getattr(RTCDtlsTransport, name, None)
        if fn is None or not inspect.iscoroutinefunction(fn):
            problems.append(f"RTCDtlsTransport.{name} is missing or not a coroutine")
    sig = inspect.signature(RTCDtlsTransport._handle_rtp_data)
    if list(sig.parameters) != ["self", "data", "arrival_time_ms"]:
        problems.append(f"RTCDtlsTransport._handle_rtp_data signature changed: {sig}")
    src = inspect.getsource(RTCDtlsTransport._recv_next)
    if "self._handle_rtp_data(" not in src or "_rx_srtp.unprotect(" not in src:
        problems.append("RTCDtlsTransport._recv_next no longer calls _handle_rtp_data")
    if State.CONNECTED is None:  # pragma: no cover - import above would fail first
        problems.append("aiortc.rtcdtlstransport.State.CONNECTED missing")
    for name in ("_nominated",):
        if name not in inspect.getsource(aioice.ice.Connection.__init__):
            problems.append(f"aioice Connection has no {name}")
    need(aioice.ice.CandidatePair, "remote_addr", "aioice CandidatePair")
    datagram_sendto = inspect.getsource(
        asyncio.selector_events._SelectorDatagramTransport.sendto)  # type: ignore[attr-defined]
    if "self._buffer" not in datagram_sendto or "self._sock.sendto(" not in datagram_sendto:
        problems.append("asyncio's datagram transport no longer buffers in _buffer / sends "
                        "on _sock")
    if "self.transport =" not in inspect.getsource(aioice.ice.StunProtocol.connection_made):
        problems.append("aioice StunProtocol no longer keeps .transport")

    pc = aiortc.RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="sendonly")
    sender, receiver = transceiver.sender, transceiver.receiver
    dtls = sender.transport
    for name in ("_rtp_router", "_tx_srtp", "_state", "_transport"):
        need(dtls, name, "RTCDtlsTransport")
    need(dtls._rtp_router, "ssrc_table", "RtpRouter")
    need(dtls.transport, "_connection", "RTCIceTransport")
    for name in ("_ssrc", "_rtx_ssrc", "_handle_rtcp_packet", "send", _S_PACKETS, _S_OCTETS,
                 _S_NTP, _S_RTP_TS, _S_RTX_PT):
        need(sender, name, "RTCRtpSender")
    if "await self._send_rtcp(rtcp_packet)" not in inspect.getsource(
            RTCRtpReceiver._handle_rtp_packet):
        problems.append("RTCRtpReceiver no longer sends REMB through _send_rtcp")
    if "self.__remote_streams[packet.ssrc].add(packet)" not in inspect.getsource(
            RTCRtpReceiver._handle_rtp_packet):
        problems.append("RTCRtpReceiver no longer keeps StreamStatistics per SSRC")
    for name in ("receive", "_send_rtcp", _R_STOP_DECODER, _R_DECODER_THREAD, _R_RTCP_SSRC,
                 _R_REMOTE_STREAMS):
        need(receiver, name, "RTCRtpReceiver")
    for name in ("_codecs", "_headerExtensions", "_offerDirection"):
        need(transceiver, name, "RTCRtpTransceiver")
    if "self.__track.recv()" not in inspect.getsource(RTCRtpSender._next_encoded_frame):
        problems.append("RTCRtpSender no longer pulls frames from track.recv()")
    if "_handle_rtcp_packet(packet)" not in inspect.getsource(RTCDtlsTransport._handle_rtcp_data):
        problems.append("RTCDtlsTransport no longer routes RTCP via _handle_rtcp_packet")
    if "get_host_addresses(" not in inspect.getsource(aioice.ice.Connection.gather_candidates):
        problems.append("aioice Connection.gather_candidates no longer calls get_host_addresses")
    return problems


# --- ICE host addresses ---------------------------------------------------------------------

def use_host_addresses(addresses: tuple[str, ...]) -> Callable[[], None]:
    """Gather host candidates only on ``addresses`` (e.g. ``("127.0.0.1",)`` in tests, or the
    server's LAN address), for every peer connection of this process (aioice reads a
    module-level function, so this is process-wide). Empty: aioice's default (every
    interface but loopback). Returns a function that restores the previous behaviour."""
    if not addresses:
        return lambda: None
    chosen = list(addresses)
    v4 = [a for a in chosen if ":" not in a]
    v6 = [a for a in chosen if ":" in a]
    previous = aioice.ice.get_host_addresses

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return (v4 if use_ipv4 else []) + (v6 if use_ipv6 else [])

    aioice.ice.get_host_addresses = get_host_addresses

    def restore() -> None:
        if aioice.ice.get_host_addresses is get_host_addresses:
            aioice.ice.get_host_addresses = previous

    return restore


# --- receive side ---------------------------------------------------------------------------

def install_rtp_tap(dtls: RTCDtlsTransport, tap: RtpTap) -> bool:
    """Give ``tap`` every plain RTP packet of ``dtls`` before aiortc parses it. If ``tap``
    returns True (unknown stream), it is called again after aiortc routed the packet (aiortc
    learns SSRCs by payload type). False if a tap was already installed."""
    if getattr(dtls, _TAP_MARK, False):
        return False
    original = dtls._handle_rtp_data

    async def handle_rtp_data(data: bytes, arrival_time_ms: int) -> None:
        try:
            verdict = tap(data, False)
        except Exception:
            logger.exception("RTP tap failed")
            verdict = TAP_PASS
        if verdict == TAP_CONSUMED:
            return
        await original(data, arrival_time_ms)
        if verdict == TAP_AGAIN:
            try:
                tap(data, True)
            except Exception:
                logger.exception("RTP tap failed")

    dtls._handle_rtp_data = handle_rtp_data  # type: ignore[method-assign]
    setattr(dtls, _TAP_MARK, True)
    return True


def remove_rtp_tap(dtls: RTCDtlsTransport) -> None:
    """Undo :func:`install_rtp_tap` (drop the instance attribute)."""
    if getattr(dtls, _TAP_MARK, False):
        dtls.__dict__.pop("_handle_rtp_data", None)
        setattr(dtls, _TAP_MARK, False)


def routed_receiver(dtls: RTCDtlsTransport, ssrc: int) -> Any:
    """The receiver aiortc routes ``ssrc`` to (after it learnt it), or None."""
    return dtls._rtp_router.ssrc_table.get(ssrc)


def hook_receiver(receiver: RTCRtpReceiver,
                  on_receive: Callable[[RTCRtpReceiveParameters], None]) -> None:
    """Once aiortc starts ``receiver``: stop its decoder (the relay never decodes) and
    report the negotiated receive parameters (SSRCs, RTX, payload types, extensions).
    Its REMB feedback goes through a :class:`RembThrottle` (``receiver.diemcau_remb``)."""
    if getattr(receiver, _RECEIVER_MARK, False):
        return
    original = receiver.receive
    original_send_rtcp = receiver._send_rtcp
    throttle = RembThrottle()

    async def send_rtcp(packet: Any) -> None:
        if throttle.allow(packet):
            await original_send_rtcp(packet)

    async def receive(parameters: RTCRtpReceiveParameters) -> None:
        await original(parameters)
        if getattr(receiver, _R_DECODER_THREAD) is not None:
            getattr(receiver, _R_STOP_DECODER)()
        on_receive(parameters)

    receiver.receive = receive  # type: ignore[method-assign]
    receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]
    receiver.diemcau_remb = throttle  # type: ignore[attr-defined]
    setattr(receiver, _RECEIVER_MARK, True)


def count_received(receiver: RTCRtpReceiver, ssrc: int, clock_rate: int, packet: Any) -> None:
    """What aiortc's receiver keeps of a packet for its receiver reports (sequence, jitter,
    loss), for a packet the tap consumed (``packet``: anything with ``sequence_number`` and
    ``timestamp``). Audio needs nothing else of aiortc's receive path once the decoder is
    stopped (no NACK, no REMB estimator), which costs ~4x this per packet."""
    streams = getattr(receiver, _R_REMOTE_STREAMS)
    stats = streams.get(ssrc)
    if stats is None:
        stats = streams[ssrc] = StreamStatistics(clock_rate)
    stats.add(packet)


def decoder_running(receiver: RTCRtpReceiver) -> bool:
    """Whether aiortc's decoder thread of ``receiver`` is alive (never, once hooked)."""
    return getattr(receiver, _R_DECODER_THREAD) is not None


def receiver_rtcp_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The SSRC the receiver puts in its RTCP feedback."""
    value = getattr(receiver, _R_RTCP_SSRC)
    return int(value) if value is not None else None


# --- send side ------------------------------------------------------------------------------

def hook_sender(sender: RTCRtpSender, *, on_send: Callable[[RTCRtpSendParameters], None],
                on_rtcp: Callable[[Any], bool]) -> None:
    """Report when aiortc starts ``sender`` (its SRTP session is ready then) and give each
    RTCP packet routed to it to ``on_rtcp`` first; aiortc handles those it returns False for."""
    if getattr(sender, _SENDER_MARK, False):
        return
    original_send = sender.send
    original_rtcp: Callable[[Any], Awaitable[None]] = sender._handle_rtcp_packet

    async def send(parameters: RTCRtpSendParameters) -> None:
        await original_send(parameters)
        on_send(parameters)

    async def handle_rtcp_packet(packet: Any) -> None:
        try:
            handled = on_rtcp(packet)
        except Exception:
            logger.exception("RTCP hook failed")
            handled = True
        if not handled:
            await original_rtcp(packet)

    sender.send = send  # type: ignore[method-assign]
    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
    setattr(sender, _SENDER_MARK, True)


def sender_rtx_payload_type(sender: RTCRtpSender) -> int | None:
    value = getattr(sender, _S_RTX_PT)
    return int(value) if value is not None else None


def feed_sender_report(sender: RTCRtpSender, ntp_time: int, rtp_timestamp: int,
                       packets: int, octets: int) -> None:
    """Set what the sender's next RTCP sender report says."""
    d = sender.__dict__
    d[_S_NTP] = ntp_time
    d[_S_RTP_TS] = rtp_timestamp
    d[_S_PACKETS] = packets
    d[_S_OCTETS] = octets


def sender_report_feeder(sender: RTCRtpSender) -> Callable[[int, int, int, int], None]:
    """:func:`feed_sender_report` for one sender, with its attribute dict looked up once."""
    d = sender.__dict__

    def feed(ntp_time: int, rtp_timestamp: int, packets: int, octets: int) -> None:
        d[_S_NTP] = ntp_time
        d[_S_RTP_TS] = rtp_timestamp
        d[_S_PACKETS] = packets
        d[_S_OCTETS] = octets

    return feed


class RawWriter:
    """Writes plain RTP/RTCP through a DTLS transport's SRTP session straight to the
    nominated ICE pair, synchronously. Raises ConnectionError once the transport is gone.

    The pair's socket and address are looked up once per nominated pair, and a datagram goes
    to ``sock.sendto`` directly while asyncio's transport holds nothing back (what its own
    ``sendto`` does, minus its checks: ~2 µs a packet on the 2-core test machine, where a
    worker sends ~6,000 packets a second); when the kernel refuses it or asyncio is already
    buffering, the transport takes it, so order and the buffer limit hold as before."""

    __slots__ = ("_addr", "_connection", "_dtls", "_limit", "_pair", "_sock", "_transport")

    def __init__(self, dtls: RTCDtlsTransport, buffer_limit: int) -> None:
        self._dtls = dtls
        self._connection = dtls.transport._connection
        self._limit = buffer_limit
        self._pair: Any = None
        self._transport: Any = None
        self._sock: Any = None
        self._addr: tuple[str, int] = ("", 0)

    def _target(self) -> Any:
        """The nominated pair's datagram transport (asyncio's selector transport), checked
        for every packet and looked up again when the nominated pair changed."""
        if self._dtls._state != State.CONNECTED:
            raise ConnectionError("DTLS transport is not connected")
        pair = self._connection._nominated.get(1)
        transport = self._transport
        if pair is not self._pair or transport is None:
            if pair is None:
                raise ConnectionError("no nominated ICE pair")
            transport = pair.protocol.transport
            if transport is None:
                raise ConnectionError("ICE socket closed")
            self._pair, self._transport, self._addr = pair, transport, pair.remote_addr
            self._sock = transport._sock  # type: ignore[attr-defined]  # pinned above
        if transport.is_closing():
            raise ConnectionError("ICE socket closed")
        return transport

    def _send(self, transport: Any, data: bytes) -> None:
        if not transport._buffer:
            try:
                self._sock.sendto(data, self._addr)
                return
            except (BlockingIOError, InterruptedError):
                pass  # the kernel is full: asyncio buffers it and writes it when it can
            except OSError:
                pass  # asyncio reports it to the ICE protocol, as it always did
        transport.sendto(data, self._addr)

    def write_rtp(self, data: bytes) -> bool:
        """Send one RTP packet; False (dropped) while the socket's write buffer is over the
        limit."""
        transport = self._target()
        if transport._buffer and transport.get_write_buffer_size() > self._limit:
            return False
        self._send(transport, self._dtls._tx_srtp.protect(data))
        return True

    def write_rtcp(self, data: bytes) -> bool:
        transport = self._target()
        if transport._buffer and transport.get_write_buffer_size() > self._limit:
            return False
        self._send(transport, self._dtls._tx_srtp.protect_rtcp(data))
        return True

    def buffered(self) -> int:
        """Bytes waiting in the socket's write buffer (0 when not connected)."""
        try:
            transport = self._target()
        except ConnectionError:
            return 0
        return int(transport.get_write_buffer_size())
