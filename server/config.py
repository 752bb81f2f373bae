"""Configuration: one frozen dataclass tree loaded from ``config.yaml``.

Precedence, lowest first: the defaults written here, the YAML file, environment variables
(``DIEMCAU_<SECTION>_<KEY>``, e.g. ``DIEMCAU_SERVER_PORT=9000``), then explicit overrides
(CLI flags). Every value is validated; a bad one raises :class:`ConfigError` naming the key.
The top-level ``config.yaml`` mirrors these defaults and ``docs/config.md`` documents every key
(both are checked by tests).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names the key."""


def _opt(default: Any, *, min: float | None = None, max: float | None = None) -> Any:
    return field(default=default, metadata={"min": min, "max": max})


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = _opt(8080, min=0, max=65535)
    data_dir: str = "./data"
    public_url: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"
    shutdown_timeout_s: float = _opt(10.0, min=0.1, max=300)
    tls_cert: str = ""
    tls_key: str = ""
    trusted_proxies: tuple[str, ...] = ()
    metrics_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
                                      "192.168.0.0/16", "fc00::/7")


@dataclass(frozen=True)
class StoreConfig:
    url: str = ""
    pool_size: int = _opt(10, min=1, max=200)


@dataclass(frozen=True)
class BusConfig:
    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    channel_prefix: str = "diemcau"


@dataclass(frozen=True)
class AuthConfig:
    secret_key: str = ""
    session_ttl_hours: float = _opt(12.0, min=0.05, max=24 * 90)
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    login_attempts_per_minute: int = _opt(10, min=1, max=10000)
    password_min_length: int = _opt(10, min=6, max=128)
    invitation_ttl_days: float = _opt(30.0, min=0.01, max=3650)


@dataclass(frozen=True)
class SignallingConfig:
    heartbeat_s: float = _opt(15.0, min=1, max=300)
    resume_window_s: float = _opt(30.0, min=0, max=3600)
    max_message_bytes: int = _opt(65536, min=1024, max=16 * 1024 * 1024)
    messages_per_second: float = _opt(20.0, min=1, max=10000)
    chat_max_chars: int = _opt(2000, min=1, max=100000)
    chat_history: int = _opt(200, min=0, max=100000)
    max_participants_per_meeting: int = _opt(250, min=0, max=1000000)
    max_connections_per_node: int = _opt(2000, min=0, max=1000000)
    revalidate_s: float = _opt(60.0, min=0, max=86400)


@dataclass(frozen=True)
class I18nConfig:
    default_locale: Literal["vi", "en"] = "vi"


@dataclass(frozen=True)
class DocumentsConfig:
    """Limits and rendering of uploaded documents (see ``meetings.documents.DocumentLimits``)."""

    max_bytes: int = _opt(100 * 1024 * 1024, min=1, max=1 << 40)
    max_pages: int = _opt(2000, min=1, max=1_000_000)
    max_page_pt: float = _opt(14400.0, min=72, max=1_000_000)
    view_width_px: int = _opt(1240, min=16, max=20000)
    thumb_width_px: int = _opt(200, min=16, max=20000)
    image_quality: int = _opt(80, min=1, max=100)
    render_timeout_s: float = _opt(10.0, min=0.05, max=3600)
    probe_timeout_s: float = _opt(30.0, min=0.05, max=3600)
    worker_memory_mb: int = _opt(1536, min=256, max=1 << 26)
    workers: int = _opt(2, min=1, max=64)
    cache_dir: str = ""


def _url_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class MediaSettings:
    """The SFU (see docs/media.md); mapped to ``media.MediaConfig`` by ``server.media_config``.

    Lists are comma-separated strings (``ice_servers``, ``host_addresses``), which keeps the
    YAML, the environment variable and the default in one simple form."""

    ice_servers: str = ""
    ice_username: str = ""
    ice_credential: str = ""
    host_addresses: str = ""
    audio_slots: int = _opt(3, min=0, max=8)
    max_grid: int = _opt(9, min=0, max=25)
    stats_interval_s: float = _opt(3.0, min=0.5, max=300)
    workers: int = _opt(0, min=0, max=256)
    max_sdp_bytes: int = _opt(65536, min=1024, max=1 << 20)
    max_m_lines: int = _opt(64, min=1, max=256)

    def __post_init__(self) -> None:
        import ipaddress

        for url in self.server_urls:
            if not url.startswith(("stun:", "turn:", "turns:")) or len(url) > 256:
                raise ConfigError(f"media.ice_servers: not a stun:/turn:/turns: URL: {url!r}")
        for address in self.addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ConfigError(f"media.host_addresses: not an IP address: {address!r}") from None

    @property
    def server_urls(self) -> tuple[str, ...]:
        return _url_list(self.ice_servers)

    @property
    def addresses(self) -> tuple[str, ...]:
        return _url_list(self.host_addresses)


@dataclass(frozen=True)
class RecordingSettings:
    """Meeting recordings (see docs/recording.md): one recorder process per running
    recording writes WebM (VP8 + Opus) under ``dir``."""

    enabled: bool = True
    dir: str = ""
    width: int = _opt(1280, min=160, max=1920)
    height: int = _opt(720, min=120, max=1080)
    fps: int = _opt(15, min=1, max=30)
    video_bitrate: int = _opt(1_500_000, min=100_000, max=8_000_000)
    max_hours: float = _opt(8.0, min=0.01, max=24)

    def __post_init__(self) -> None:
        if self.width % 2 or self.height % 2:
            raise ConfigError("recording.width/height: must be even numbers")


