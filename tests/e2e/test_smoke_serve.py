"""`diemcau serve` as a real subprocess: starts on embedded defaults, answers, stops on SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSWORD

pytestmark = pytest.mark.slow


class Server:
    def __init__(self, proc: subprocess.Popen[str], url: str, lines: list[str]):
        self.proc, self.url, self.lines = proc, url, lines

    def get(self, path: str) -> tuple[int, dict]:
        with urllib.request.urlopen(self.url + path, timeout=10) as resp:
            return resp.status, json.loads(resp.read())

    def post(self, path: str, body: dict) -> tuple[int, dict]:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())


def start_server(tmp_path: Path, *extra: str) -> Server:
    """Start ``python -m server serve`` on a free port and wait for its 'listening' line."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", "0", "--data-dir", str(tmp_path / "data"), *extra],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(r"listening on (http://[\d.]+:\d+)", line)
        if match:
            return Server(proc, match.group(1), lines)
    proc.kill()
    raise AssertionError("server did not start:\n" + "".join(lines))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Server]:
    subprocess.run(
        [sys.executable, "-m", "server", "users", "create", "--username", "quantri", "--role", "admin",
         "--password-stdin", "--data-dir", str(tmp_path / "data")],
        input=PASSWORD + "\n", text=True, check=True, cwd=tmp_path, capture_output=True,
    )
    server = start_server(tmp_path)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait()


def test_serve_answers_and_stops_gracefully(served: Server) -> None:
    status, health = served.get("/healthz")
    assert status == 200 and health["status"] == "ok" and health["store"] == "sqlite"
    status, login = served.post("/api/auth/login", {"username": "quantri", "password": PASSWORD})
    assert status == 200 and login["token"].startswith("dcs_")
    served.proc.send_signal(signal.SIGTERM)
    out, _ = served.proc.communicate(timeout=30)
    assert served.proc.returncode == 0, out
    assert "shutting down" in out


def test_bad_config_fails_with_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("server:\n  port: nope\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "server", "serve"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "server.port" in result.stderr
