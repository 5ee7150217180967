"""Write screenshots/*.svg of each screen from the real app driven through the demo flow.

Usage: python scripts/screenshots.py [OUT_DIR] [--cli-only]

`14-cli-exports-create` is the CLI: `exports create` asking its questions on a pseudo-terminal;
`15-export-sync` is the builder's Sync tab (numbered last so the older names stay).

Everything runs against the in-process sandbox of the demo (rate limits on, job delay) with
throwaway config, data and keyring; nothing is drawn by hand.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Input, Select

from klaviyo_tui.demo.launch import demo_environment
from klaviyo_tui.tui.app import DemoInfo, KlaviyoApp, make_app

SIZE = (80, 24)


async def until(pilot: Pilot[Any], condition: Callable[[], bool], tries: int = 3000) -> None:
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.05)
    raise RuntimeError("the app did not reach the expected state")


async def shoot(app: KlaviyoApp, out: Path, demo: DemoInfo) -> None:
    from textual.widgets._footer import FooterKey

    from klaviyo_tui.tui.screens.builder import ExportBuilderScreen
    from klaviyo_tui.tui.screens.history import HistoryScreen, RunDetailScreen
    from klaviyo_tui.tui.screens.home import HomeScreen
    from klaviyo_tui.tui.screens.run import RunScreen

    def save(name: str) -> None:
        app.clear_notifications()
        app.save_screenshot(filename=f"{name}.svg", path=str(out))
        print(f"wrote {out / name}.svg")

    def screen() -> Screen[object]:
        return app.screen

    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: bool(screen().query("#display-name")))
        await pilot.press("f2")
        await pilot.pause()
        save("01-connection-wizard")
        screen().query_one("#display-name", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: bool(screen().query("#accept")))
        await pilot.click("#accept")
        save("02-privacy-consent")
        await pilot.click("#accept-button")
        await until(
            pilot,
            lambda: bool(screen().query("#save")) and not screen().query_one("#save").disabled,
        )
        save("03-connection-verified")
        await pilot.click("#save")
        await until(
            pilot, lambda: isinstance(screen(), HomeScreen) and bool(app.config.connections)
        )
        await pilot.press("n")
        await until(pilot, lambda: isinstance(screen(), ExportBuilderScreen))
        builder = screen()
        assert isinstance(builder, ExportBuilderScreen)
        builder.query_one("#name", Input).value = "VIP customers"
        await pilot.click("#pick-list")
        await until(
            pilot,
            lambda: (
                bool(screen().query("#new-name"))
                and "create one" in str(screen().query_one("#status").render())
            ),
        )
        save("04-list-picker")
        await pilot.click("#create")
        await until(pilot, lambda: builder.list_id is not None and screen() is builder)
        builder.show_tab("tab-source")
        await pilot.pause()
        builder.load_source()
        await until(pilot, lambda: builder.frame is not None)
        builder.query_one("#filter", Input).value = "country = 'US' AND orders > 2"
        await until(pilot, lambda: "rows match" in str(builder.query_one("#count").render()))
        save("05-export-source")
        builder.show_tab("tab-columns")
        await pilot.pause()
        save("06-export-columns")
        builder.show_tab("tab-sync")  # new exports are incremental; read the list back too
        await pilot.pause()
        builder.query_one("#verify", Select).value = "full"
        cost = builder.query_one("#verify-cost")
        await until(pilot, lambda: "every member" in str(cost.render()))
        save("15-export-sync")
        builder.show_tab("tab-check")
        await until(pilot, lambda: "would be sent" in str(builder.query_one("#checks").render()))
        await pilot.pause()
        save("07-export-check")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(screen(), HomeScreen) and bool(app.config.exports))
        await pilot.press("r")
        await until(pilot, lambda: isinstance(screen(), RunScreen))
        run = screen()
        assert isinstance(run, RunScreen)
        await until(pilot, lambda: run.handle.progress.jobs_confirmed >= 1)
        save("08-run-live")
        await until(pilot, lambda: run.has_class("-finished"), tries=12000)
        await until(  # the footer is rebuilt a tick later: the finished run's keys
            pilot, lambda: any(k.action == "open_rejects" for k in run.query(FooterKey))
        )
        save("09-run-finished")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(screen(), HomeScreen))
        await pilot.pause(0.5)
        save("10-home")
        await pilot.press("h")
        await until(pilot, lambda: isinstance(screen(), HistoryScreen))
        await until(pilot, lambda: screen().query_one("#runs", DataTable).row_count > 0)
        save("11-history")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(screen(), RunDetailScreen))
        detail = screen()
        assert isinstance(detail, RunDetailScreen)
        await until(pilot, lambda: detail.record is not None)
        save("12-run-detail")
        await pilot.press("question_mark")
        await pilot.pause()
        save("13-help")
    del demo


def shoot_cli(out: Path, demo: DemoInfo) -> None:
    """`exports create` asking its questions: the real CLI on a pseudo-terminal, answered like a
    person would, its transcript drawn as a terminal with rich (text, never markup)."""
    from rich.console import Console
    from rich.text import Text

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from klaviyo_tui.services.connections import save_connection
    from klaviyo_tui.store import consent, paths
    from klaviyo_tui.store.config import Connection
    from klaviyo_tui.store.config_read import load_config
    from tests.support.cli import Terminal

    if not load_config(paths.config_path()).connections:  # --cli-only: no wizard ran before
        connection = Connection("sandbox", "Sandbox", base_url=demo.base_url)
        save_connection(paths.config_path(), consent.accept(connection), None)
    command = ("exports", "create", "weekly-us")
    term = Terminal(*command, env={"KLAVIYO_API_KEY": demo.api_key})
    term.answer("database URL: ", str(demo.sample_path))
    term.answer("every row): ", "orders > 2")
    term.answer("[email]: ", "")
    term.answer("[Y/n]: ", "")
    term.answer("(empty: none): ", "")
    term.answer("empty for none: ", "lifetime_value, vip")
    term.answer("without +code [US]: ", "")
    term.answer("or a list id [weekly-us]: ", "Weekly US")
    term.answer("create it? [Y/n]: ", "y")
    term.answer("only when started): ", "0 6 * * 1")
    term.answer("Save export 'weekly-us'? [Y/n]: ", "")
    if term.finish() != 0:
        raise RuntimeError(f"exports create failed:\n{term.transcript}")
    shown = term.transcript.replace(str(demo.sample_path.parent), "~/data")
    console = Console(record=True, width=100, file=open(os.devnull, "w"))  # noqa: SIM115
    console.print(Text(f"$ klaviyo-tui {' '.join(command)}\n{shown}".rstrip()))
    path = out / "14-cli-exports-create.svg"
    path.write_text(console.export_svg(title="klaviyo-tui exports create"), encoding="utf-8")
    print(f"wrote {path}")


def main() -> int:
    args = [a for a in sys.argv[1:] if a != "--cli-only"]
    out = Path(args[0] if args else "screenshots").resolve()
    out.mkdir(parents=True, exist_ok=True)
    with demo_environment(rows=25_000, job_delay=1.0) as demo:
        assert isinstance(demo, DemoInfo)
        if "--cli-only" not in sys.argv:
            asyncio.run(shoot(make_app(demo=demo), out, demo))
        shoot_cli(out, demo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
