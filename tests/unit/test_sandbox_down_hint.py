"""When retries run out against a loopback base URL, the message is about the local sandbox (start
it on that port), not Klaviyo's status page; against Klaviyo it still points there."""

from __future__ import annotations

import socket

import httpx
import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.klaviyo import KlaviyoClient, UnavailableError
from klaviyo_tui.sandbox import DEMO_KEY
from tests.support.client import Recorder, err, queue


def _client(base_url: str, transport: httpx.AsyncBaseTransport | None = None) -> KlaviyoClient:
    return KlaviyoClient(
        base_url, DEMO_KEY, transport=transport, max_retries=1, backoff_base=0.001, seed=1
    )


async def _gave_up(base_url: str, answer: httpx.Response | Exception) -> UnavailableError:
    async with _client(base_url, Recorder(queue(answer)).transport) as k:
        with pytest.raises(UnavailableError) as caught:
            await k.lists()
    assert caught.value.exit_code == ExitCode.UNAVAILABLE
    return caught.value


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_sandbox_that_is_not_running_says_how_to_start_it() -> None:
    port = _closed_port()  # nothing listens: a real refused connection
    async with _client(f"http://127.0.0.1:{port}") as k:
        with pytest.raises(UnavailableError) as caught:
            await k.lists()
    error = caught.value
    assert error.message.startswith(f"The sandbox at http://127.0.0.1:{port} is not answering: ")
    assert "gave up reading your lists after 2 attempts" in error.message
    assert f"Start it with `klaviyo-tui sandbox --port {port}`" in error.hint
    assert "status.klaviyo.com" not in error.message + error.hint


@pytest.mark.parametrize(
    ("base_url", "command"),
    [
        ("http://localhost:8765", "klaviyo-tui sandbox --port 8765`"),
        ("http://[::1]:8765", "klaviyo-tui sandbox --port 8765 --host ::1`"),
        ("http://127.0.0.2", "klaviyo-tui sandbox --port 80 --host 127.0.0.2`"),
    ],
)
async def test_the_hint_names_the_address_of_the_base_url(base_url: str, command: str) -> None:
    error = await _gave_up(base_url, httpx.ConnectError("refused"))
    assert f"The sandbox at {base_url} is not answering" in error.message
    assert command in error.hint


async def test_a_sandbox_that_answers_with_errors_is_not_said_to_be_down() -> None:
    error = await _gave_up("http://127.0.0.1:8765", err(503, "down"))
    assert error.message.startswith("The sandbox at http://127.0.0.1:8765 is unavailable: ")
    assert "HTTP 503" in error.message and "status.klaviyo.com" not in error.message
    assert "--faults" in error.hint


async def test_klaviyo_itself_still_points_at_its_status_page() -> None:
    error = await _gave_up("https://a.klaviyo.com", httpx.ConnectError("refused"))
    assert error.message.startswith("Klaviyo is unavailable: gave up reading your lists")
    assert "(https://status.klaviyo.com shows outages)." in error.message
    assert "sandbox" not in error.message + error.hint
