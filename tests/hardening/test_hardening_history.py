"""Damaged or busy state never crashes, never misleads, never loses data.

The history database may be garbage, truncated, another application's file, from a newer
version, read-only, or write-locked by another process; the rejects CSV may meet planted
symlinks and hostile cell text. Each case gets a precise `HistoryError` (or works), and the file
is left as it was unless it is certainly ours.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from klaviyo_tui.errors import AppError, ExitCode
from klaviyo_tui.events import Reject, RowState, RunSummary
from klaviyo_tui.run import rejects
from klaviyo_tui.store import paths
from klaviyo_tui.store.history import (
    HistoryBusy,
    HistoryCorrupt,
    HistoryError,
    HistoryForeign,
    HistoryNewer,
    HistoryReadOnly,
    HistoryStore,
)

KEY = "pk_" + "Ab3" * 12  # key-shaped: what a hostile server might echo back


def fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def summary(code: ExitCode = ExitCode.OK, **kw: object) -> RunSummary:
    return RunSummary(None, "weekly", {"imported": 1}, 0.1, code, **kw)  # type: ignore[arg-type]


def make_history(runs: int = 1) -> Path:
    """A real history with runs and failures, closed (WAL checkpointed into the file)."""
    with HistoryStore() as store:
        for n in range(runs):
            run_id = store.start_run(export="weekly", connection="c", list_id="L")
            bad = [Reject(i, "vip", "email", f"bad{i}-{n}" * 20, "invalid") for i in range(50)]
            store.add_failures(run_id, bad)
            store.finish_run(run_id, summary(ExitCode.PARTIAL))
    return paths.history_path()


def assert_never_advises_deleting(error: HistoryError) -> None:
    advice = f"{error} {error.hint}".lower()
    assert "move" not in advice
    assert "delete" not in advice
    assert "remove" not in advice
    assert "KLAVIYO_TUI_DATA" in error.hint


# ---- damaged and foreign files ----------------------------------------------------------------


@pytest.mark.parametrize("readonly", [False, True])
def test_garbage_is_called_damaged_and_advice_warns_about_the_journal(readonly: bool) -> None:
    path = paths.history_path()
    path.write_bytes(b"this is not sqlite" * 300)
    before = fingerprint(path)
    with pytest.raises(HistoryCorrupt) as caught:
        HistoryStore(readonly=readonly)
    assert "is damaged" in str(caught.value)
    assert "file is not a database" in str(caught.value)
    assert "Move the file aside" in caught.value.hint
    assert "resume journal" in caught.value.hint
    assert isinstance(caught.value, AppError)
    assert caught.value.exit_code == ExitCode.USAGE
    assert fingerprint(path) == before


@pytest.mark.parametrize("readonly", [False, True])
def test_truncated_history_is_called_damaged_not_a_traceback(readonly: bool) -> None:
    path = make_history(runs=5)
    data = path.read_bytes()
    assert len(data) > 8 * 4096  # several pages, so the cut loses real ones
    path.write_bytes(data[: len(data) // 2])
    before = fingerprint(path)

    def read_everything() -> None:  # damage shows at open, or at the first read that hits it
        with HistoryStore(readonly=readonly) as store:
            for record in store.runs():
                store.failures(record.id)

    with pytest.raises(HistoryCorrupt) as caught:
        read_everything()
    assert "malformed" in str(caught.value)
    assert "resume journal" in caught.value.hint
    assert fingerprint(path) == before


def another_apps_database(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")
    db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)")
    db.execute("INSERT INTO customers (email) VALUES ('a@example.com')")
    db.commit()
    db.close()


@pytest.mark.parametrize("readonly", [False, True])
def test_another_applications_database_is_named_and_never_touched(readonly: bool) -> None:
    path = paths.history_path()
    another_apps_database(path)
    before = fingerprint(path)
    with pytest.raises(HistoryForeign) as caught:
        HistoryStore(readonly=readonly)
    assert "not a klaviyo-tui history database: it has tables customers, orders" in str(
        caught.value
    )
    assert_never_advises_deleting(caught.value)
    assert fingerprint(path) == before
    with sqlite3.connect(path) as db:  # no tables created, no switch to WAL
        names = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        assert sorted(names) == ["customers", "orders"]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


@pytest.mark.parametrize("readonly", [False, True])
def test_newer_schema_says_upgrade_and_keeps_the_file(readonly: bool) -> None:
    path = make_history()
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 7")
    before = fingerprint(path)
    with pytest.raises(HistoryNewer) as caught:
        HistoryStore(readonly=readonly)
    assert "newer klaviyo-tui (schema 7" in str(caught.value)
    assert "Upgrade klaviyo-tui" in caught.value.hint
    assert_never_advises_deleting(caught.value)
    assert fingerprint(path) == before


def test_reading_a_missing_history_creates_nothing() -> None:
    path = paths.history_path()
    with HistoryStore.open_for_reading() as store:
        assert store.runs() == []
        assert store.run(1) is None
        assert store.failure_reasons(1) == []
        with pytest.raises(HistoryReadOnly):
            store.start_run(export="e", connection="c", list_id="L")
    assert not path.exists()


# ---- read-only file and folder ----------------------------------------------------------------


def _immutable(path: Path, on: bool) -> bool:
    flag = "+i" if on else "-i"
    chattr = shutil.which("chattr")
    if chattr is None:
        return False
    done = subprocess.run([chattr, flag, str(path)], capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture
def make_readonly() -> Iterator[Callable[[Path], None]]:
    """chmod a-w, and for root (whom permissions don't stop) the immutable attribute."""
    changed: list[tuple[Path, int, bool]] = []

    def apply(path: Path) -> None:
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode & ~0o222)
        flagged = os.geteuid() == 0 and _immutable(path, True)
        changed.append((path, mode, flagged))
        probe = path / ".probe" if path.is_dir() else path
        try:
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT, 0o600))
        except OSError:
            return
        pytest.skip("cannot make a file read-only here (root without the immutable attribute)")

    yield apply
    for path, mode, flagged in reversed(changed):
        if flagged:
            _immutable(path, False)
        path.chmod(mode)


