"""What a bridge agent is told to do: one frozen, validated value object, and its exit codes."""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit


class ExitCode(enum.IntEnum):
    """Process exit codes of ``diemcau bridge`` (stable: scripts and load tests read them)."""

    OK = 0
    "Stopped by SIGINT/SIGTERM, ``--seconds`` elapsed, or the meeting was closed."
    FAILED = 1
    "Anything unexpected (a source that cannot be opened, a crash)."
    USAGE = 2
    "Bad options (click's own usage errors use 2 as well)."
    AUTH = 3
    "``hello`` was refused: invalid or expired token, disabled point or account."
    JOIN = 4
    "``join`` was refused: no such meeting, not invited, meeting closed; or no meeting given."
    UNREACHABLE = 5
    "The server could not be reached at start."


class AgentError(Exception):
    """A fatal condition with the exit code the process ends with."""

    def __init__(self, exit_code: ExitCode, message: str, code: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message
        self.code = code


VIDEO_ROLES = ("camera-hd", "camera", "camera-low", "camera-thumb")
HD_SIZE = (1280, 720)
"The ``camera-hd`` rendition's size with ``--hd`` when ``--video-size`` is not given."


def ws_url(url: str) -> str:
    """The WebSocket address for a server URL: ``http(s)://host[:port][/prefix]`` becomes
    ``ws(s)://host[:port][/prefix]/ws``; a ``ws(s)://`` URL is used as given (``/ws`` added
    when it has no path)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https", "ws", "wss") or not parts.hostname:
        raise AgentError(ExitCode.USAGE, f"--url must be http(s):// or ws(s)://host[:port]; got {url!r}")
    path = parts.path.rstrip("/")
    if scheme in ("http", "https"):
        scheme = "ws" if scheme == "http" else "wss"
        path = path + "/ws"
    elif not path:
        path = "/ws"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def is_loopback_host(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_size(text: str) -> tuple[int, int]:
    """``640x360`` → (640, 360); even numbers between 16 and 3840x2160."""
    try:
        w_text, h_text = text.lower().split("x")
        width, height = int(w_text), int(h_text)
    except ValueError:
        raise AgentError(ExitCode.USAGE, f"--video-size must look like 640x360; got {text!r}") from None
    if not (16 <= width <= 3840 and 16 <= height <= 2160) or width % 2 or height % 2:
        raise AgentError(ExitCode.USAGE, f"--video-size {text!r}: even sizes from 16x16 to 3840x2160")
    return width, height


@dataclass(frozen=True)
class AgentOptions:
    """Everything ``diemcau bridge`` was told (validated on construction)."""

    url: str
    "Server base URL (http(s)://…) or its WebSocket URL."
    token: str
    "``dcp_`` device token or ``dci_`` invitation token (``dcs_`` login tokens work too)."
    meeting_id: int | None = None
    "Required with a device/login token; an invitation token names its meeting itself."
    video: str = "testsrc"
    "``testsrc``, a file path, ``/dev/videoN`` or ``none``."
    audio: str = "tone"
    "``tone``, a file path, ``alsa:<device>`` or ``none``."
    video_size: tuple[int, int] = (640, 360)
    fps: int = 30
    renditions: bool = False
    "Also publish ``camera-low`` (320x180) and ``camera-thumb`` (160x90 at low fps)."
    hd: bool = False
    """Publish the camera at ``video_size`` as ``camera-hd`` (the main screen's HD rendition)
    plus ``camera`` 640x360, ``camera-low`` and ``camera-thumb`` (implies ``renditions``)."""
    receive_only: bool = False
    "Publish nothing; count received packets/frames without decoding."
    main_slots: int = 1
    "Recvonly ``main`` video m-lines offered."
    audio_slots: int = 3
    "Recvonly ``audio`` m-lines offered (the contract offers 3)."
    stats_interval_s: float = 5.0
    "Print a JSON stats line this often (0 = never)."
    seconds: float | None = None
    "Stop after this long (load tests); None = until SIGINT/SIGTERM."
    ice_addresses: tuple[str, ...] = ()
    "Host addresses for ICE candidates; empty = aioice's choice, or 127.0.0.1 for a loopback URL."
    label: str = ""
    "Text drawn on the synthetic picture (default: the point's code and name from ``welcome``)."
    ca_file: str = ""
    "PEM CA bundle to verify a ``wss://`` server with (default: the system's CAs)."

    def __post_init__(self) -> None:
        ws_url(self.url)  # validates
        if not self.token.strip():
            raise AgentError(ExitCode.USAGE, "--token is empty")
        if self.meeting_id is not None and self.meeting_id < 1:
            raise AgentError(ExitCode.USAGE, "--meeting must be a positive meeting id")
        if not 1 <= self.fps <= 60:
            raise AgentError(ExitCode.USAGE, "--fps must be between 1 and 60")
        if not 0 <= self.main_slots <= 4 or not 0 <= self.audio_slots <= 8:
            raise AgentError(ExitCode.USAGE, "--main-slots 0..4, --audio-slots 0..8")
        if self.hd and (self.video_size[0] < 640 or self.video_size[1] < 360):
            raise AgentError(ExitCode.USAGE, "--hd needs --video-size of at least 640x360")
        if self.stats_interval_s < 0 or (self.seconds is not None and self.seconds <= 0):
            raise AgentError(ExitCode.USAGE, "--stats-interval >= 0 and --seconds > 0")
        if self.audio != "none" and self.audio != "tone" and self.audio.startswith("alsa") \
                and not self.audio.startswith("alsa:"):
            raise AgentError(ExitCode.USAGE, "--audio alsa needs a device, e.g. alsa:hw:0")

    @property
    def websocket_url(self) -> str:
        return ws_url(self.url)

    @property
    def publishes(self) -> bool:
        return not self.receive_only and (self.video != "none" or self.audio != "none")

    def host_addresses(self) -> tuple[str, ...]:
        """ICE host addresses to gather on ("" = leave aioice alone)."""
        if self.ice_addresses:
            return self.ice_addresses
        return ("127.0.0.1",) if is_loopback_host(self.websocket_url) else ()