@dataclass(frozen=True)
class Config:
    server: ServerConfig = field(default_factory=ServerConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    bus: BusConfig = field(default_factory=BusConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    signalling: SignallingConfig = field(default_factory=SignallingConfig)
    i18n: I18nConfig = field(default_factory=I18nConfig)
    documents: DocumentsConfig = field(default_factory=DocumentsConfig)
    media: MediaSettings = field(default_factory=MediaSettings)
    recording: RecordingSettings = field(default_factory=RecordingSettings)

    @property
    def data_path(self) -> Path:
        return Path(self.server.data_dir).expanduser().resolve()

    @property
    def database_url(self) -> str:
        """The SQLAlchemy async URL: ``store.url`` or SQLite under the data dir."""
        if self.store.url:
            return self.store.url
        return f"sqlite+aiosqlite:///{self.data_path / 'diemcau.sqlite3'}"

    def replace(self, **overrides: Any) -> Config:
        """A copy with dotted-key overrides applied, e.g. ``replace(**{"server.port": 0})``."""
        return load_config(None, env={}, overrides=overrides, base=self)


SECTIONS: dict[str, type] = {f.name: f.type for f in dataclasses.fields(Config)}  # type: ignore[misc]


def _section_types() -> dict[str, type]:
    hints = typing.get_type_hints(Config)
    return {name: hints[name] for name in SECTIONS}


def iter_keys() -> list[str]:
    """Every dotted key the configuration knows, in declaration order."""
    keys: list[str] = []
    for section, cls in _section_types().items():
        keys.extend(f"{section}.{f.name}" for f in dataclasses.fields(cls))
    return keys


def _coerce(key: str, value: Any, tp: Any, meta: Mapping[str, Any], from_text: bool) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        text = str(value).strip().lower() if isinstance(value, str) else value
        if text not in choices:
            raise ConfigError(f"{key}: expected one of {', '.join(map(str, choices))}; got {value!r}")
        return text
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in {"1", "true", "yes", "on"}:
            return True
        if isinstance(value, str) and value.strip().lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"{key}: expected true or false; got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number; got {value!r}")
        try:
            number = tp(value) if (from_text or isinstance(value, (int, float))) else None
        except (TypeError, ValueError):
            number = None
        if number is None or (tp is int and isinstance(value, float) and not value.is_integer()):
            kind = "an integer" if tp is int else "a number"
            raise ConfigError(f"{key}: expected {kind}; got {value!r}")
        low, high = meta.get("min"), meta.get("max")
        if (low is not None and number < low) or (high is not None and number > high):
            raise ConfigError(f"{key}: must be between {low} and {high}; got {number}")
        return number
    if tp is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected a string; got {value!r}")
        return str(value)
    if origin in (tuple, list) or isinstance(tp, types.GenericAlias):
        if from_text and isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list; got {value!r}")
        (item_tp, *_rest) = typing.get_args(tp)
        return tuple(_coerce(key, v, item_tp, {}, from_text) for v in value)
    raise ConfigError(f"{key}: unsupported type {tp!r}")  # pragma: no cover - programming error


def _apply(base: Config, values: Mapping[str, Any], *, from_text: bool, source: str) -> Config:
    sections = _section_types()
    changed: dict[str, dict[str, Any]] = {}
    for dotted, value in values.items():
        section, _, name = dotted.partition(".")
        cls = sections.get(section)
        fields = {f.name: f for f in dataclasses.fields(cls)} if cls else {}
        if name not in fields:
            raise ConfigError(f"{dotted}: unknown setting ({source})")
        hints = typing.get_type_hints(cls)
        changed.setdefault(section, {})[name] = _coerce(
            dotted, value, hints[name], fields[name].metadata, from_text
        )
    kwargs = {
        section: dataclasses.replace(getattr(base, section), **updates)
        for section, updates in changed.items()
    }
    return dataclasses.replace(base, **kwargs)


def _flatten_yaml(data: Any, source: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of sections")
    flat: dict[str, Any] = {}
    for section, body in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{section}: unknown section ({source})")
        if body is None:
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{section}: expected a mapping of settings ({source})")
        for name, value in body.items():
            flat[f"{section}.{name}"] = value
    return flat


ENV_PREFIX = "DIEMCAU_"


def env_name(dotted: str) -> str:
    return ENV_PREFIX + dotted.replace(".", "_").upper()


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    base: Config | None = None,
) -> Config:
    """Load and validate the configuration (defaults < file < environment < overrides)."""
    config = base or Config()
    if path is not None:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {file}: {exc.strerror}") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
        config = _apply(config, _flatten_yaml(data, str(file)), from_text=False, source=str(file))
    environ = os.environ if env is None else env
    from_env = {key: environ[env_name(key)] for key in iter_keys() if env_name(key) in environ}
    config = _apply(config, from_env, from_text=True, source="environment")
    if overrides:
        given = {k: v for k, v in overrides.items() if v is not None}
        config = _apply(config, given, from_text=False, source="override")
    return config


def default_config_path() -> Path | None:
    """``./config.yaml`` when it exists (the checkout's file), else built-in defaults."""
    candidate = Path.cwd() / "config.yaml"
    return candidate if candidate.is_file() else None
