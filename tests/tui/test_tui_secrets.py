"""A real-looking key goes through the wizard and a run, and shows up nowhere but the keyring.

Checked: every screenshot taken along the way, the snapshot SVGs in the repository, every file
under the config and data dirs, every notification, the run log and Python logging. The key is
shown masked (pk_…xxxx) where the user needs to recognise it.
"""

from __future__ import annotations

import logging
import secrets
import string
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.widgets import Button, Log, Static

from klaviyo_tui.redaction import mask_key
from klaviyo_tui.sandbox import ALL_SCOPES, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.store.secrets import SERVICE
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.connection import ConnectionFormScreen, VerifyScreen
from klaviyo_tui.tui.screens.consent import ConsentScreen
from klaviyo_tui.tui.screens.home import HomeScreen
from klaviyo_tui.tui.screens.run import RunScreen
from tests.support.tui import SIZE, create_lists, sample_csv, type_into, wait_screen, wait_until

SNAPSHOTS = Path(__file__).parent / "__snapshots__"
MARKER = "LEAKCHECK"


def leak_key() -> str:
    alphabet = string.ascii_letters + string.digits
    return "pk_" + MARKER + "".join(secrets.choice(alphabet) for _ in range(25))


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file()]


async def test_key_never_shown_or_written(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    isolated_dirs: Path,
    memory_keyring: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    key = leak_key()
    notes: list[str] = []
    original_notify = App.notify

    def notify(self: App[Any], message: str, *args: Any, **kwargs: Any) -> None:
        notes.append(f"{kwargs.get('title', '')} {message}")
        original_notify(self, message, *args, **kwargs)

    monkeypatch.setattr(App, "notify", notify)
    caplog.set_level(logging.DEBUG)
    shots: list[str] = []
    settings = SandboxSettings(keys={key: ALL_SCOPES}, rate_limits=False, job_delay=0.0)
    with SandboxServer(settings) as server:
        app = make_app()
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await wait_screen(pilot, ConnectionFormScreen)
            await type_into(pilot, "#display-name", "Leak check")
            await type_into(pilot, "#key", key)
            await type_into(pilot, "#base-url", server.base_url)
            shots.append(app.export_screenshot())  # the key is in the form, masked
            await pilot.click("#next")
            await wait_screen(pilot, ConsentScreen)
            await pilot.click("#accept")
            await pilot.click("#accept-button")
            await wait_screen(pilot, VerifyScreen)
            shots.append(app.export_screenshot())
            verify = app.screen
            save = verify.query_one("#save", Button)
            await wait_until(pilot, lambda: not save.disabled)
            shots.append(app.export_screenshot())
            status = str(verify.query_one("#status", Static).render())
            assert mask_key(key) in status  # the user can tell which key it is
            await pilot.click("#save")
            await wait_screen(pilot, HomeScreen)
            await wait_until(pilot, lambda: bool(app.config.connections))
            shots.append(app.export_screenshot())
            assert memory_keyring.passwords[(SERVICE, "leak-check")] == key

            [list_id] = create_lists(server.base_url, ["VIP"], key=key)
            csv = sample_csv(tmp_path / "customers.csv")

            def add_export(store: Any) -> None:
                store.put_segment(Segment("vip", str(csv)))
                store.put_export(Export("vip", "leak-check", list_id, ("vip",), Mapping("email")))

            await app.save_config(add_export)
            handle = app.start_run("vip")
            assert handle is not None
            await wait_screen(pilot, RunScreen)
            shots.append(app.export_screenshot())
            await wait_until(pilot, lambda: not handle.active, tries=3000)
            await pilot.pause()
            shots.append(app.export_screenshot())
            assert handle.progress.summary is not None, handle.progress.error
            run_log = "\n".join(app.screen.query_one(Log).lines)
            await pilot.press("h")
            await pilot.pause()
            shots.append(app.export_screenshot())
            notes.extend(n.message for n in app._notifications)

    for shot in shots:
        assert key not in shot
        assert MARKER not in shot
    assert all(MARKER not in note for note in notes)
    assert MARKER not in run_log
    assert MARKER not in caplog.text
    for path in files_under(isolated_dirs):
        assert MARKER.encode() not in path.read_bytes(), path
    for svg in files_under(SNAPSHOTS, Path(__file__).parents[2] / "screenshots"):
        assert MARKER.encode() not in svg.read_bytes(), svg
