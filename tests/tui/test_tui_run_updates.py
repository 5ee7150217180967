"""A run's updates redraw only what is seen.

Textual draws the screen just under the top one as if it were visible: each message that screen
handles ends in a repaint of it and of the whole top screen. A run publishes dozens of updates a
second, so Home under the run view (or the run view under another screen) must not handle them as
messages, and shows the latest figures once it is back on top. tui_bench.py measures the effect:
event-loop lag p99 and frames per second through a 1M-row run.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from textual.screen import Screen
from textual.widgets import Log, ProgressBar, Static

from klaviyo_tui.events import JobConfirmed, RowsRead
from klaviyo_tui.run.progress import RunProgress
from klaviyo_tui.store.config import Connection
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.consent import accept
from klaviyo_tui.tui.app import make_app
from klaviyo_tui.tui.runs import RunHandle
from klaviyo_tui.tui.screens.home import HomeScreen
from klaviyo_tui.tui.screens.run import RunScreen
from tests.support.tui import SIZE, wait_screen, wait_until


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each of our screens is composited (drawn) while the test runs."""
    counts: Counter[str] = Counter()
    for cls in (HomeScreen, RunScreen):
        draw = cls._compositor_refresh

        def counting(self: Screen[Any], draw: Any = draw) -> None:
            counts[type(self).__name__] += 1
            draw(self)

        monkeypatch.setattr(cls, "_compositor_refresh", counting)
    return counts


async def test_covered_screens_are_not_redrawn_for_each_run_update(drawn: Counter[str]) -> None:
    store = ConfigStore()
    store.put_connection(accept(Connection("acme", "Acme", base_url="http://127.0.0.1:9")))
    store.save()
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, HomeScreen)
        handle = RunHandle("vip", RunProgress("vip"))
        await app.push_screen(RunScreen(handle))
        run = app.screen
        rows = run.query_one("#rows", Static)

        async def updates(first: int) -> None:
            for read in range(first, first + 3000, 100):
                handle.progress.apply(RowsRead(read, read, 0, 0))
                app.run_updated.publish(handle)
                await pilot.pause()

        await pilot.pause()
        drawn.clear()
        await updates(100)
        assert drawn["HomeScreen"] == 0  # was one full redraw of Home and of the run view each
        assert drawn["RunScreen"] > 0
        await wait_until(pilot, lambda: "3,000" in str(rows.render()))

        await app.push_screen(Screen())  # an opaque screen over the run view
        for _ in range(3):  # its footer and scrollbars settle once
            await pilot.pause()
        drawn.clear()
        await updates(3100)
        assert drawn["RunScreen"] == 0
        app.pop_screen()
        await wait_until(pilot, lambda: "6,000" in str(rows.render()))  # the latest, once back


def test_rows_settled_count_rows_not_sent_and_rows_klaviyo_answered() -> None:
    p = RunProgress("vip")
    p.apply(RowsRead(100, 90, 6, 4, unchanged=30, total=200))
    assert p.rows_settled == 40  # 6 invalid + 4 duplicates + 30 unchanged; 60 to send
    p.apply(JobConfirmed("j1", 0, 50, 5))
    assert p.rows_settled == 95
    p.apply(RowsRead(200, 180, 12, 8, unchanged=60, total=200))
    assert p.rows_settled == 135  # 65 read and valid, not answered yet
    p.apply(JobConfirmed("j2", 1, 60, 5))
    assert p.rows_settled == p.rows_total == 200


async def test_the_bar_counts_rows_settled_once_the_first_pass_has_counted_them() -> None:
    app = make_app()
    async with app.run_test(size=SIZE) as pilot:
        handle = RunHandle("vip", RunProgress("vip"))
        await app.push_screen(RunScreen(handle))
        bar = app.screen.query_one("#overall", ProgressBar)
        assert bar.percentage is None  # the first pass is counting: an animated bar
        handle.progress.apply(RowsRead(100, 90, 6, 4, unchanged=30, total=200))
        app.run_updated.publish(handle)
        await wait_until(pilot, lambda: bar.percentage == 0.2)  # 40 of 200 settled
        handle.progress.apply(JobConfirmed("j1", 0, 60, 0))
        app.run_updated.publish(handle)
        await wait_until(pilot, lambda: bar.percentage == 0.5)


async def test_a_long_log_line_wraps_to_fit_at_80x24() -> None:
    p = RunProgress("vip")
    p.log.append("sending every row once: no earlier run of this export has confirmed rows yet")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        run = RunScreen(RunHandle("vip", p))
        await app.push_screen(run)
        log = run.query_one(Log)
        await wait_until(pilot, lambda: len(log.lines) == 2)
        assert log.lines[1] == "  yet"  # the rest, indented under its line
        assert log.virtual_size.width <= log.scrollable_content_region.width
        assert not log.show_horizontal_scrollbar
