"""The history database's schema: the tables as the first release created them, and one
migration step per later change, each applied in one transaction.

`HistoryStore` (history.py) creates or upgrades a file through `upgrade` when it opens it for
writing; `inspect` (history_open.py) tells our own older files from foreign or newer ones first.
"""

from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 6
#: Schema 1, as the first release created it. Later versions are explicit steps in MIGRATIONS.
SCHEMA = (
    """CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        export TEXT NOT NULL, connection TEXT NOT NULL, list_id TEXT NOT NULL,
        started_at TEXT NOT NULL, ended_at TEXT, status TEXT NOT NULL,
        counts TEXT NOT NULL DEFAULT '{}', duration_s REAL, exit_code INTEGER, error TEXT,
        rejects_path TEXT, jobs INTEGER NOT NULL DEFAULT 0, dry_run INTEGER NOT NULL DEFAULT 0,
        pid INTEGER)""",
    "CREATE INDEX runs_by_export ON runs(export, id)",
    """CREATE TABLE batches (
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        batch_no INTEGER NOT NULL, fingerprint TEXT NOT NULL, profiles INTEGER NOT NULL,
        job_id TEXT, state TEXT NOT NULL, imported INTEGER NOT NULL DEFAULT 0,
        failed INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, batch_no)) WITHOUT ROWID""",
    """CREATE TABLE failures (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
        row INTEGER NOT NULL, segment TEXT NOT NULL, column_name TEXT NOT NULL,
        value TEXT NOT NULL, reason TEXT NOT NULL, state TEXT NOT NULL)""",
    "CREATE INDEX failures_by_run ON failures(run_id, state)",
    """CREATE TABLE export_rows (
        export TEXT NOT NULL, list_id TEXT NOT NULL, key_hash BLOB NOT NULL,
        row_hash BLOB NOT NULL, first_run INTEGER NOT NULL, last_run INTEGER NOT NULL,
        PRIMARY KEY (export, list_id, key_hash)) WITHOUT ROWID""",
)
#: Each step takes the file from the version before it (key - 1) to `key`, in one transaction.
#: Keep one step per change, so parallel changes merge as separate steps.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 2: confirmation. Batches remember the rows a 400 refused and the fields removed before
    # Klaviyo accepted them (to resume them), and how many rows were imported with warnings;
    # runs may have a verification read-back.
    2: (
        "ALTER TABLE batches ADD COLUMN warned INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE batches ADD COLUMN resend_log TEXT",
        """CREATE TABLE verifications (
            run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
            mode TEXT NOT NULL, checked INTEGER NOT NULL, in_list INTEGER NOT NULL,
            missing INTEGER NOT NULL, members INTEGER, verified_at TEXT NOT NULL)""",
    ),
    # 3: rejects people can act on: the matching email and the row's mapped source values (a
    # JSON object), so a rejects file can be fixed and imported again.
    3: (
        "ALTER TABLE failures ADD COLUMN email TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE failures ADD COLUMN source_values TEXT",
    ),
    # 4: sync modes (run/sync, store/export_state). Per export, the confirmed rows as compact
    # keyed hashes (sorted arrays in chunks, not a row per customer: 1M rows load in
    # milliseconds); per run, its sync figures, the hashes of its batches until they are
    # merged, and the journal of its list removals.
    4: (
        "ALTER TABLE runs ADD COLUMN sync TEXT",
        """CREATE TABLE sync_state (
            export TEXT NOT NULL, chunk INTEGER NOT NULL, keys BLOB NOT NULL,
            hashes BLOB NOT NULL, PRIMARY KEY (export, chunk))""",
        """CREATE TABLE sync_basis (
            export TEXT PRIMARY KEY, basis TEXT NOT NULL, entries INTEGER NOT NULL,
            run_id INTEGER, updated_at TEXT NOT NULL)""",
        """CREATE TABLE sync_runs (
            run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
            export TEXT NOT NULL, basis TEXT NOT NULL, settled INTEGER NOT NULL DEFAULT 0)""",
        "CREATE INDEX sync_runs_open ON sync_runs(export, settled)",
        """CREATE TABLE sync_batches (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            batch_no INTEGER NOT NULL, keys BLOB NOT NULL, hashes BLOB NOT NULL,
            known BLOB NOT NULL, rows BLOB NOT NULL, segments TEXT NOT NULL,
            PRIMARY KEY (run_id, batch_no))""",
        """CREATE TABLE sync_removals (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            batch_no INTEGER NOT NULL, state TEXT NOT NULL, profile_ids TEXT NOT NULL,
            keys BLOB NOT NULL, PRIMARY KEY (run_id, batch_no))""",
    ),
    # 5: mirror removals without reading the whole list every time (run/sync/members.py): per
    # export, its list's members as keyed hashes of their emails (16 bytes each, sorted) with
    # their profile ids (newline-separated), and the latest `joined_group_at` the read saw.
    5: (
        """CREATE TABLE sync_members (
            export TEXT PRIMARY KEY, list_id TEXT NOT NULL, keys BLOB NOT NULL,
            ids TEXT NOT NULL, joined_until TEXT, updated_at TEXT NOT NULL)""",
    ),
    # 6: an incremental run's first pass skips normalising the phones it has seen before
    # (run/sync/phonememo.py): per export, the keyed hash of each raw phone value and of what
    # it normalised to (sorted uint64 arrays in chunks, like sync_state).
    6: (
        """CREATE TABLE sync_phone_memo (
            export TEXT NOT NULL, chunk INTEGER NOT NULL, raw BLOB NOT NULL,
            normalised BLOB NOT NULL, PRIMARY KEY (export, chunk))""",
    ),
}
TABLES = ("batches", "export_rows", "failures", "runs")  # every version has these


def upgrade(db: sqlite3.Connection, found: int) -> None:
    """Create the schema (`found` 0) or bring it from version `found` to SCHEMA_VERSION.
    Call inside a write transaction: a failed step leaves the file as it was."""
    if found == 0:
        for statement in SCHEMA:
            db.execute(statement)
        found = 1
    for version in range(found + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS[version]:
            db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
