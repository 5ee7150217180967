"""Quitting while a run is going asks first; quitting anyway stops the run (recorded as
interrupted, resumable) and the process ends with 130 and the command that resumes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.sandbox import SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.dialogs import ConfirmModal
from klaviyo_tui.tui.screens.run import RunScreen
from tests.support.engine import create_list
from tests.support.tui import SIZE, sample_csv, wait_screen, wait_until
from tests.tui.test_tui_flow import add_connection


async def test_quitting_during_a_run_asks_then_stops_it_resumably(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Jobs take 4 s in this sandbox, so the run is still going when we quit.
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=4.0)) as server:
        add_connection(server.base_url)
        store = ConfigStore()
        store.put_segment(Segment("big", str(sample_csv(tmp_path / "c.csv", rows=30_000))))
        list_id = create_list(server.base_url)
        store.put_export(Export("big run", "sandbox", list_id, ("big",), Mapping("email")))
        store.save()
        app = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: "big run" in app.config.exports)
            handle = app.start_run("big run")
            assert handle is not None
            await wait_screen(pilot, RunScreen)
            await wait_until(pilot, lambda: handle.progress.jobs_submitted > 0, tries=1500)
            await pilot.press("ctrl+q")
            await wait_screen(pilot, ConfirmModal)
            await pilot.press("n")  # keep running
            await wait_screen(pilot, RunScreen)
            assert handle.active and app.return_code is None
            await pilot.press("ctrl+q")
            await wait_screen(pilot, ConfirmModal)
            await pilot.press("y")
            await wait_until(pilot, lambda: app.return_code is not None, tries=3000)
        assert app.return_code == ExitCode.INTERRUPTED
        said = capsys.readouterr().err  # the app's last words, after its screen is gone
        assert "klaviyo-tui run 'big run' --resume" in said
        with HistoryStore.open_for_reading() as history:
            assert [r.status for r in history.runs("big run")] == ["interrupted"]