def test_read_only_file_reads_and_refuses_a_run(make_readonly: Callable[[Path], None]) -> None:
    path = make_history(runs=2)
    before = fingerprint(path)
    make_readonly(path)
    with HistoryStore.open_for_reading() as store:
        records = store.runs()
        assert len(records) == 2
        assert store.failure_reasons(records[0].id) == [("invalid", "invalid", 50)]
    with pytest.raises(HistoryReadOnly) as caught:
        HistoryStore()
    assert "read-only" in str(caught.value)
    assert caught.value.exit_code is ExitCode.USAGE
    assert int(caught.value.exit_code) == 2
    assert "KLAVIYO_TUI_DATA" in caught.value.hint
    assert fingerprint(path) == before


def test_read_only_folder_reads_and_refuses_a_run(make_readonly: Callable[[Path], None]) -> None:
    path = make_history(runs=2)
    with HistoryStore() as store:  # one left "running" by a killed process
        killed = store.start_run(export="nightly", connection="c", list_id="L")
    assert sorted(p.name for p in path.parent.iterdir() if p.name.startswith("history")) == [
        "history.sqlite3"
    ]
    before = fingerprint(path)
    make_readonly(path.parent)
    with HistoryStore.open_for_reading() as store:
        assert len(store.runs()) == 3
        record = store.run(killed)
        assert record is not None
        assert record.status == "interrupted"
    with pytest.raises(HistoryReadOnly) as caught:
        HistoryStore()
    assert caught.value.exit_code == ExitCode.USAGE
    assert fingerprint(path) == before


# ---- another process holding the write lock ---------------------------------------------------

