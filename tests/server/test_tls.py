"""HTTPS/WSS served by diemcau itself (TLS >= 1.2) and trusted reverse-proxy headers."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from server.app import create_app
from server.config import ConfigError
from server.tls import ssl_context
from tests.conftest import PASSWORD, make_config

ClientFactory = Callable[..., Awaitable[TestClient]]


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (what a test CA would issue)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "diemcau test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path)


def test_context_requires_tls12_and_both_files(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    context = ssl_context(make_config(tmp_path, **{"server.tls_cert": str(cert), "server.tls_key": str(key)}))
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ssl_context(make_config(tmp_path)) is None
    with pytest.raises(ConfigError, match=r"^server\.tls_key"):
        ssl_context(make_config(tmp_path, **{"server.tls_cert": str(cert)}))
    with pytest.raises(ConfigError, match=r"^server\.tls_cert: no readable file"):
        ssl_context(make_config(tmp_path, **{"server.tls_cert": str(tmp_path / "x.pem"), "server.tls_key": str(key)}))
    (tmp_path / "other").mkdir()
    other_cert, _ = make_certificate(tmp_path / "other")
    with pytest.raises(ConfigError, match=r"^server\.tls_key: cannot load"):
        ssl_context(make_config(tmp_path, **{"server.tls_cert": str(other_cert), "server.tls_key": str(key)}))


@pytest.fixture
def https_server(tmp_path: Path, certificate: tuple[Path, Path]) -> Iterator[tuple[str, Path]]:
    cert, key = certificate
    data = tmp_path / "data"
    subprocess.run([sys.executable, "-m", "server", "users", "create", "--username", "quantri", "--role", "admin",
                    "--password-stdin", "--data-dir", str(data)], input=PASSWORD + "\n", text=True,
                   check=True, capture_output=True, cwd=tmp_path)
    env = {**os.environ, "DIEMCAU_SERVER_TLS_CERT": str(cert), "DIEMCAU_SERVER_TLS_KEY": str(key)}
    proc = subprocess.Popen([sys.executable, "-m", "server", "serve", "--port", "0", "--data-dir", str(data)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    url = None
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = re.search(r"listening on (https://[\d.]+:\d+)", line)
        url = match.group(1) if match else None
    try:
        assert url, "HTTPS server did not start"
        yield url, cert
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _client_context(cert: Path, *, max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cert))
    if max_version is not None:
        context.maximum_version = max_version
    return context


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_serves_https_with_tls12_minimum(https_server: tuple[str, Path]) -> None:
    url, cert = https_server
    with urllib.request.urlopen(url + "/healthz", context=_client_context(cert), timeout=10) as resp:
        assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
        assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
    # a client capped at TLS 1.2 still connects; one capped at TLS 1.1 is refused
    with urllib.request.urlopen(url + "/healthz", context=_client_context(cert, max_version=ssl.TLSVersion.TLSv1_2),
                                timeout=10) as resp:
        assert resp.status == 200
    old = _client_context(cert, max_version=ssl.TLSVersion.TLSv1_1)
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with pytest.raises((ssl.SSLError, urllib.error.URLError)):
        urllib.request.urlopen(url + "/healthz", context=old, timeout=10)
    # plain HTTP on the TLS port is not served
    with pytest.raises(Exception):
        urllib.request.urlopen(url.replace("https://", "http://") + "/healthz", timeout=10)


@pytest.mark.slow
async def test_login_cookie_is_secure_and_wss_works(https_server: tuple[str, Path]) -> None:
    url, cert = https_server
    context = _client_context(cert)
    async with aiohttp.ClientSession() as session:
        async with session.post(url + "/api/auth/login", json={"username": "quantri", "password": PASSWORD},
                                ssl=context) as resp:
            assert resp.status == 200
            assert "Secure" in resp.headers["Set-Cookie"]
            token = (await resp.json())["token"]
        async with session.ws_connect(url.replace("https://", "wss://") + "/ws", ssl=context) as ws:
            await ws.send_json({"type": "hello", "v": 1, "token": token})
            welcome = await ws.receive_json(timeout=10)
            assert welcome["type"] == "welcome"


async def _login_headers(client: TestClient, headers: dict[str, str]) -> str:
    from server.keys import SERVICES

    await client.app[SERVICES].accounts.create_user("chutri", PASSWORD, "chair")
    resp = await client.post("/api/auth/login", json={"username": "chutri", "password": PASSWORD}, headers=headers)
    assert resp.status == 200
    return resp.headers["Set-Cookie"]


async def test_forwarded_headers_only_from_trusted_proxies(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hop.tinh.gov.vn", "X-Forwarded-For": "10.1.2.3"}
    trusted = await aiohttp_client(create_app(make_config(tmp_path / "a", **{"server.trusted_proxies": ["127.0.0.1/32"]})))
    assert "Secure" in await _login_headers(trusted, forwarded)
    resp = await trusted.get("/healthz", headers=forwarded)
    assert "Strict-Transport-Security" in resp.headers
    untrusted = await aiohttp_client(create_app(make_config(tmp_path / "b")))
    assert "Secure" not in await _login_headers(untrusted, forwarded)
    resp = await untrusted.get("/healthz", headers=forwarded)
    assert "Strict-Transport-Security" not in resp.headers


async def test_rate_limit_counts_the_forwarded_client(aiohttp_client: ClientFactory, tmp_path: Path) -> None:
    config = make_config(tmp_path, **{"server.trusted_proxies": ["127.0.0.1"], "auth.login_attempts_per_minute": 1})
    client = await aiohttp_client(create_app(config))
    # per-address limit is five times the per-user one: five bad logins from one client address
    for i in range(5):
        resp = await client.post("/api/auth/login", json={"username": f"u{i}", "password": "sai-mat-khau"},
                                 headers={"X-Forwarded-For": "10.0.0.7"})
        assert resp.status == 401
    blocked = await client.post("/api/auth/login", json={"username": "u9", "password": "sai-mat-khau"},
                                headers={"X-Forwarded-For": "10.0.0.7"})
    assert blocked.status == 429
    other = await client.post("/api/auth/login", json={"username": "u9", "password": "sai-mat-khau"},
                              headers={"X-Forwarded-For": "10.0.0.8"})
    assert other.status == 401  # another commune behind the same proxy is not blocked


def test_bad_proxy_setting_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^server\.trusted_proxies"):
        create_app(make_config(tmp_path, **{"server.trusted_proxies": ["not-an-ip"]}))
