"""The words on screen say what is true: where keys go, how a run ended, which list, which file."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable, Label, Static

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import JobsPlanned, Phase, Reject, RetryOf, RunSummary
from klaviyo_tui.run.progress import RunProgress
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.store.config import Connection, Export, Mapping, Segment
from klaviyo_tui.store.config_store import ConfigStore
from klaviyo_tui.store.consent import accept
from klaviyo_tui.store.history import HistoryStore
from klaviyo_tui.tui.app import DemoInfo, make_app
from klaviyo_tui.tui.screens.connection import ConnectionFormScreen
from klaviyo_tui.tui.screens.history import RunDetailScreen
from klaviyo_tui.tui.screens.home import HomeScreen
from klaviyo_tui.tui.screens.run import phase_text, rate_text, summary_text, title_text
from klaviyo_tui.tui.screens.run_detail import default_csv_path
from tests.support.tui import SIZE, screen_of, wait_screen, wait_until

COUNTS = {"imported": 0, "invalid": 0, "rejected_by_klaviyo": 0, "duplicate": 0, "not_sent": 0}


@pytest.mark.parametrize("demo", [True, False])
async def test_key_storage_says_where_keys_go(demo: bool) -> None:
    info = DemoInfo("http://127.0.0.1:9", DEMO_KEY, Path("/tmp/x.csv")) if demo else None
    app = make_app(demo=info)
    async with app.run_test(size=SIZE) as pilot:
        await wait_screen(pilot, ConnectionFormScreen)
        backend = app.screen.query_one("#backend", Static)
        await wait_until(pilot, lambda: "Key storage:" in str(backend.render()))
        text = str(backend.render())
    wording = "the demo's in-memory keyring (keys vanish when the demo ends)"
    assert (wording in text) is demo
    assert "MemoryKeyring" not in text or not demo


def test_a_cancelled_run_no_longer_says_it_is_uploading() -> None:
    p = RunProgress("vip")
    p.apply(Phase("reading and uploading", "customers.csv"))
    assert "uploading" in phase_text(p)
    p.interrupted = True  # what the run driver records when the run is cancelled
    assert "uploading" not in phase_text(p) and "cancelled" in phase_text(p)


def test_a_resumed_run_that_sent_nothing_shows_no_rate() -> None:
    p = RunProgress("vip")
    p.apply(JobsPlanned(0, 0, 0))
    p.apply(RunSummary(2, "vip", dict(COUNTS), 0.4, ExitCode.OK))
    assert "profiles/s" not in rate_text(p)
    done = RunProgress("vip")
    done.confirmed = 500
    done.apply(RunSummary(3, "vip", COUNTS | {"imported": 500}, 2.0, ExitCode.OK))
    assert rate_text(done) == "250 profiles/s average"


def test_the_run_summary_names_the_rejects_file(tmp_path: Path) -> None:
    p = RunProgress("vip")
    rejects = tmp_path / "rejects" / "run-4-rejects.csv"
    counts = COUNTS | {"imported": 9, "invalid": 1}
    p.apply(RunSummary(4, "vip", counts, 1.0, ExitCode.PARTIAL, rejects_path=rejects))
    assert f"Rejects file: {rejects}" in summary_text(p).plain


def write_runs(rejects: Path | None = None) -> None:
    store = ConfigStore()
    store.put_connection(accept(Connection("acme", "Acme", base_url="http://127.0.0.1:9")))
    store.put_segment(Segment("vip", "/data/customers.csv"))
    mapping = Mapping(email="email")
    store.put_export(Export("vip", "acme", "Y6nRLr", ("vip",), mapping, list_name="VIP club"))
    store.save()
    history = HistoryStore()
    real = history.start_run(export="vip", connection="acme", list_id="Y6nRLr")
    history.add_failures(real, [Reject(2, "vip", "email", "x", "not an email")])
    counts = COUNTS | {"imported": 41, "invalid": 1}
    summary = RunSummary(real, "vip", counts, 3.0, ExitCode.PARTIAL, rejects_path=rejects, jobs=1)
    history.finish_run(real, summary)
    dry = history.start_run(export="vip", connection="acme", list_id="Y6nRLr", dry_run=True)
    summary = RunSummary(dry, "vip", dict(COUNTS), 1.0, ExitCode.OK, dry_run=True)
    history.finish_run(dry, summary)
    history.close()


async def test_home_shows_the_last_real_run_and_marks_a_newer_dry_run() -> None:
    write_runs()
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        home = app.screen
        assert isinstance(home, HomeScreen)
        await wait_until(pilot, lambda: "vip" in home.last_runs)
        await pilot.pause()
        row = [str(c) for c in home.query_one("#exports", DataTable).get_row("vip")]
    status, imported = row[4], row[5]
    assert status.startswith("partial\ndry run ")
    assert imported == "41"
    assert app.last_runs["vip"].dry_run is False


async def test_run_detail_names_the_list_the_file_and_counts_jobs(tmp_path: Path) -> None:
    rejects = tmp_path / "run-1-rejects.csv"
    write_runs(rejects)
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_until(pilot, lambda: bool(app.config.exports))
        await app.push_screen(RunDetailScreen(1))
        detail = screen_of(pilot, RunDetailScreen)
        await wait_until(pilot, lambda: detail.record is not None)
        await pilot.pause()
        title = str(detail.query_one("#detail-title", Label).render())
        summary = str(detail.query_one("#detail-summary", Static).render())
        assert "list VIP club (Y6nRLr)" in title
        assert "· 1 job" in summary and "1 jobs" not in summary
        assert f"Rejects file: {rejects}" in summary
        assert not detail.query_one("#resume").display  # finished, nothing to resume


def test_rejects_csv_goes_to_the_current_folder_or_home(tmp_path: Path) -> None:
    assert default_csv_path(7, tmp_path) == tmp_path / "run-7-rejects.csv"
    gone = tmp_path / "gone"  # a folder that cannot be written (here: no longer exists)
    assert default_csv_path(7, gone) == Path.home() / "run-7-rejects.csv"


def test_a_run_whose_sent_rows_were_all_refused_does_not_say_nothing_was_sent() -> None:
    """A retry of 17 rows Klaviyo refuses again: sent 17, rejected 17, none confirmed."""
    p = RunProgress("vip")
    p.sent = 17
    p.apply(RunSummary(4, "vip", COUNTS | {"rejected_by_klaviyo": 17}, 1.0, ExitCode.PARTIAL))
    assert rate_text(p) == "no profile confirmed"


def test_the_live_rate_is_over_seconds_not_over_a_burst_of_confirmations() -> None:
    """Ten jobs confirmed 0.05 s apart read 200,000 profiles a second; the rate (and the ETA)
    is over the last five seconds, and says nothing before a second has passed."""
    p = RunProgress("vip")
    p.total = 100_000
    for i in range(3):
        p.confirmed = 10_000 * i
        p.sample(0.05 * i)
    assert p.rate == 0.0 and p.eta_s is None
    p.sample(2.0)
    assert p.rate == 10_000.0  # 20,000 in 2 s
    p.confirmed = 50_000
    p.sample(8.0)
    assert p.rate == 5_000.0  # 30,000 in the 6 s from the last sample before the span
    assert "5,000 profiles/s · ETA 10s" in rate_text(p)


def test_a_retry_says_whose_rows_it_sends_again_even_when_resumed() -> None:
    """A resumed retry was titled "(resumed)" like any resume: it is a retry, of a named run."""
    p = RunProgress("vip")
    assert title_text(p, "resume").startswith("Run · vip (resumed) · ")
    p.apply(RetryOf(9))
    assert title_text(p, "resume").startswith(
        "Run · vip (retrying the failed rows of run 9, resumed)"
    )
    assert title_text(p, "retry").startswith("Run · vip (retrying the failed rows of run 9) · ")
    hostile = RunProgress("x\x1b[31m[/]")
    assert "\x1b" not in title_text(hostile, "") and "[/]" in title_text(hostile, "")
