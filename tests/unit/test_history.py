"""history.py: runs, journal, failures and keyed per-export state; safe across threads and kills."""

from __future__ import annotations

import os
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.events import Reject, RowState, RunSummary
from klaviyo_tui.run.locking import export_lock
from klaviyo_tui.store import paths
from klaviyo_tui.store.history import (
    DUPLICATE_REASON,
    SCHEMA_VERSION,
    BatchRecord,
    HistoryError,
    HistoryStore,
)

KEY = "pk_" + "q" * 34


@pytest.fixture
def store() -> Iterator[HistoryStore]:
    s = HistoryStore()
    yield s
    s.close()


def summary(code: ExitCode, **kw: object) -> RunSummary:
    counts = {RowState.IMPORTED: 8, RowState.INVALID: 2}
    return RunSummary(None, "weekly", counts, 1.5, code, **kw)  # type: ignore[arg-type]


def test_files_are_private(store: HistoryStore) -> None:
    assert store.path == paths.history_path()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    store.keyed_hash("a@example.com")
    secret = store.path.parent / "row-hash.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_run_lifecycle(store: HistoryStore, tmp_path: Path) -> None:
    with export_lock("weekly"):
        run_id = store.start_run(export="weekly", connection="prod", list_id="L1")
        record = store.run(run_id)
        assert record is not None
        assert record.status == "running"
        assert record.ended_at is None
        assert store.resumable_run("weekly") is None  # alive: its process holds the lock
        rejects = tmp_path / "r.csv"
        error = f"boom with {KEY}"
        store.finish_run(
            run_id, summary(ExitCode.PARTIAL, rejects_path=rejects, error=error, jobs=3)
        )
    record = store.run(run_id)
    assert record is not None
    assert record.status == "partial"
    assert record.counts == {"imported": 8, "invalid": 2}
    assert record.exit_code == 1
    assert record.duration_s == 1.5
    assert record.jobs == 3
    assert record.rejects_path == str(rejects)
    assert record.error is not None
    assert KEY not in record.error
    assert record.ended_at is not None
    assert record.started.tzinfo is not None
    assert store.run(9999) is None


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (ExitCode.OK, "ok"),
        (ExitCode.PARTIAL, "partial"),
        (ExitCode.AUTH, "failed"),
        (ExitCode.UNAVAILABLE, "failed"),
        (ExitCode.INTERRUPTED, "interrupted"),
    ],
)
def test_status_from_exit_code(store: HistoryStore, code: ExitCode, status: str) -> None:
    run_id = store.start_run(export="e", connection="c", list_id="L")
    store.finish_run(run_id, summary(code))
    record = store.run(run_id)
    assert record is not None
    assert record.status == status


def test_runs_newest_first_and_resume(store: HistoryStore) -> None:
    ids = []
    for export in ["a", "b", "a"]:
        run_id = store.start_run(export=export, connection="c", list_id="L")
        store.finish_run(run_id, summary(ExitCode.OK))
        ids.append(run_id)
    assert [r.id for r in store.runs()] == ids[::-1]
    assert [r.id for r in store.runs("a")] == [ids[2], ids[0]]
    assert len(store.runs(limit=1)) == 1
    assert store.resumable_run("a") is None
    interrupted = store.start_run(export="a", connection="c", list_id="L")
    store.finish_run(interrupted, summary(ExitCode.INTERRUPTED))
    dry = store.start_run(export="a", connection="c", list_id="L", dry_run=True)
    store.finish_run(dry, summary(ExitCode.OK, dry_run=True))
    found = store.resumable_run("a")  # dry runs neither resume nor hide a resumable run
    assert found is not None
    assert found.id == interrupted
    with export_lock("a"):
        store.reopen_run(interrupted)
        record = store.run(interrupted)
        assert record is not None
        assert record.status == "running"
        assert record.ended_at is None
    record = store.run(interrupted)  # lock released without finish: it was killed
    assert record is not None
    assert record.status == "interrupted"


def test_new_run_marks_stale_running_rows(store: HistoryStore) -> None:
    stale = store.start_run(export="a", connection="c", list_id="L")
    with export_lock("a"):
        fresh = store.start_run(export="a", connection="c", list_id="L")
        statuses = {r.id: r.status for r in store.runs("a")}
    assert statuses == {stale: "interrupted", fresh: "running"}


