"""Run the sandbox with uvicorn: in a background thread (tests, demo) or blocking (CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .app import SandboxApp
from .settings import SandboxSettings

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


def _protocol_for(app: SandboxApp) -> type[H11Protocol]:
    """uvicorn's HTTP protocol, recording each connection's transport so a fault can reset it."""

    class SandboxProtocol(H11Protocol):
        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            app.transports[self.client] = transport
            sock = transport.get_extra_info("socket")
            if sock is not None:  # no Nagle: headers and body go out at once (else ~40 ms stalls)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def connection_lost(self, exc: Exception | None) -> None:
            app.transports.pop(self.client, None)
            super().connection_lost(exc)

    return SandboxProtocol


def _config(app: SandboxApp, host: str, port: int, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_protocol_for(app),
        lifespan="on",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
        h11_max_incomplete_event_size=64 * 1024,
    )


class SandboxServer:
    """A sandbox on 127.0.0.1 in a background thread; `with SandboxServer() as s: s.base_url`."""

    def __init__(
        self,
        settings: SandboxSettings | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        log_level: str = "warning",
    ) -> None:
        self.settings = settings or SandboxSettings()
        self.host = host
        self.port = port or 0
        self.log_level = log_level
        self.app = SandboxApp(self.settings)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._socket: socket.socket | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> SandboxServer:
        """Start serving; returns once the server accepts connections."""
        if self._thread is not None:
            raise RuntimeError("the sandbox server is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock
        server = uvicorn.Server(_config(self.app, self.host, self.port, self.log_level))
        self._server = server
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(server.serve(sockets=[sock]))
            except BaseException as exc:  # reported to start() below
                failure.append(exc)
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="klaviyo-sandbox", daemon=True)
        self._thread.start()
        while not server.started:
            if failure or not self._thread.is_alive():
                raise RuntimeError(f"the sandbox server did not start: {failure[:1]}")
            self._thread.join(0.01)
            timeout -= 0.01
            if timeout <= 0:
                raise RuntimeError("the sandbox server did not start in time")
        return self

    def revoke_key(self, key: str) -> None:
        """Revoke `key` mid-run (tests): later requests with it get 401. No HTTP back door."""
        self.app.revoke_key(key)

    def stop(self) -> None:
        """Shut down cleanly: release hung requests, close connections, join the thread."""
        server, thread, loop = self._server, self._thread, self._loop
        if server is None or thread is None:
            return
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop may close meanwhile
                loop.call_soon_threadsafe(self.app.stop_hanging)
        server.should_exit = True
        thread.join(15)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._loop = None
        self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> SandboxServer:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.stop)


def _tune_gc() -> None:
    """The standalone server's process only: a bulk import job parses into ~100,000 small dicts
    and lists that live until the job is processed, which makes CPython's cyclic GC run its
    full collections over everything alive (imports included) every job or two. Freezing what
    exists at start and collecting the young generation less often cuts the sandbox's CPU per
    10,000-profile job by about a fifth (measured: 127 -> 107 ms). Nothing the server keeps
    forms reference cycles that need the GC promptly."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def serve(
    settings: SandboxSettings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    on_listening: Callable[[str], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve in the foreground until Ctrl-C or SIGTERM (the `klaviyo-tui sandbox` command).

    uvicorn runs in a worker thread so the main thread owns the signals and can shut down
    quietly; `on_listening(base_url)` runs once connections are accepted.
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = SandboxServer(settings, host=host, port=port, log_level=log_level)
    try:
        server.start()
        _tune_gc()
        if on_listening is not None:
            on_listening(server.base_url)
        while not stop.is_set() and server.running:
            stop.wait(0.5)
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
