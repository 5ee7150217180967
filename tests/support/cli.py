"""Shared set-up for the CLI tests: a sandbox on loopback, a consented connection whose key is in
the (in-memory) keyring, the CLI invoked in-process with click's runner, and readers of the
sandbox's lists through its public API."""

from __future__ import annotations

import csv
import os
import select
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner, Result

from klaviyo_tui.cli.main import cli
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.store.config import Connection
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.consent import accept
from klaviyo_tui.store.secrets import store_api_key
from tests.support.sandbox import _get, client


def config_path() -> Path:
    return Path(os.environ["KLAVIYO_TUI_CONFIG"])


def connect(base_url: str, name: str = "sandbox") -> None:
    """A saved, consented connection whose key is in the test keyring."""
    store = ConfigStore(config_path())
    store.put_connection(accept(Connection(name, name.title(), base_url=base_url)))
    store.save()
    store_api_key(name, DEMO_KEY)


def invoke(*args: str, stdin: str | None = None) -> Result:
    """The CLI in-process; standard input is not a terminal (as under cron)."""
    return CliRunner().invoke(cli, list(args), input=stdin)


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def customers(path: Path, n: int = 5) -> Path:
    """`contact` holds the emails (a name the builder does not know: found by the values)."""
    return write_csv(
        path,
        [
            {
                "contact": f"user{i}@example.com",
                "First": f"User{i}",
                "City": "Berlin",
                "orders": str(i),
            }
            for i in range(n)
        ],
    )


def account_lists(base_url: str) -> dict[str, str]:
    """name -> id of every list in the sandbox account, read over its HTTP API."""
    out: dict[str, str] = {}
    with client(base_url) as c:
        url: str | None = "/api/lists"
        while url:
            body = _get(c, url).json()
            out.update({item["attributes"]["name"]: item["id"] for item in body["data"]})
            url = body.get("links", {}).get("next")
    return out


class Terminal:
    """The real CLI in a subprocess on a pseudo-terminal, answered the way a person would.

    `transcript` is everything the terminal showed (typed answers are echoed by the terminal)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        import pty

        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "klaviyo_tui", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, "COLUMNS": "100", "KLAVIYO_API_KEY": DEMO_KEY, **(env or {})},
            close_fds=True,
        )
        os.close(slave)
        self.transcript = ""
        self._from = 0  # where the next expect starts looking

    def _read(self, timeout: float) -> bool:
        """Append what the terminal shows within `timeout`; False once it is closed."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # the child closed the terminal
            return False
        self.transcript += chunk.decode("utf-8", "replace").replace("\r\n", "\n")
        return bool(chunk)

    def expect(self, text: str, timeout: float = 60) -> None:
        """Wait (on the output itself) until `text` appears after the last answer."""
        deadline = time.monotonic() + timeout
        while text not in self.transcript[self._from :]:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"{text!r} never appeared; screen:\n{self.transcript}")
        self._from = self.transcript.index(text, self._from) + len(text)

    def answer(self, prompt: str, reply: str) -> None:
        self.expect(prompt)
        os.write(self.master, reply.encode() + b"\r")

    def finish(self, timeout: float = 60) -> int:
        """Read to the end; the exit code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.2):
            if self.proc.poll() is not None and not select.select([self.master], [], [], 0)[0]:
                break
        code = self.proc.wait(timeout=max(deadline - time.monotonic(), 1))
        os.close(self.master)
        return code