def test_journal(store: HistoryStore) -> None:
    run_id = store.start_run(export="e", connection="c", list_id="L")
    store.batch_submitting(run_id, 0, "fp0", 100)
    store.batch_submitting(run_id, 1, "fp1", 50)
    store.batch_accepted(run_id, 0, "job-0")
    store.batch_rejected_rows(run_id, 1, 2)
    store.batch_accepted(run_id, 1, "job-1")
    store.batch_finished(run_id, 0, 98, 2)
    assert store.journal(run_id) == {
        0: BatchRecord(0, "fp0", 100, "job-0", "finished", 98, 2, 0),
        1: BatchRecord(1, "fp1", 50, "job-1", "accepted", 0, 0, 2),
    }
    # Resubmitted on resume: the resend strips (and records) its rejected rows afresh.
    store.batch_submitting(run_id, 1, "fp1b", 48)
    assert store.journal(run_id)[1] == BatchRecord(1, "fp1b", 48, None, "submitting", 0, 0, 0)
    assert store.journal(9999) == {}


def test_a_batch_ends_with_its_failures_or_not_at_all(store: HistoryStore) -> None:
    """A confirmed batch's failures and its "finished" are one write: a run stopped between two
    writes was resumed with the batch still open, asked Klaviyo again and recorded its 513
    rejected rows twice (a TUI walkthrough: cancel, then resume at once)."""
    run_id = store.start_run(export="e", connection="c", list_id="L")
    store.batch_submitting(run_id, 0, "fp0", 10)
    store.batch_accepted(run_id, 0, "job-0")
    rejected = [Reject(i, "s", "email", f"x{i}", "Klaviyo: no", RowState.REJECTED) for i in (2, 5)]
    with sqlite3.connect(store.path) as db:  # the second write fails, as a kill would stop it
        db.execute(
            "CREATE TRIGGER no_finish BEFORE UPDATE ON batches "
            "BEGIN SELECT RAISE(ABORT, 'stopped'); END"
        )
    with pytest.raises(Exception, match="stopped"):
        store.add_batch_failures(run_id, rejected, 0, (8, 2, 0))
    assert store.failures(run_id) == []  # nothing half-written
    assert store.journal(run_id)[0].state == "accepted"
    with sqlite3.connect(store.path) as db:
        db.execute("DROP TRIGGER no_finish")
    store.add_batch_failures(run_id, rejected, 0, (8, 2, 0))
    assert [f.row for f in store.failures(run_id)] == [2, 5]
    assert store.journal(run_id)[0] == BatchRecord(0, "fp0", 10, "job-0", "finished", 8, 2, 0)


def test_failures(store: HistoryStore) -> None:
    run_id = store.start_run(export="e", connection="c", list_id="L")
    bad_email = [Reject(i, "s", "email", f"x{i}", "not an email") for i in range(5)]
    dup = [Reject(9, "s", "email", "a@b.co", "duplicate", RowState.DUPLICATE)]
    kl = [Reject(3, "s", "phone_number", "+1", "Klaviyo: bad phone", RowState.REJECTED)] * 2
    store.add_failures(run_id, iter(bad_email + dup + kl))
    store.add_failures(run_id, [])
    assert store.failures(run_id)[:5] == bad_email
    assert store.failures(run_id, limit=2) == bad_email[:2]
    assert store.failures(run_id)[-1] == kl[0]
    assert store.failure_reasons(run_id) == [
        ("not an email", "invalid", 5),
        ("Klaviyo: bad phone", "rejected_by_klaviyo", 2),
        (DUPLICATE_REASON, "duplicate", 1),
    ]
    store.clear_failures(run_id, [RowState.INVALID, RowState.DUPLICATE])
    assert store.failures(run_id) == kl
    store.clear_failures(run_id, [])
    assert len(store.failures(run_id)) == 2


def test_failures_keep_email_source_values_and_warnings(store: HistoryStore) -> None:
    run_id = store.start_run(export="e", connection="c", list_id="L")
    values = (("Email", "ada@x.com"), ("Phone", "12"), ("Notes", "key pk_" + "a" * 30))
    warning = Reject(
        2,
        "s",
        "Phone",
        "12",
        "invalid phone number; sent without it",
        RowState.IMPORTED_WITH_WARNINGS,
        email="ada@x.com",
        source_values=values,
    )
    store.add_failures(run_id, [warning, Reject(3, "s", "email", "x", "bad")])
    got, plain = store.failures(run_id)
    assert (got.email, got.state, got.source_values[:2]) == (
        "ada@x.com",
        RowState.IMPORTED_WITH_WARNINGS,
        values[:2],
    )
    assert got.source_values[2][0] == "Notes" and "a" * 30 not in got.source_values[2][1]
    assert (plain.email, plain.source_values) == ("", ())
    store.clear_failures(run_id, [RowState.IMPORTED_WITH_WARNINGS])
    assert store.failures(run_id) == [plain]


