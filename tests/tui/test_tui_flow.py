"""End to end against a real sandbox: export builder (list created from the picker) → run → history;
cancel then resume."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, DataTable, Input, Label, Select, Static

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Connection, Export, Mapping, Segment
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.consent import accept
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.store.secrets import store_api_key
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.builder import ExportBuilderScreen
from klaviyo_tui.tui.screens.history import HistoryScreen, RunDetailScreen
from klaviyo_tui.tui.screens.home import HomeScreen
from klaviyo_tui.tui.screens.pickers import ListPickerScreen
from klaviyo_tui.tui.screens.run import RunScreen
from tests.support.tui import SIZE, sample_csv, screen_of, type_into, wait_screen, wait_until


def add_connection(base_url: str) -> None:
    store = ConfigStore()
    store.put_connection(accept(Connection("sandbox", "Sandbox", base_url=base_url)))
    store.save()
    store_api_key("sandbox", DEMO_KEY)


async def build_export(pilot, csv: Path, name: str = "vip", matching: int = 20) -> None:
    app = pilot.app
    await pilot.press("n")
    await wait_screen(pilot, ExportBuilderScreen)
    await type_into(pilot, "#name", name)
    await pilot.click("#pick-list")
    await wait_screen(pilot, ListPickerScreen)
    picker = app.screen
    await wait_until(pilot, lambda: "create one" in str(picker.query_one("#status").render()))
    assert picker.query_one("#new-name", Input).value == name
    await pilot.click("#create")
    await wait_screen(pilot, ExportBuilderScreen)
    builder = app.screen
    assert builder.list_id
    assert builder.list_name == name
    builder.show_tab("tab-source")
    await pilot.pause()
    await type_into(pilot, "#path", str(csv))
    await pilot.click("#load")
    await wait_until(pilot, lambda: builder.frame is not None)
    assert builder.query_one("#map-email", Select).value == "email"
    assert builder.query_one("#map-phone_number", Select).value == "phone"
    await type_into(pilot, "#filter", "tier == 'gold'")
    count = builder.query_one("#count", Static)
    await wait_until(pilot, lambda: "rows match" in str(count.render()), tries=800)
    assert f"{matching:,} rows match" in str(count.render())
    builder.show_tab("tab-check")
    await pilot.pause()
    checks = builder.query_one("#checks", Static)
    await wait_until(pilot, lambda: "valid" in str(checks.render()))
    assert "invalid emails" in str(checks.render())
    await pilot.click("#save")
    await wait_screen(pilot, HomeScreen)
    await wait_until(pilot, lambda: name in app.config.exports)


async def test_build_run_and_history(sandbox, tmp_path: Path) -> None:
    add_connection(sandbox.base_url)
    csv = sample_csv(tmp_path / "customers.csv")
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: bool(app.config.connections))
        await build_export(pilot, csv)
        export = load_config().exports["vip"]
        assert export.mapping.email == "email"
        assert load_config().segments["vip"].filter == "tier == 'gold'"
        # saving did not run it
        assert HistoryStore().runs("vip") == []
        await pilot.press("r")
        await wait_screen(pilot, RunScreen)
        run = screen_of(pilot, RunScreen)
        await wait_until(pilot, lambda: run.has_class("-finished"), tries=1500)
        summary = run.handle.progress.summary
        assert summary is not None
        assert summary.exit_code == ExitCode.OK
        assert summary.counts["imported"] == 16  # 20 gold rows, 4 broken emails
        assert "Finished" in str(run.query_one("#summary", Static).render())
        await pilot.press("h")
        await wait_screen(pilot, HistoryScreen)
        table = app.screen.query_one("#runs", DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)
        await pilot.press("enter")
        await wait_screen(pilot, RunDetailScreen)
        detail = app.screen
        reasons = detail.query_one("#reasons", DataTable)
        await wait_until(pilot, lambda: reasons.row_count > 0)
        await pilot.press("w")  # shows where the CSV goes, in a field the user can change
        path = detail.query_one("#csv-path", Input)
        assert app.focused is path
        assert path.value.endswith("run-1-rejects.csv")
        out = tmp_path / "rejects.csv"
        path.value = str(out)
        await pilot.press("enter")
        await wait_until(pilot, out.exists)
        assert "broken" in out.read_text()
        await wait_until(pilot, lambda: bool(app._notifications))
        assert any(str(out) in n.message for n in app._notifications)
        assert not detail.query_one("#resume", Button).display  # a completed run: no Resume


async def test_run_continues_when_leaving_and_cancel_then_resume(tmp_path: Path) -> None:
    # Jobs take 4 s in this sandbox, so the run is still going when we leave and cancel, even on
    # a loaded machine.
    settings = SandboxSettings(rate_limits=False, job_delay=4.0)
    with SandboxServer(settings) as server:
        await _cancel_then_resume(server.base_url, tmp_path)


async def _cancel_then_resume(base_url: str, tmp_path: Path) -> None:
    add_connection(base_url)
    csv = sample_csv(tmp_path / "customers.csv", rows=30_000)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: bool(app.config.connections))
        await build_export(pilot, csv, name="big", matching=15_000)
        handle = app.start_run("big")
        assert handle is not None
        await wait_screen(pilot, RunScreen)
        await pilot.press("escape")  # leave: the run keeps going
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: handle.progress.jobs_submitted > 0, tries=1500)
        assert handle.active
        app.start_run("big")  # comes back to the same run
        await wait_screen(pilot, RunScreen)
        assert screen_of(pilot, RunScreen).handle is handle
        await pilot.press("c")
        await pilot.press("y")
        await wait_until(pilot, lambda: not handle.active, tries=1500)
        assert handle.progress.interrupted
        await wait_until(pilot, lambda: app.screen.has_class("-finished"))
        title = str(app.screen.query_one("#run-title", Label).render())
        assert "cancelled" in title and "uploading" not in title
        await pilot.press("u")
        await wait_screen(pilot, RunScreen)
        resumed = app.runs["big"]
        assert resumed is not handle
        assert resumed.kind == "resume"
        await wait_until(pilot, lambda: not resumed.active, tries=3000)
        assert resumed.progress.summary is not None
        assert resumed.progress.summary.exit_code == ExitCode.OK, resumed.progress.log[-5:]


async def test_palette_offers_every_action_of_an_export(sandbox) -> None:
    from types import SimpleNamespace

    from klaviyo_tui.tui.palette import export_commands

    add_connection(sandbox.base_url)
    store = ConfigStore()
    store.put_segment(Segment("vip", "/data/customers.csv"))
    store.put_export(Export("vip", "sandbox", "Y6nRLr", ("vip",), Mapping("email")))
    store.save()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "vip" in app.config.exports)
        titles = {c.title for c in export_commands(app, "vip")}
        assert {"Run vip", "Edit vip", "History of vip", "Remove export vip"} <= titles
        assert not any(t.startswith(("Resume", "Retry", "Last run")) for t in titles)
        counts = {"imported": 5, "rejected_by_klaviyo": 2}
        app.last_runs["vip"] = SimpleNamespace(id=7, status="interrupted", counts=counts)
        titles = {c.title for c in export_commands(app, "vip")}
        assert {"Resume vip", "Retry failed rows of vip", "Last run of vip"} <= titles
        palette_titles = {c.title for c in app.get_system_commands(app.screen)}
        assert "Remove connection Sandbox" in palette_titles
        assert "Edit connection Sandbox" in palette_titles


async def test_no_color_is_respected(sandbox, monkeypatch) -> None:
    import re

    monkeypatch.setenv("NO_COLOR", "1")
    add_connection(sandbox.base_url)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        await wait_until(pilot, lambda: bool(app.config.connections))
        await pilot.press("question_mark")
        await pilot.pause()
        svg = app.export_screenshot()
    colours = set(re.findall(r"#([0-9a-fA-F]{6})\b", svg))
    assert colours
    chrome = {"28c840", "c5c8c6", "febc2e", "ff5f57"}  # the SVG's window frame, not the app
    coloured = {c for c in colours - chrome if len({c[0:2], c[2:4], c[4:6]}) > 1}
    assert not coloured, coloured  # greys only
