"""The ``diemcau`` command line (also ``python -m server``)."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from meetings.errors import DomainError

from .config import Config, ConfigError, default_config_path, load_config
from .logs import setup_logging

log = logging.getLogger("diemcau")
T = TypeVar("T")


def _load(config_path: str | None, **overrides: Any) -> Config:
    try:
        path = config_path if config_path is not None else default_config_path()
        return load_config(path, overrides=overrides)
    except ConfigError as exc:
        raise click.UsageError(f"configuration error: {exc}") from None


def _run(func: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(func())
    except DomainError as exc:
        raise click.ClickException(f"{exc.message} [{exc.code}]") from None


config_option = click.option("--config", "config_path", type=click.Path(dir_okay=False),
                             help="config.yaml to read (default: ./config.yaml when present)")
data_dir_option = click.option("--data-dir", type=click.Path(file_okay=False), help="data directory")


@click.group()
@click.version_option(package_name="diemcau")
def main() -> None:
    """diemcau — video conference and paperless meetings for bridge points (điểm cầu)."""


@main.command()
@config_option
@click.option("--host", help="address to listen on (default 127.0.0.1)")
@click.option("--port", type=click.IntRange(0, 65535), help="TCP port (default 8080; 0 = any free port)")
@data_dir_option
@click.option("--demo", is_flag=True, help="seed a demo province, accounts and a meeting, and print how to log in")
def serve(config_path: str | None, host: str | None, port: int | None, data_dir: str | None, demo: bool) -> None:
    """Run the server (SQLite + files under the data dir, in-process bus by default)."""
    config = _load(config_path, **{"server.host": host, "server.port": port, "server.data_dir": data_dir})
    setup_logging(config.server.log_level, config.server.log_format)
    asyncio.run(_serve(config, demo=demo))


async def _serve(config: Config, *, demo: bool) -> None:
    from aiohttp import web

    from .app import create_app
    from .keys import SERVICES
    from .tls import ssl_context

    try:
        tls = ssl_context(config)
        app = create_app(config)
    except ConfigError as exc:
        raise click.UsageError(f"configuration error: {exc}") from None
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=config.server.shutdown_timeout_s,
                           access_log=logging.getLogger("aiohttp.access"))
    await runner.setup()
    from media.runtime import settle_gc

    settle_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        site = web.TCPSite(runner, config.server.host, config.server.port, ssl_context=tls)
        await site.start()
        scheme = "https" if tls else "http"
        addresses = [f"{scheme}://{a[0]}:{a[1]}" for a in runner.addresses if isinstance(a, tuple)]
        url = addresses[0] if addresses else f"{scheme}://{config.server.host}:{config.server.port}"
        if demo:
            from .demo import seed_demo

            report = await seed_demo(app[SERVICES])
            print(report.render(url), flush=True)
        print(f"diemcau listening on {', '.join(addresses)} (data: {config.data_path})", flush=True)
        await stop.wait()
        print("diemcau shutting down…", flush=True)
    finally:
        await runner.cleanup()


@main.group()
def users() -> None:
    """Manage user accounts."""


@users.command("create")
@config_option
@data_dir_option
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice(["admin", "chair", "secretary", "delegate", "observer"]))
@click.option("--display-name", default="", help="full name shown to others (Họ và tên)")
@click.option("--point", "point_code", default=None, help="code of the bridge point this user attends from")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_create(config_path: str | None, data_dir: str | None, username: str, role: str, display_name: str,
                 point_code: str | None, password_stdin: bool) -> None:
    """Create an account. The password is read from standard input (never an argument)."""
    password = _read_password(password_stdin)
    config = _load(config_path, **{"server.data_dir": data_dir})

    async def run() -> None:
        from .services import Services

        services = await Services.start(config)
        try:
            user = await services.accounts.create_user(username, password, role, display_name=display_name,
                                                       point_code=point_code)
        finally:
            await services.close()
        click.echo(f"created {user.role.value} {user.username} (id {user.id})")

    _run(run)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin: no password on standard input")
        return password
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("list")
@config_option
@data_dir_option
def users_list(config_path: str | None, data_dir: str | None) -> None:
    """Print every account: username, role, bridge point, state."""
    config = _load(config_path, **{"server.data_dir": data_dir})

    async def run() -> None:
        from .services import Services

        services = await Services.start(config)
        try:
            found = await services.accounts.list_users()
            codes = await services.accounts.point_codes()
        finally:
            await services.close()
        for user in found:
            point = codes.get(user.point_id or 0, "-")
            state = "disabled" if user.disabled else "active"
            click.echo(f"{user.username:<24} {user.role.value:<10} {point:<12} {state:<8} {user.display_name}")

    _run(run)


@users.command("set-password")
@config_option
@data_dir_option
@click.option("--username", required=True)
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
def users_set_password(config_path: str | None, data_dir: str | None, username: str, password_stdin: bool) -> None:
    """Set a new password for an account (its login sessions end)."""
    password = _read_password(password_stdin)
    config = _load(config_path, **{"server.data_dir": data_dir})

    async def run() -> None:
        from meetings.errors import NotFound

        from .services import Services

        services = await Services.start(config)
        try:
            user = await services.accounts.by_username(username)
            if user is None:
                raise NotFound(f"no user {username!r}", code="user_not_found")
            await services.accounts.set_password(user.id, password)
        finally:
            await services.close()
        click.echo(f"password of {user.username} changed; their sessions were ended")

    _run(run)


@main.group()
def points() -> None:
    """Manage the bridge-point registry (điểm cầu)."""


@points.command("import")
@config_option
@data_dir_option
@click.option("--update", is_flag=True, help="update names/levels/parents of codes already registered")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def points_import(config_path: str | None, data_dir: str | None, update: bool, file: str) -> None:
    """Import bridge points from a CSV or YAML FILE (code, name, level, parent). All rows or none.

    A rejected file prints every problem as "row N: message" on its own line and exits with 1.
    """
    from meetings.point_import import ImportRejected

    config = _load(config_path, **{"server.data_dir": data_dir})
    data = Path(file).read_bytes()

    async def run() -> None:
        from .services import Services

        services = await Services.start(config)
        try:
            result = await services.registry.import_file(file, data, update=update)
        finally:
            await services.close()
        click.echo(f"imported {result.created} new and {result.updated} updated bridge points from {file}")

    try:
        asyncio.run(run())
    except ImportRejected as exc:
        click.echo(f"{file}: import rejected, nothing was imported ({len(exc.errors)} problem(s)):", err=True)
        for error in exc.errors:
            click.echo(f"  {error}", err=True)
        sys.exit(1)
    except DomainError as exc:
        raise click.ClickException(f"{exc.message} [{exc.code}]") from None


@points.command("list")
@config_option
@data_dir_option
def points_list(config_path: str | None, data_dir: str | None) -> None:
    """Print the registry as a tree."""
    config = _load(config_path, **{"server.data_dir": data_dir})

    async def run() -> None:
        from .services import Services

        services = await Services.start(config)
        try:
            roots = await services.registry.tree()
        finally:
            await services.close()

        def show(node: Any, depth: int) -> None:
            p = node.point
            flag = "" if p.enabled else "  [disabled]"
            click.echo(f"{'  ' * depth}{p.code}  {p.name}  ({p.level.value}){flag}")
            for child in node.children:
                show(child, depth + 1)

        for root in roots:
            show(root, 0)

    _run(run)


@points.command("token")
@config_option
@data_dir_option
@click.option("--label", default="", help="where the device is, e.g. 'PC hội trường'")
@click.argument("code")
def points_token(config_path: str | None, data_dir: str | None, label: str, code: str) -> None:
    """Issue a device token for the hall PC of bridge point CODE (shown once)."""
    config = _load(config_path, **{"server.data_dir": data_dir})

    async def run() -> None:
        from .services import Services

        services = await Services.start(config)
        try:
            point = await services.registry.by_code(code)
            issued = await services.registry.issue_token(point.id, label=label)
        finally:
            await services.close()
        click.echo(issued.token)

    _run(run)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@config_option
@data_dir_option
def db_upgrade(config_path: str | None, data_dir: str | None) -> None:
    """Apply schema migrations (also done automatically at start)."""
    config = _load(config_path, **{"server.data_dir": data_dir})

    async def run() -> None:
        from meetings.store.db import Database

        database = Database(config.database_url)
        try:
            applied = await database.migrate()
        finally:
            await database.close()
        click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")

    _run(run)


@main.command()
@click.option("--url", required=True, help="the server, e.g. https://hop.tinh.gov.vn (or its ws(s)://…/ws)")
@click.option("--token", required=True, envvar="DIEMCAU_BRIDGE_TOKEN",
              help="device token (dcp_…) or invitation token (dci_…); also $DIEMCAU_BRIDGE_TOKEN")
@click.option("--video", default="testsrc", show_default=True,
              help="testsrc (synthetic picture with the point's name), a media file, /dev/videoN, or none")
@click.option("--audio", default="tone", show_default=True,
              help="tone, a media file, alsa:DEVICE (e.g. alsa:hw:0), or none")
@click.option("--meeting", "meeting_id", type=click.IntRange(min=1), default=None,
              help="meeting id to join (needed with a device token; an invitation names its meeting)")
@click.option("--video-size", default=None,
              help="WIDTHxHEIGHT of the camera  [default: 640x360; 1280x720 with --hd]")
@click.option("--fps", type=click.IntRange(1, 60), default=30, show_default=True)
@click.option("--renditions", is_flag=True, help="also publish camera-low (320x180) and camera-thumb (160x90)")
@click.option("--hd", is_flag=True,
              help="publish the camera (1280x720 unless --video-size says otherwise) as camera-hd, "
                   "the main screen's HD rendition, plus camera 640x360, camera-low and camera-thumb "
                   "(implies --renditions; camera-hd is sent only while this point is on the main "
                   "screen, and forwarded to subscribers whose link allows it)")
@click.option("--receive-only", is_flag=True,
              help="publish nothing; count received packets/frames/keyframes/loss without decoding")
@click.option("--main-slots", type=click.IntRange(0, 4), default=1, show_default=True,
              help="main-screen video slots to offer")
@click.option("--audio-slots", type=click.IntRange(0, 8), default=3, show_default=True,
              help="audio slots to offer")
@click.option("--stats-interval", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="seconds between JSON stats lines on stdout (0 = none)")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="stop after this many seconds (default: run until SIGINT/SIGTERM)")
@click.option("--ice-address", "ice_addresses", multiple=True,
              help="local address for ICE candidates (repeatable; default: all but loopback, "
                   "or 127.0.0.1 when --url is a loopback address)")
@click.option("--label", default="", help="text drawn on the synthetic picture (default: point code and name)")
@click.option("--ca-file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="PEM file of the CA that signed the server's certificate (wss:// with a private CA)")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="warning",
              show_default=True)
def bridge(url: str, token: str, video: str, audio: str, meeting_id: int | None, video_size: str | None,
           fps: int, renditions: bool, hd: bool, receive_only: bool, main_slots: int, audio_slots: int, stats_interval: float,
           seconds: float | None, ice_addresses: tuple[str, ...], label: str, ca_file: str | None,
           log_level: str) -> None:
    """A headless bridge point: join a meeting over WebSocket + WebRTC and publish a camera and
    microphone (or only count what arrives, --receive-only). Prints JSON lines on stdout.

    Exit codes: 0 stopped (SIGINT/SIGTERM, --seconds, meeting closed), 1 failure, 2 bad
    options, 3 token refused, 4 join refused, 5 server unreachable.
    """
    from .bridge.agent import BridgeAgent
    from .bridge.options import HD_SIZE, AgentError, AgentOptions, parse_size

    logging.basicConfig(level=log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        options = AgentOptions(url=url, token=token, meeting_id=meeting_id, video=video, audio=audio,
                               video_size=parse_size(video_size) if video_size else
                               (HD_SIZE if hd else (640, 360)), fps=fps, renditions=renditions, hd=hd,
                               receive_only=receive_only, main_slots=main_slots, audio_slots=audio_slots,
                               stats_interval_s=stats_interval, seconds=seconds,
                               ice_addresses=tuple(ice_addresses), label=label, ca_file=ca_file or "")
    except AgentError as exc:
        raise click.UsageError(exc.message) from None

    async def run() -> int:
        agent = BridgeAgent(options)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, agent.stop)
        return int(await agent.run())

    code = asyncio.run(run())
    if code:
        click.echo(f"diemcau bridge: stopped with exit code {code} (see the error line above)", err=True)
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