def test_journal_counts_rows_confirmed_with_warnings(store: HistoryStore) -> None:
    run_id = store.start_run(export="e", connection="c", list_id="L")
    store.batch_submitting(run_id, 0, "fp0", 10)
    store.batch_accepted(run_id, 0, "job-0")
    store.batch_finished(run_id, 0, 9, 1, 4)
    assert store.journal(run_id)[0] == BatchRecord(0, "fp0", 10, "job-0", "finished", 9, 1, 0, 4)


SCHEMA_1 = (
    """CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, export TEXT NOT NULL,
    connection TEXT NOT NULL, list_id TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT,
    status TEXT NOT NULL, counts TEXT NOT NULL DEFAULT '{}', duration_s REAL, exit_code INTEGER,
    error TEXT, rejects_path TEXT, jobs INTEGER NOT NULL DEFAULT 0,
    dry_run INTEGER NOT NULL DEFAULT 0, pid INTEGER)""",
    "CREATE INDEX runs_by_export ON runs(export, id)",
    """CREATE TABLE batches (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    batch_no INTEGER NOT NULL, fingerprint TEXT NOT NULL, profiles INTEGER NOT NULL, job_id TEXT,
    state TEXT NOT NULL, imported INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (run_id, batch_no)) WITHOUT ROWID""",
    """CREATE TABLE failures (id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, row INTEGER NOT NULL,
    segment TEXT NOT NULL, column_name TEXT NOT NULL, value TEXT NOT NULL, reason TEXT NOT NULL,
    state TEXT NOT NULL)""",
    "CREATE INDEX failures_by_run ON failures(run_id, state)",
    """CREATE TABLE export_rows (export TEXT NOT NULL, list_id TEXT NOT NULL,
    key_hash BLOB NOT NULL, row_hash BLOB NOT NULL, first_run INTEGER NOT NULL,
    last_run INTEGER NOT NULL, PRIMARY KEY (export, list_id, key_hash)) WITHOUT ROWID""",
)


def _schema_1_file() -> Path:
    """A history written by the previous release (schema 1), with one run, batch and failure."""
    path = paths.history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as db:
        for statement in SCHEMA_1:
            db.execute(statement)
        db.execute(
            "INSERT INTO runs (export, connection, list_id, started_at, status) "
            "VALUES ('e', 'c', 'L', '2026-01-01T00:00:00+00:00', 'ok')"
        )
        db.execute(
            "INSERT INTO batches (run_id, batch_no, fingerprint, profiles, state, imported) "
            "VALUES (1, 0, 'fp', 5, 'finished', 5)"
        )
        db.execute(
            "INSERT INTO failures (run_id, row, segment, column_name, value, reason, state) "
            "VALUES (1, 7, 's', 'email', 'x@', 'bad', 'invalid')"
        )
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA user_version = 1")
    return path


def test_schema_1_is_read_as_it_is_and_migrated_by_a_writer() -> None:
    path = _schema_1_file()
    old = Reject(7, "s", "email", "x@", "bad")
    with HistoryStore.open_for_reading() as reader:  # never migrates
        assert reader.failures(1) == [old]
        assert reader.journal(1)[0].warned == 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    with HistoryStore() as store:
        assert store.failures(1) == [old]
        assert store.journal(1)[0] == BatchRecord(0, "fp", 5, None, "finished", 5, 0, 0, 0)
        store.add_failures(
            1, [Reject(8, "s", "email", "y@", "bad", email="", source_values=(("email", "y@"),))]
        )
        assert store.failures(1)[-1].source_values == (("email", "y@"),)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        columns = {row[1] for row in db.execute("PRAGMA table_info(failures)")}
        assert {"email", "source_values"} <= columns
    with HistoryStore() as again:  # an up-to-date file is used as it is
        assert len(again.failures(1)) == 2


