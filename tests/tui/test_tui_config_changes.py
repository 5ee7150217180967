"""Changes made by something else while the app is open (the CLI in another terminal, cron, an
editor): Home shows the config file as it is now and the runs made elsewhere, a save in the app
keeps what else changed in the file, and a file broken meanwhile is said once, never saved
over."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from textual.widgets import DataTable

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import RowState, RunSummary
from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.store.paths import config_path
from klaviyo_tui.tui import app as app_module
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens import home as home_module
from klaviyo_tui.tui.screens.home import HomeScreen
from tests.support.tui import SIZE, add_sandbox_connection, app_of, sample_csv, wait_until
from tests.tui.test_tui_builder import NOWHERE, checked, edit, save_export


def add_export_elsewhere(name: str, csv: Path) -> None:
    """What `klaviyo-tui exports create` does in another terminal: its own load, edit and save."""
    store = ConfigStore()
    store.put_segment(Segment(name, str(csv)))
    store.put_export(Export(name, "sandbox", "XyZ123", (name,), Mapping(email="email")))
    store.save()


def saved_vip(tmp_path: Path) -> Path:
    """A connection and the export `vip` of a sample file, saved before the app starts."""
    add_sandbox_connection(NOWHERE)
    csv = sample_csv(tmp_path / "customers.csv")
    save_export(csv)
    return csv


@pytest.fixture
def quick_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app_module, "CONFIG_POLL_S", 0.05)


@pytest.mark.usefixtures("quick_poll")
async def test_an_export_added_by_the_cli_shows_on_home(tmp_path: Path) -> None:
    saved_vip(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "vip" in app.config.exports)
        add_export_elsewhere("weekly", tmp_path / "customers.csv")  # the file saved_vip wrote
        await wait_until(pilot, lambda: "weekly" in app.config.exports)
        home = app.screen
        assert isinstance(home, HomeScreen)
        await wait_until(pilot, lambda: home.query_one("#exports", DataTable).row_count == 2)


async def test_a_save_in_the_builder_keeps_an_export_the_cli_added(tmp_path: Path) -> None:
    """The app has not looked at the file since (the poll is every 2 s): its save still
    applies the edit to the file as it is, instead of refusing or dropping `weekly`."""
    csv = saved_vip(tmp_path)
    results: list[Export | None] = []
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        builder = await edit(pilot, results)
        add_export_elsewhere("weekly", csv)
        await checked(pilot, builder)
        await pilot.click("#save")
        await wait_until(pilot, lambda: bool(results))
    assert results[0] is not None
    assert set(load_config().exports) == {"vip", "weekly"}


@pytest.mark.usefixtures("quick_poll")
async def test_a_config_broken_meanwhile_is_said_once_and_kept_as_it_is(tmp_path: Path) -> None:
    saved_vip(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "vip" in app.config.exports)
        broken = "[exports.vip\n[x/]y \x1b[31m\n"
        saved = config_path().with_name("config.toml.new")  # as an editor saves: a new file
        saved.write_text(broken, encoding="utf-8")  # put in place (never empty meanwhile)
        os.replace(saved, config_path())
        notices = app_of(pilot)._notifications
        await wait_until(pilot, lambda: len(notices) == 1)
        for _ in range(10):  # several polls later: still one notice
            await pilot.pause(0.06)
        assert len(notices) == 1
        [notice] = list(notices)
        assert "line 1" in notice.message and "as it was read before" in notice.message
        assert "vip" in app.config.exports  # what Home shows is kept
    assert config_path().read_text(encoding="utf-8") == broken  # nothing saved over it


async def test_a_run_made_elsewhere_shows_on_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(home_module, "HISTORY_POLL_S", 0.05)
    loads: list[int] = []
    real_load = home_module.load_last_runs

    def counted() -> home_module.LastRuns:
        loads.append(1)
        return real_load()

    monkeypatch.setattr(home_module, "load_last_runs", counted)
    saved_vip(tmp_path)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        home = app.screen
        assert isinstance(home, HomeScreen)
        table = home.query_one("#exports", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1 and bool(loads))
        for _ in range(10):  # reading the history is no write: it is not read again and again
            await pilot.pause(0.06)
        assert len(loads) <= 2
        with HistoryStore() as store:  # what `klaviyo-tui run vip` in cron writes
            run_id = store.start_run(export="vip", connection="sandbox", list_id="Y6nRLr")
            counts = {state.value: 0 for state in RowState} | {"imported": 7}
            store.finish_run(run_id, RunSummary(run_id, "vip", counts, 1.0, ExitCode.OK))
        await wait_until(pilot, lambda: [str(c) for c in table.get_row_at(0)][4:] == ["ok", "7"])