HOLDER = """
import os, sqlite3, sys
db = sqlite3.connect(os.path.join(os.environ["KLAVIYO_TUI_DATA"], "history.sqlite3"),
                     isolation_level=None)
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO runs (export, connection, list_id, started_at, status) "
           "VALUES ('other', 'c', 'L', '2024-01-01T00:00:00+00:00', 'running')")
print("holding", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def lock_holder_process(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """A second process, run as `klaviyo-tui run weekly`, inside a write transaction."""
    make_history()
    script = tmp_path / "bin" / "klaviyo-tui"
    script.parent.mkdir()
    script.write_text(HOLDER)
    proc = subprocess.Popen(
        [sys.executable, str(script), "run", "weekly"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "holding"
    yield proc
    assert proc.stdin is not None
    proc.stdin.close()
    proc.wait(timeout=10)


def test_reading_works_while_another_process_writes(
    lock_holder_process: subprocess.Popen[str],
) -> None:
    with HistoryStore.open_for_reading(timeout=0.2) as store:  # HistoryBusy if it had to wait
        records = store.runs()
        assert [r.export for r in records] == ["weekly"]  # not the uncommitted one
        assert store.failure_reasons(records[0].id) == [("invalid", "invalid", 50)]


def test_a_write_waits_says_who_holds_the_lock_and_gives_up_bounded(
    lock_holder_process: subprocess.Popen[str],
) -> None:
    heard: list[str] = []
    # Opening a writable store on an up-to-date file takes no lock, so this doesn't wait.
    store = HistoryStore(timeout=1.0, wait_notice=0.2, on_wait=heard.append)
    try:
        with pytest.raises(HistoryBusy) as caught:
            store.start_run(export="weekly", connection="c", list_id="L")
    finally:
        pid = lock_holder_process.pid
        who = f"another klaviyo-tui process is writing (pid {pid}: klaviyo-tui run weekly)"
        assert heard == [f"waiting for the history database: {who}"]
        assert who in str(caught.value)
        assert "gave up after 1s" in str(caught.value)
        assert caught.value.holder is not None
        assert caught.value.holder.pid == pid
        assert "move" not in caught.value.hint.lower()
    assert lock_holder_process.stdin is not None
    lock_holder_process.stdin.close()  # the holder exits: its transaction rolls back
    lock_holder_process.wait(timeout=10)
    run_id = store.start_run(export="weekly", connection="c", list_id="L")
    assert [r.id for r in store.runs()][0] == run_id
    assert len(heard) == 1  # a write that did not wait says nothing
    store.close()


# ---- redaction ---------------------------------------------------------------------------------


def test_key_echoed_by_klaviyo_never_lands_in_sqlite_csv_or_history_show(tmp_path: Path) -> None:
    from klaviyo_tui.cli.main import cli

    echoed = f"import error: bad phone (request had Authorization: Klaviyo-API-Key {KEY})"
    with HistoryStore() as store:
        run_id = store.start_run(export="weekly", connection="c", list_id="L")
        store.add_failures(
            run_id,
            [Reject(2, "vip", "phone_number", f"+1 {KEY}", echoed, RowState.REJECTED)],
        )
        store.finish_run(run_id, summary(ExitCode.PARTIAL, error=f"stopped: {echoed}"))
        [stored] = store.failures(run_id)
        assert KEY not in stored.reason
        assert "pk_…" in stored.reason
        written = rejects.write(store, run_id)
    assert written is not None
    assert KEY.encode() not in written.read_bytes()
    files = list(paths.history_path().parent.glob("history.sqlite3*"))
    assert files
    assert all(KEY.encode() not in f.read_bytes() for f in files)
    result = CliRunner().invoke(cli, ["history", "show", str(run_id)])
    assert result.exit_code == 0, result.output
    assert "bad phone" in result.output
    assert KEY not in result.output


# ---- the rejects CSV ---------------------------------------------------------------------------


def run_with_failure(value: str = "x@") -> int:
    with HistoryStore() as store:
        run_id = store.start_run(export="weekly", connection="c", list_id="L")
        store.add_failures(run_id, [Reject(1, "vip", "email", value, "not an email")])
    return run_id


def test_symlink_planted_at_the_rejects_path_is_replaced_not_followed(tmp_path: Path) -> None:
    run_id = run_with_failure()
    target = rejects.path_for(run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target.symlink_to(victim)
    with HistoryStore.open_for_reading() as store:
        assert rejects.write(store, run_id) == target
    assert victim.read_text() == "precious"
    assert not target.is_symlink()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text().startswith("segment,row,state,column,value,reason")


def test_symlink_planted_at_the_old_predictable_temp_path_is_not_followed(
    tmp_path: Path,
) -> None:
    run_id = run_with_failure()
    target = rejects.path_for(run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (target.parent / (target.name + ".tmp")).symlink_to(victim)
    with HistoryStore.open_for_reading() as store:
        rejects.write(store, run_id)
    assert victim.read_text() == "precious"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    leftovers = [p.name for p in target.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_empty_run_removes_a_planted_link_but_not_its_target(tmp_path: Path) -> None:
    with HistoryStore() as store:
        run_id = store.start_run(export="weekly", connection="c", list_id="L")
    target = rejects.path_for(run_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    target.symlink_to(victim)
    with HistoryStore.open_for_reading() as store:
        assert rejects.write(store, run_id) is None
    assert not target.is_symlink()
    assert victim.read_text() == "precious"


def test_a_file_at_the_chosen_path_is_refused_and_left_byte_identical(tmp_path: Path) -> None:
    run_id = run_with_failure()
    source = tmp_path / "customers.csv"
    source.write_bytes(b"email\nkeep@example.com\n")
    with HistoryStore.open_for_reading() as store, pytest.raises(rejects.RejectsFileExists) as e:
        rejects.write(store, run_id, source)
    assert source.read_bytes() == b"email\nkeep@example.com\n"
    assert str(source) in e.value.message and e.value.hint
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_overwrite_replaces_the_chosen_file(tmp_path: Path) -> None:
    run_id = run_with_failure()
    old = tmp_path / "old.csv"
    old.write_text("old")
    with HistoryStore.open_for_reading() as store:
        assert rejects.write(store, run_id, old, overwrite=True) == old
    assert old.read_text().startswith("segment,row,state,column,value,reason")
    assert stat.S_IMODE(old.stat().st_mode) == 0o600


def test_a_new_chosen_path_is_written_without_overwrite(tmp_path: Path) -> None:
    run_id = run_with_failure()
    out = tmp_path / "exports" / "new.csv"
    out.parent.mkdir()
    with HistoryStore.open_for_reading() as store:
        assert rejects.write(store, run_id, out) == out
    assert out.read_text().startswith("segment,row,state,column,value,reason")
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert [p.name for p in out.parent.iterdir()] == ["new.csv"]  # no temporary file left


@pytest.mark.parametrize("dangling", [False, True])
def test_a_link_at_the_chosen_path_is_refused_then_replaced_not_followed(
    tmp_path: Path, dangling: bool
) -> None:
    run_id = run_with_failure()
    victim = tmp_path / "victim.txt"
    if not dangling:
        victim.write_text("precious")
    link = tmp_path / "out.csv"
    link.symlink_to(victim)
    with HistoryStore.open_for_reading() as store:
        with pytest.raises(rejects.RejectsFileExists):
            rejects.write(store, run_id, link)
        assert link.is_symlink()
        assert rejects.write(store, run_id, link, overwrite=True) == link
    assert not link.is_symlink()
    assert link.read_text().startswith("segment,row,state,column,value,reason")
    assert victim.exists() is not dangling
    if not dangling:
        assert victim.read_text() == "precious"


def test_a_file_appearing_while_writing_is_not_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = run_with_failure()
    out = tmp_path / "exports" / "out.csv"
    out.parent.mkdir()
    with HistoryStore.open_for_reading() as store:
        read = store.failure_rows

        def read_then_race(ids: list[int]) -> object:
            out.write_text("someone else's")  # after the first check, before the name is taken
            return read(ids)

        monkeypatch.setattr(store, "failure_rows", read_then_race)
        with pytest.raises(rejects.RejectsFileExists):
            rejects.write(store, run_id, out)
    assert out.read_text() == "someone else's"
    assert [p.name for p in out.parent.iterdir()] == ["out.csv"]  # no temporary file left


def test_a_folder_at_the_chosen_path_is_an_os_error_not_a_question(tmp_path: Path) -> None:
    run_id = run_with_failure()
    with HistoryStore.open_for_reading() as store, pytest.raises(IsADirectoryError):
        rejects.write(store, run_id, tmp_path)


@pytest.mark.parametrize(
    ("raw", "cell"),
    [
        ("plain@example.com", "plain@example.com"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("  =1+1", "'  =1+1"),
        ("\u00a0@SUM(A1)", "'\u00a0@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("\n+1", "'\n+1"),
        ("red \x1b[31malert\x1b[0m", "red \\x1b[31malert\\x1b[0m"),
        ("\x9b31m", "\\x9b31m"),
        ("bell\x07 and \rcarriage", "bell\\x07 and \\x0dcarriage"),
        ("\x00=1", "\\x00=1"),
        ("two\nlines\tand tab", "two\nlines\tand tab"),
        ("a=b", "a=b"),
    ],
)
def test_safe_cell(raw: str, cell: str) -> None:
    assert rejects.safe_cell(raw) == cell


def test_terminal_escapes_in_data_are_written_visibly(tmp_path: Path) -> None:
    run_id = run_with_failure("\x1b]0;pwned\x07\x1b[2J=evil")
    with HistoryStore.open_for_reading() as store:
        written = rejects.write(store, run_id)
    assert written is not None
    data = written.read_bytes()
    assert b"\x1b" not in data
    assert b"\x07" not in data
    assert b"\\x1b]0;pwned\\x07\\x1b[2J=evil" in data