def test_keyed_hash_and_confirmed_rows(store: HistoryStore) -> None:
    h = store.keyed_hash("a@example.com")
    assert len(h) == 32
    assert h == store.keyed_hash("a@example.com")
    assert h != store.keyed_hash("b@example.com")
    other = HistoryStore()  # same install, same secret
    assert other.keyed_hash("a@example.com") == h
    other.close()
    run1 = store.start_run(export="e", connection="c", list_id="L")
    run2 = store.start_run(export="e", connection="c", list_id="L")
    store.record_confirmed("e", "L", [(h, b"r1"), (b"k2", b"r2")], run1)
    store.record_confirmed("e", "L", [(h, b"r1-changed")], run2)
    assert store.confirmed_rows("e", "L") == {h: b"r1-changed", b"k2": b"r2"}
    assert store.confirmed_rows("e", "other-list") == {}
    with sqlite3.connect(store.path) as db:
        rows = db.execute("SELECT first_run, last_run FROM export_rows WHERE key_hash = ?", (h,))
        assert rows.fetchall() == [(run1, run2)]
    raw = store.path.read_bytes() + b"".join(
        p.read_bytes() for p in store.path.parent.glob("history.sqlite3-wal")
    )
    assert b"a@example.com" not in raw


def test_threads_and_a_second_connection(store: HistoryStore) -> None:
    run_id = store.start_run(export="e", connection="c", list_id="L")
    second = HistoryStore()
    errors: list[BaseException] = []

    def work(s: HistoryStore, base: int) -> None:
        try:
            for i in range(20):
                s.batch_submitting(run_id, base + i, f"fp{i}", 1)
                s.add_failures(run_id, [Reject(i, "s", "c", "v", f"r{base}")] * 5)
                s.batch_finished(run_id, base + i, 1, 0)
                s.runs()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(store if n % 2 else second, n * 100)) for n in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    second.close()
    assert errors == []
    assert len(store.journal(run_id)) == 80
    assert len(store.failures(run_id)) == 400


def test_unreadable_database_gives_clear_error() -> None:
    path = paths.history_path()
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(HistoryError, match="is damaged") as caught:
        HistoryStore()
    assert "Move the file aside" in caught.value.hint
    assert "resume journal" in caught.value.hint


def test_newer_schema_is_refused() -> None:
    path = paths.history_path()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(HistoryError, match="newer klaviyo-tui"):
        HistoryStore()


WRITER = """
import sys
from klaviyo_tui.store.history import DUPLICATE_REASON, HistoryStore
from klaviyo_tui.run.locking import export_lock
from klaviyo_tui.events import Reject

with export_lock("nightly"):
    store = HistoryStore()
    run_id = store.start_run(export="nightly", connection="c", list_id="L")
    print(run_id, flush=True)
    i = 0
    while True:
        store.batch_submitting(run_id, i, f"fp{i}", 10)
        store.add_failures(run_id, [Reject(i, "s", "email", "x", "bad")] * 50)
        store.batch_accepted(run_id, i, f"job{i}")
        i += 1
        if i == 3:
            print("ready", flush=True)
"""


