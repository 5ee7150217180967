"""Network safety: plain http only on loopback, TLS verification always on, a timeout on every
request (a hanging server ends in a timeout error, never a wait forever)."""

from __future__ import annotations

import asyncio
import inspect
import ssl
import time
from pathlib import Path

import certifi
import httpx
import pytest
import tomlkit

from klaviyo_tui.klaviyo import KlaviyoClient, UnavailableError
from klaviyo_tui.klaviyo.exceptions import InvalidBaseURL
from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import ConfigError
from klaviyo_tui.store.config_read import load_config

REFUSED = [
    "http://a.klaviyo.com",
    "http://example.com:8080",
    "http://127.0.0.1.evil.example",
    "http://10.0.0.5",
    "ftp://a.klaviyo.com",
    "a.klaviyo.com",
]
LOOPBACK = ["http://127.0.0.1:8080", "http://localhost:9", "http://[::1]:8080", "http://127.0.0.5"]


def write_connection(path: Path, base_url: str) -> Path:
    doc = {"connections": {"k": {"display_name": "K", "base_url": base_url}}}
    path.write_text(tomlkit.dumps(doc))
    return path


@pytest.mark.parametrize("url", REFUSED)
def test_config_refuses_non_https_base_urls(tmp_path: Path, url: str) -> None:
    path = write_connection(tmp_path / "c.toml", url)
    with pytest.raises(ConfigError, match="base_url"):
        load_config(path)


@pytest.mark.parametrize("url", REFUSED)
def test_client_refuses_non_https_base_urls(url: str) -> None:
    with pytest.raises(InvalidBaseURL):
        KlaviyoClient(url, DEMO_KEY)


@pytest.mark.parametrize("url", [*LOOPBACK, "https://a.klaviyo.com"])
async def test_https_and_loopback_http_are_accepted(tmp_path: Path, url: str) -> None:
    path = write_connection(tmp_path / "c.toml", url)
    assert load_config(path).connections["k"].base_url == url
    async with KlaviyoClient(url, DEMO_KEY) as client:
        assert client.base_url == url


def _ssl_context(client: KlaviyoClient) -> ssl.SSLContext:
    pool = client._http._transport._pool  # type: ignore[attr-defined]
    context: ssl.SSLContext = pool._ssl_context
    return context


async def test_tls_verification_cannot_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = inspect.signature(KlaviyoClient).parameters
    assert not {"verify", "ssl", "ssl_context", "insecure", "cert"} & set(params)
    # Environment variables that other tools honour must not switch verification off.
    monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    monkeypatch.setenv("PYTHONHTTPSVERIFY", "0")
    monkeypatch.setenv("CURL_CA_BUNDLE", "")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "")
    monkeypatch.setenv("HTTPX_VERIFY", "0")
    async with KlaviyoClient("https://a.klaviyo.com", DEMO_KEY) as client:
        context = _ssl_context(client)
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname is True
        assert client._http.follow_redirects is False  # the key never follows a redirect


async def test_every_request_has_timeouts() -> None:
    for given in (None, httpx.Timeout(None), httpx.Timeout(5.0, connect=None)):
        async with KlaviyoClient("https://a.klaviyo.com", DEMO_KEY, timeout=given) as client:
            for timeout in (client.timeout, client._http.timeout):
                for part in ("connect", "read", "write", "pool"):
                    value = getattr(timeout, part)
                    assert value is not None and 0 < value <= 120, (given, part, value)


async def test_a_hanging_server_gives_a_timeout_error_not_a_wait_forever() -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, faults={"hang": 1.0})
    async with SandboxServer(settings) as server:
        client = KlaviyoClient(
            server.base_url,
            DEMO_KEY,
            timeout=httpx.Timeout(0.5),
            max_retries=2,
            backoff_base=0.01,
        )
        started = time.monotonic()
        async with client:
            with pytest.raises(UnavailableError, match="did not answer within 0.5 s"):
                await asyncio.wait_for(client.lists(), timeout=20)
        assert time.monotonic() - started < 10
