"""Shared helpers for the TUI tests: a fast sandbox, a sample file, and waiting on the app."""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from textual.css.query import NoMatches
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Input

from klaviyo_tui.sandbox import DEMO_KEY

if TYPE_CHECKING:
    from klaviyo_tui.tui.app import KlaviyoApp

SIZE = (100, 32)
ScreenT = TypeVar("ScreenT", bound=Screen[Any])


def app_of(pilot: Pilot[Any]) -> KlaviyoApp:
    """The pilot's app as the KlaviyoApp it is (so a test can use its attributes, typed)."""
    from klaviyo_tui.tui.app import KlaviyoApp

    app = pilot.app
    assert isinstance(app, KlaviyoApp), f"the app is a {type(app).__name__}"
    return app


def screen_of(pilot: Pilot[Any], kind: type[ScreenT]) -> ScreenT:
    """The current screen, asserted to be a `kind` (a test that reads its state says which)."""
    screen = pilot.app.screen
    assert isinstance(screen, kind), f"on {type(screen).__name__}, expected {kind.__name__}"
    return screen


async def wait_until(pilot: Pilot[Any], condition: Callable[[], bool], tries: int = 400) -> None:
    """Let the app process events until `condition()` holds (no fixed sleeps).

    Gives up after `tries` checks 20 ms apart, but never before 30 s have passed: on a loaded
    machine a screen can take seconds to appear, and a timeout is not what a test checks. A
    widget the condition asks for that is not mounted yet (NoMatches) counts as "not yet": a
    pushed screen composes on a later tick."""
    deadline = time.monotonic() + 30.0
    for attempt in itertools.count():
        try:
            if condition():
                return
        except NoMatches:
            pass
        if attempt >= tries and time.monotonic() > deadline:
            break
        await pilot.pause(0.02)
    raise AssertionError("condition not reached")


async def type_into(pilot: Pilot[Any], selector: str, text: str) -> None:
    widget = pilot.app.screen.query_one(selector, Input)
    widget.value = text
    await pilot.pause()


async def wait_screen(pilot: Pilot[Any], kind: type[Screen[Any]]) -> None:
    """Wait until a `kind` screen is on top and mounted (its widgets composed)."""
    await wait_until(
        pilot, lambda: isinstance(pilot.app.screen, kind) and pilot.app.screen.is_mounted
    )