@pytest.mark.slow
def test_survives_sigkill_mid_write() -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        run_id = int(proc.stdout.readline())
        assert proc.stdout.readline().strip() == "ready"
        with HistoryStore() as watcher:  # reads fine while another process writes
            record = watcher.run(run_id)
            assert record is not None
            assert record.status == "running"
            assert watcher.resumable_run("nightly") is None
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with HistoryStore() as store:
        with sqlite3.connect(store.path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        record = store.run(run_id)
        assert record is not None
        assert record.status == "interrupted"
        resumable = store.resumable_run("nightly")
        assert resumable is not None
        assert resumable.id == run_id
        journal = store.journal(run_id)
        assert len(journal) >= 3
        assert len(store.failures(run_id)) % 50 == 0  # whole transactions only
        with export_lock("nightly"):
            store.reopen_run(run_id)
            reopened = store.run(run_id)
            assert reopened is not None
            assert reopened.status == "running"


def test_stores_opening_a_fresh_file_at_once_do_not_fail(tmp_path: Path) -> None:
    """The app's screens and a run open the history together; the first switch to WAL locks."""
    import threading

    for round_no in range(30):
        path = tmp_path / f"h{round_no}.sqlite3"
        errors: list[BaseException] = []
        start = threading.Barrier(4)

        def open_and_write(
            path: Path = path,
            errors: list[BaseException] = errors,
            start: threading.Barrier = start,
        ) -> None:
            start.wait()
            try:
                store = HistoryStore(path)
                store.start_run(export="e", connection="c", list_id="L")
                store.close()
            except BaseException as error:  # collected for the assertion below
                errors.append(error)

        threads = [threading.Thread(target=open_and_write) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        assert len(HistoryStore(path).runs()) == 4


def test_rejects_csv_carries_email_source_values_and_final_states(store: HistoryStore) -> None:
    import csv

    from klaviyo_tui.run import rejects

    run_id = store.start_run(export="e", connection="c", list_id="L")
    values = (("Email", "ada@x.com"), ("Phone", "+1 415 555 0100"), ("value", "-12.5"))
    store.add_failures(
        run_id,
        [
            Reject(
                2,
                "s",
                "Phone",
                "+1 415 555 0100",
                "shared; sent without it",
                RowState.IMPORTED_WITH_WARNINGS,
                "ada@x.com",
                values,
            ),
            Reject(
                3,
                "s",
                "Phone",
                "=1+2",
                "bad; sent without it",
                RowState.IMPORTED_WITH_WARNINGS,
                "bo@x.com",
                (("Email", "bo@x.com"),),
            ),
            Reject(3, "s", "email", "", "Klaviyo: refused", RowState.REJECTED, "bo@x.com"),
        ],
    )
    path = rejects.write(store, run_id)
    assert path is not None
    with open(path, newline="", encoding="utf-8") as handle:
        lines = list(csv.reader(handle))
    # the source's "value" column keeps its name; the file's own is prefixed
    assert lines[0] == [
        "segment",
        "row",
        "state",
        "column",
        "reject_value",
        "reason",
        "klaviyo_email",
        "Email",
        "Phone",
        "value",
    ]
    ada, bo_warning, bo_rejected = lines[1:]
    # phones and signed numbers stay as they are (they cannot be formulas); "=1+2" is quoted
    assert ada[4] == "+1 415 555 0100" and ada[7:] == ["ada@x.com", "+1 415 555 0100", "-12.5"]
    assert bo_warning[4] == "'=1+2"
    # a warned row that Klaviyo then refused shows its final state
    assert bo_warning[2] == bo_rejected[2] == "rejected_by_klaviyo"
    assert bo_rejected[6:] == ["bo@x.com", "", "", ""]
    assert rejects.safe_cell("-2+3") == "'-2+3" and rejects.safe_cell("-7") == "-7"


def test_cli_shows_rows_imported_with_warnings(store: HistoryStore) -> None:
    from click.testing import CliRunner

    from klaviyo_tui.cli.main import cli
    from klaviyo_tui.cli.output import format_summary

    counts = {s.value: 0 for s in RowState} | {"imported": 7, "imported_with_warnings": 3}
    done = RunSummary(1, "weekly", counts, 1.0, ExitCode.OK)
    assert "7 imported, 3 imported with warnings, 0 invalid" in format_summary(done)
    assert format_summary(done).count("with warnings") == 1  # it was listed twice
    run_id = store.start_run(export="weekly", connection="c", list_id="L")
    store.finish_run(run_id, done)
    listing = CliRunner().invoke(cli, ["history"])
    assert listing.exit_code == 0, listing.output
    header, row = listing.output.splitlines()[:2]
    assert header.split()[-2:] == ["IMPORTED", "WARNINGS"] and row.split()[-2:] == ["7", "3"]
    assert "INVALID" not in header  # a state no listed run has is left out
    odd = counts | {"duplicate": 2, "unconfirmed": 1_500}
    other = store.start_run(export="weekly", connection="c", list_id="L")
    store.finish_run(other, RunSummary(other, "weekly", odd, 1.0, ExitCode.PARTIAL))
    header, newer, older = CliRunner().invoke(cli, ["history"]).output.splitlines()[:3]
    assert header.split()[-4:] == ["IMPORTED", "WARNINGS", "DUPLICATES", "UNCONFIRMED"]
    assert newer.split()[-4:] == ["7", "3", "2", "1,500"]
    assert older.split()[-4:] == ["7", "3", "0", "0"]
    assert len({len(line) for line in (header, newer)}) == 1  # the columns line up
    for year in (2026, 2027):  # long names are cut with a mark, not silently
        long = store.start_run(
            export=f"weekly-newsletter-europe-{year}", connection="c", list_id="L"
        )
        store.finish_run(long, RunSummary(long, "x", counts, 1.0, ExitCode.OK))
    long_listing = CliRunner().invoke(cli, ["history"]).output
    assert "weekly-news…-europe-2026" in long_listing and "weekly-news…-europe-2027" in long_listing
    hostile = store.start_run(export="x\x1b[31my[/]z", connection="c", list_id="L")  # text
    store.finish_run(hostile, RunSummary(hostile, "x", counts, 1.0, ExitCode.OK))
    header, row = CliRunner().invoke(cli, ["history"]).output.splitlines()[:2]
    assert "\x1b" not in row and "x\\x1b[31my[/]z" in row
    assert row[header.index("STARTED") :].startswith("20")  # the escape counts in the widths
    shown = CliRunner().invoke(cli, ["history", "show", str(run_id)])
    assert "imported_with_warnings" in shown.output and "3" in shown.output
