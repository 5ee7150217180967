"""Rows Klaviyo refused carry their mapped source values in the history and the rejects file,
like the rows this machine refused: the file can be fixed and imported again. A row whose email
changed in the source since the run is left with its email only (never another customer's)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from klaviyo_tui.events import RowState
from klaviyo_tui.run.refused_values import fill
from klaviyo_tui.sandbox import SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.history import HistoryStore
from tests.engine.test_engine import customers, drain, one_csv_export
from tests.support.engine import run_id_of, write_customers


async def test_refused_rows_carry_their_values_unless_the_row_changed(
    tmp_path: Path, store: HistoryStore
) -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, faults={"rowfail": 0.1}, seed=3)
    with SandboxServer(settings) as server:
        rows = customers(400)
        mapping = {"email": "email", "first_name": "first_name", "properties": ["orders"]}
        config, _ = one_csv_export(tmp_path, server.base_url, rows, mapping=mapping)
        summary, _ = await drain("customers", config, store)
    run_id = run_id_of(summary)
    assert summary.counts[RowState.REJECTED.value] > 10
    assert summary.rejects_path is not None
    lines = list(csv.DictReader(io.StringIO(summary.rejects_path.read_text(encoding="utf-8"))))
    refused = [line for line in lines if line["state"] == RowState.REJECTED.value]
    assert len(refused) == summary.counts[RowState.REJECTED.value]
    for line in refused:
        source = rows[int(line["row"]) - 1]
        assert (line["email"], line["first_name"], line["orders"]) == (
            source["email"],
            source["first_name"],
            source["orders"],
        )
    # the values again, after the source changed: the changed row keeps its email only
    changed = int(refused[0]["row"])
    rows[changed - 1] = {**rows[changed - 1], "email": "someone.else@example.com"}
    write_customers(tmp_path / "c.csv", rows)
    with store._tx() as db:
        db.execute("UPDATE failures SET source_values = NULL WHERE run_id = ?", (run_id,))
    filled = fill(store, run_id, config.exports["customers"], config.segments)
    assert filled == len(refused) - 1
    left = store.refused_without_values(run_id)
    assert list(left) == [("main", changed)]