async def run_wizard(
    pilot: Pilot[Any],
    base_url: str,
    key: str = DEMO_KEY,
    name: str = "Acme sandbox",
    after_verify: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Drive form → consent → verify → save from a freshly shown form."""
    from klaviyo_tui.tui.screens.connection import ConnectionFormScreen, VerifyScreen
    from klaviyo_tui.tui.screens.consent import ConsentScreen

    await wait_screen(pilot, ConnectionFormScreen)
    await type_into(pilot, "#display-name", name)
    await type_into(pilot, "#key", key)
    await type_into(pilot, "#base-url", base_url)
    await pilot.click("#next")
    await wait_screen(pilot, ConsentScreen)
    await pilot.pause()  # laid out before clicking: a click on a moving screen can hit the header
    await pilot.click("#accept")
    await pilot.click("#accept-button")
    await wait_screen(pilot, VerifyScreen)


def sample_csv(path: Path, rows: int = 40) -> Path:
    lines = ["email,phone,first_name,city,tier"]
    for i in range(rows):
        email = f"user{i}@example.com" if i % 10 != 3 else f"broken{i}"
        lines.append(
            # a phone of its own per row: shared phones are the pipeline's tests' business
            f"{email},+1415{200 + i // 10000:03d}{i % 10000:04d},Name{i},Springfield,"
            f"{'gold' if i % 2 else 'silver'}"
        )
    path.write_text("\n".join(lines) + "\n")
    return path


def add_sandbox_connection(base_url: str, key: str = DEMO_KEY, name: str = "sandbox") -> None:
    """A saved, consented connection whose key is in the (test) keyring."""
    from klaviyo_tui.store.config import Connection
    from klaviyo_tui.store.config_store import ConfigStore
    from klaviyo_tui.store.consent import accept
    from klaviyo_tui.store.secrets import store_api_key

    store = ConfigStore()
    store.put_connection(accept(Connection(name, "Sandbox", base_url=base_url)))
    store.save()
    store_api_key(name, key)


def create_lists(base_url: str, names: list[str], key: str = DEMO_KEY) -> list[str]:
    """Create lists in the sandbox over its HTTP API; returns their ids."""
    from tests.support.sandbox import client

    ids = []
    with client(base_url, key) as c:
        for name in names:
            body = {"data": {"type": "list", "attributes": {"name": name}}}
            response = c.post("/api/lists", json=body)
            response.raise_for_status()
            ids.append(response.json()["data"]["id"])
    return ids


def delete_list(base_url: str, list_id: str, key: str = DEMO_KEY) -> None:
    from tests.support.sandbox import client

    with client(base_url, key) as c:
        c.delete(f"/api/lists/{list_id}").raise_for_status()


class Terminal:
    """What a real terminal would show: every update the app writes, applied to a grid.

    The app's own render (`export_screenshot`) is always fresh; this catches what it never
    repaints (a toast left on screen after it expired).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.width, self.height = app.size
        self.grid = [[" "] * self.width for _ in range(self.height)]
        self.written: list[str] = []
        display = app._display

        def recording(screen: Any, renderable: Any) -> None:
            self.apply(renderable)
            display(screen, renderable)

        app._display = recording

    def apply(self, renderable: Any) -> None:
        from rich.cells import cell_len
        from rich.segment import ControlType

        if renderable is None:
            return
        console = self.app.console
        options = console.options.update(width=self.width, height=self.height)
        self.written.append(renderable.render_segments(console))
        x = y = 0
        for segment in console.render(renderable, options):
            if segment.control:
                for code in segment.control:
                    if code[0] == ControlType.CURSOR_MOVE_TO:
                        x, y = int(code[1]), int(code[2])
                continue
            for char in segment.text:
                if char == "\n":
                    x, y = 0, y + 1
                    continue
                if 0 <= y < self.height and 0 <= x < self.width:
                    self.grid[y][x] = char
                x += cell_len(char)

    def text(self) -> str:
        return "\n".join("".join(row) for row in self.grid)

    def line(self, y: int) -> str:
        return "".join(self.grid[y])


#: The mirror run `write_sync_run` records: its figures, read-back and removals.
SYNC_FIGURES: dict[str, object] = {
    "mode": "mirror",
    "incremental": True,
    "full_reason": None,
    "added": 120,
    "updated": 30,
    "unchanged": 24_030,
    "removed": 12,
    "leavers": 12,
    "subscribed": 150,
}


def write_sync_run(export: str = "vip", removals: int = 12) -> int:
    """A finished mirror run in the history (real SQLite): sync figures, a full read-back that
    found 2 rows missing, and `removals` profiles removed (the last request still planned)."""
    from klaviyo_tui.errors import ExitCode
    from klaviyo_tui.events import Reject, RowState, RunSummary
    from klaviyo_tui.store.history import HistoryStore, Verification

    store = HistoryStore()
    run = store.start_run(export=export, connection="acme", list_id="Y6nRLr")
    gone = Reject(7, export, "email", "gone@example.com", "not in the list", RowState.NOT_IN_LIST)
    store.add_failures(run, [gone])
    counts = {"imported": 148, "unchanged": 24_030, "not_in_list": 2, "invalid": 0}
    counts |= {"rejected_by_klaviyo": 0, "duplicate": 0, "not_sent": 0}
    store.finish_run(run, RunSummary(run, export, counts, 42.0, ExitCode.PARTIAL, jobs=1))
    store.set_run_sync(run, {**SYNC_FIGURES, "removed": removals, "leavers": removals})
    store.record_verification(
        run, Verification("full", 24_180, 24_178, 2, 24_500, "2026-07-01T09:31:00+00:00")
    )
    ids = [f"01PROFILE{i:05d}" for i in range(removals)]
    parts = [ids[s : s + 10] for s in range(0, removals, 10)]
    requests = [(part, b"\0" * 16 * len(part)) for part in parts]
    store.removals_planned(run, requests)
    for batch in range(len(requests) - 1):
        store.removal_state(run, batch, "done")
    store.close()
    return run
