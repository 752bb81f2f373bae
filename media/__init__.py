"""diemcau media core: RTP packet-level forwarding (an SFU) on aiortc peers.

Public surface for the signalling layer::

    room = Room(MediaConfig(), on_event=handler)   # one per meeting
    peer = room.create_peer(participant_id)
    answer_sdp = await peer.accept_offer(offer_sdp)  # MediaError on bad SDP
    room.subscribe(participant_id, source_id, mid=None)  # -> Sink (slot)
    room.unsubscribe(participant_id, mid)
    await room.remove_peer(participant_id)
    await room.close()

See docs/media.md. This package never imports aiohttp.
"""

from media.codecs import CodecSpec
from media.config import IceServer, MediaConfig
from media.errors import MediaError
from media.packet import MediaPacket, make_packet
from media.peer import Peer, SlotInfo
from media.room import MediaEvent, PeerClosed, Room, SlotIdle, SourceAdded, SourceRemoved
from media.sink import Sink
from media.source import PacketSink, Source
from media.stream import StreamOutput, StreamParams

__all__ = [
    "CodecSpec",
    "IceServer",
    "MediaConfig",
    "MediaError",
    "MediaEvent",
    "MediaPacket",
    "PacketSink",
    "Peer",
    "PeerClosed",
    "Room",
    "Sink",
    "SlotIdle",
    "SlotInfo",
    "Source",
    "SourceAdded",
    "SourceRemoved",
    "StreamOutput",
    "StreamParams",
    "make_packet",
]
