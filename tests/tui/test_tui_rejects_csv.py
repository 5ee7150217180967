"""Rejects → CSV on the run detail: a file already at the chosen path (say the source CSV) is
replaced only after an explicit yes; anything else leaves it byte for byte as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import Reject, RowState, RunSummary
from klaviyo_tui.store.config import Connection
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.consent import accept
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.screens.dialogs import ConfirmModal
from klaviyo_tui.tui.screens.run_detail import RunDetailScreen
from tests.support.tui import SIZE, screen_of, wait_screen, wait_until

SOURCE = b"email,tier\nkeep@example.com,gold\n"
HEADER = "segment,row,state,column,value,reason"


def write_run() -> int:
    store = ConfigStore()
    store.put_connection(accept(Connection("acme", "Acme", base_url="http://127.0.0.1:9")))
    store.save()
    with HistoryStore() as history:
        run_id = history.start_run(export="vip", connection="acme", list_id="Y6nRLr")
        bad = Reject(3, "s", "email", "broken", "not an email", RowState.INVALID)
        history.add_failures(run_id, [bad])
        counts = {"imported": 1, "invalid": 1}
        history.finish_run(run_id, RunSummary(run_id, "vip", counts, 1.0, ExitCode.PARTIAL))
    return run_id


async def ask_to_write(pilot: Pilot[Any], run_id: int, path: Path) -> RunDetailScreen:
    """Open the run, press `w`, type `path` and Enter."""
    await pilot.app.push_screen(RunDetailScreen(run_id))
    detail = screen_of(pilot, RunDetailScreen)
    reasons = detail.query_one("#reasons", DataTable)
    await wait_until(pilot, lambda: reasons.row_count > 0)
    await pilot.press("w")
    field = detail.query_one("#csv-path", Input)
    assert pilot.app.focused is field
    field.value = str(path)
    await pilot.press("enter")
    return detail


def notes(pilot: Pilot[Any]) -> list[str]:
    return [str(n.message) for n in pilot.app._notifications]


@pytest.mark.parametrize("answer", ["n", "escape", "enter"])  # enter: "Keep it" has the focus
async def test_an_existing_file_is_kept_unless_the_user_says_replace(
    tmp_path: Path, answer: str
) -> None:
    run_id = write_run()
    source = tmp_path / "customers.csv"
    source.write_bytes(SOURCE)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        detail = await ask_to_write(pilot, run_id, source)
        await wait_screen(pilot, ConfirmModal)
        await pilot.press(answer)
        await wait_until(pilot, lambda: app.screen is detail)
        await wait_until(pilot, lambda: any("left as it was" in n for n in notes(pilot)))
        assert not any("Rejects written" in n for n in notes(pilot))
    assert source.read_bytes() == SOURCE


async def test_an_existing_file_is_replaced_after_yes(tmp_path: Path) -> None:
    run_id = write_run()
    old = tmp_path / "old-rejects.csv"
    old.write_bytes(SOURCE)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ask_to_write(pilot, run_id, old)
        await wait_screen(pilot, ConfirmModal)
        await pilot.press("y")
        await wait_until(pilot, lambda: any("Rejects written" in n for n in notes(pilot)))
    assert old.read_text().startswith(HEADER)
    assert "broken" in old.read_text()


async def test_a_link_at_the_path_is_asked_about_then_replaced_not_followed(
    tmp_path: Path,
) -> None:
    run_id = write_run()
    victim = tmp_path / "victim.txt"
    victim.write_bytes(SOURCE)
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await ask_to_write(pilot, run_id, link)
        await wait_screen(pilot, ConfirmModal)
        await pilot.click("#yes")
        await wait_until(pilot, lambda: any("Rejects written" in n for n in notes(pilot)))
    assert not link.is_symlink()
    assert link.read_text().startswith(HEADER)
    assert victim.read_bytes() == SOURCE


async def test_a_new_path_is_written_without_a_question(tmp_path: Path) -> None:
    run_id = write_run()
    out = tmp_path / "new.csv"
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        detail = await ask_to_write(pilot, run_id, out)
        await wait_until(pilot, lambda: any("Rejects written" in n for n in notes(pilot)))
        assert app.screen is detail
    assert out.read_text().startswith(HEADER)
