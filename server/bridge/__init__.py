"""The headless bridge agent (``diemcau bridge``): a bridge point (điểm cầu) without a browser.

A hall PC or a load generator joins a meeting over the WebSocket protocol (docs/protocol.md)
and publishes a camera/microphone over WebRTC (aiortc), or only counts what it receives
without decoding (``--receive-only``). It is a *client*: websockets + aiortc + ``media/``
helpers, never the aiohttp server code.

Modules: ``signalling`` (WebSocket session: hello, join, heartbeat, resume), ``sources``
(synthetic/file/V4L2/ALSA tracks), ``counting`` (RTP counting on the DTLS layer), ``offer``
(the peer connection and its ``media.offer``), ``agent`` (the coordinator), ``options``.
"""

from server.bridge.options import AgentOptions, ExitCode

__all__ = ["AgentOptions", "ExitCode"]
