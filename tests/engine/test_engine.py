"""The engine end to end against a real sandbox over loopback: every final state, 400-pointer
stripping, import errors over several pages, faults, dry runs, resume after a crash."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import pytest

from klaviyo_tui.demo.sample_data import generate_customers
from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.events import JobConfirmed, RowState, RunSummary, SettledBefore
from klaviyo_tui.klaviyo import KlaviyoClient
from klaviyo_tui.run.engine import run_export
from klaviyo_tui.run.progress import RunProgress
from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Config
from klaviyo_tui.store.history import HistoryStore
from tests.support.engine import (
    CorruptingTransport,
    create_list,
    import_jobs,
    interrupt_at,
    list_emails,
    list_identities,
    run_id_of,
    write_config,
    write_customers,
)


def customers(n: int, *, start: int = 0) -> list[dict[str, str]]:
    return [
        {
            "email": f"  Customer{i}@Example.com ",
            "first_name": f"First{i}",
            "phone": f"+1415555{i % 10000:04d}",
            "orders": str(i % 7),
        }
        for i in range(start, start + n)
    ]


def one_csv_export(
    tmp_path: Path, base_url: str, rows: list[dict[str, str]], list_id: str | None = None, **kw: Any
) -> tuple[Config, str]:
    """The customers as one CSV segment of export "customers" into a new (or given) list."""
    source = write_customers(tmp_path / "c.csv", rows)
    list_id = list_id or create_list(base_url)
    config = write_config(
        tmp_path / "config.toml", base_url=base_url, list_id=list_id, sources={"main": source}, **kw
    )
    return config, list_id


async def drain(
    export_name: str, config: Config, store: HistoryStore, **kwargs: object
) -> tuple[RunSummary, list[object]]:
    events: list[object] = []
    summary = None
    async for event in run_export(
        config.exports[export_name],
        config=config,
        api_key=DEMO_KEY,
        store=store,
        **kwargs,  # type: ignore[arg-type]
    ):
        events.append(event)
        if isinstance(event, RunSummary):
            summary = event
    assert summary is not None
    return summary, events


async def test_every_state_and_exact_list_contents(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    rows = customers(120)
    rows[5]["email"] = "not-an-email"  # invalid locally
    rows[9]["phone"] = "12"  # invalid phone: the row is sent without it
    rows[50]["email"] = rows[10]["email"].upper()  # duplicate of row 11, later row wins
    config, list_id = one_csv_export(
        tmp_path,
        sandbox.base_url,
        rows,
        mapping={
            "email": "email",
            "phone_number": "phone",
            "first_name": "first_name",
            "properties": ["orders"],
        },
    )
    summary, events = await drain("customers", config, store)
    counts = summary.counts
    assert counts[RowState.INVALID.value] == 1
    assert counts[RowState.DUPLICATE.value] == 1
    assert counts[RowState.IMPORTED.value] == 117
    assert counts[RowState.IMPORTED_WITH_WARNINGS.value] == 1
    assert counts[RowState.REJECTED.value] == 0
    assert counts[RowState.NOT_SENT.value] == 0
    assert summary.total_rows == 120
    assert summary.exit_code == ExitCode.OK
    expected = {r["email"].strip().lower() for i, r in enumerate(rows) if i != 5}
    assert sorted(list_emails(sandbox.base_url, list_id)) == sorted(expected)
    assert any(isinstance(e, JobConfirmed) for e in events)
    record = store.run(run_id_of(summary))
    assert record is not None and record.status == "ok"
    assert summary.rejects_path is not None and summary.rejects_path.exists()
    lines = list(csv.DictReader(io.StringIO(summary.rejects_path.read_text(encoding="utf-8"))))
    assert [(x["row"], x["state"]) for x in lines] == [
        ("6", "invalid"),
        ("10", "imported_with_warnings"),
        ("11", "duplicate"),
    ]
    invalid, warned, duplicate = lines
    assert (invalid["email"], invalid["first_name"], invalid["klaviyo_email"]) == (
        "not-an-email",
        "First5",
        "",
    )
    assert (warned["column"], warned["value"], warned["phone"]) == ("phone", "12", "12")
    assert warned["klaviyo_email"] == "customer9@example.com"
    assert warned["reason"].endswith("sent without it")
    assert (duplicate["orders"], duplicate["klaviyo_email"]) == ("3", "customer10@example.com")


async def test_klaviyo_400_pointers_strip_exactly_those_rows(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """A proxy corrupts two emails in the first job so the sandbox answers 400 with pointers."""
    rows = customers(30)
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, rows)
    corrupting = CorruptingTransport(["customer3@example.com", "customer17@example.com"])
    async with KlaviyoClient(sandbox.base_url, DEMO_KEY, transport=corrupting) as client:
        summary, _ = await drain("customers", config, store, client=client)
    assert corrupting.corrupted, "the proxy never saw an import"
    assert summary.counts[RowState.REJECTED.value] == 2
    assert summary.counts[RowState.IMPORTED.value] == 28
    assert summary.exit_code == ExitCode.PARTIAL
    emails = set(list_emails(sandbox.base_url, list_id))
    assert "customer3@example.com" not in emails and "customer17@example.com" not in emails
    assert len(emails) == 28
    failures = store.failures(run_id_of(summary))
    assert sorted(f.row for f in failures) == [4, 18]
    assert all(f.state == RowState.REJECTED for f in failures)


async def test_import_errors_over_several_pages(tmp_path: Path, store: HistoryStore) -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, faults={"rowfail": 0.1}, seed=3)
    with SandboxServer(settings) as server:
        rows = customers(3000)
        config, list_id = one_csv_export(tmp_path, server.base_url, rows)
        summary, _ = await drain("customers", config, store)
        rejected = summary.counts[RowState.REJECTED.value]
        assert rejected > 200  # > 2 pages of 100 import errors
        imported = summary.counts[RowState.IMPORTED.value]
        assert imported + rejected == 3000
        assert len(list_emails(server.base_url, list_id)) == imported
        failures = store.failures(run_id_of(summary))
        assert len({f.row for f in failures}) == rejected  # each tied to its own source row
        assert summary.exit_code == ExitCode.PARTIAL


@pytest.mark.slow
async def test_faults_still_deliver_exactly_the_valid_rows(
    tmp_path: Path, store: HistoryStore
) -> None:
    faults = {
        "429": 0.1,
        "500": 0.05,
        "502": 0.03,
        "503": 0.03,
        "reset": 0.03,
        "hang": 0.02,
        "cf403": 0.02,
    }
    settings = SandboxSettings(rate_limits=False, job_delay=0.0, faults=faults, seed=7)
    with SandboxServer(settings) as server:
        rows = customers(25_000)
        config, list_id = one_csv_export(
            tmp_path, server.base_url, rows, list_id=create_list_retrying(server.base_url)
        )
        client = KlaviyoClient(
            server.base_url,
            DEMO_KEY,
            timeout=httpx.Timeout(2.0),
            max_retries=12,
            backoff_base=0.05,
            backoff_cap=0.5,
        )
        async with client:
            summary, _ = await drain("customers", config, store, client=client)
        assert summary.exit_code == ExitCode.OK, summary.error
        assert summary.counts[RowState.IMPORTED.value] == 25_000
        expected = {r["email"].strip().lower() for r in rows}
        assert sorted(list_emails(server.base_url, list_id)) == sorted(expected)


def create_list_retrying(base_url: str) -> str:
    for _ in range(50):
        try:
            return create_list(base_url)
        except (httpx.HTTPError, KeyError, ValueError, AssertionError):
            continue
    raise AssertionError("could not create a list through the faults")


async def test_dry_run_sends_no_write(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    rows = customers(40)
    rows[0]["email"] = "bad"
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, rows)
    summary, _ = await drain("customers", config, store, dry_run=True)
    assert summary.dry_run
    assert summary.plan["jobs"] == 1
    assert summary.plan["profiles"] == 39
    assert summary.counts[RowState.INVALID.value] == 1
    sample = str(summary.plan["sample_payload"])
    assert "customer" not in sample.lower()  # values are masked
    assert import_jobs(sandbox.base_url) == []
    assert list_emails(sandbox.base_url, list_id) == []


async def test_missing_consent_and_segment_refuse_before_any_request(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, _ = one_csv_export(
        tmp_path, sandbox.base_url, customers(3), list_id="AbC123", consent=False
    )
    with pytest.raises(RunError, match="consent"):
        await drain("customers", config, store)
    assert store.runs() == []


async def test_unknown_list_fails_with_a_clear_message(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    config, _ = one_csv_export(tmp_path, sandbox.base_url, customers(3), list_id="Nope12")
    summary, _ = await drain("customers", config, store)
    assert summary.exit_code == ExitCode.USAGE
    assert summary.error is not None and "Nope12" in summary.error
    assert import_jobs(sandbox.base_url) == []


async def test_union_of_segments_with_filter(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    a = write_customers(tmp_path / "a.csv", customers(20))
    b = write_customers(tmp_path / "b.csv", customers(20, start=10))  # 10 overlap with a
    list_id = create_list(sandbox.base_url)
    config = write_config(
        tmp_path / "config.toml",
        base_url=sandbox.base_url,
        list_id=list_id,
        sources={"a": a, "b": b},
        filters={"b": "orders != '0'"},
        mapping={"email": "email", "properties": ["orders"]},
    )
    summary, _ = await drain("customers", config, store)
    kept_b = [i for i in range(10, 30) if i % 7 != 0]
    expected = {f"customer{i}@example.com" for i in range(20)} | {
        f"customer{i}@example.com" for i in kept_b
    }
    assert set(list_emails(sandbox.base_url, list_id)) == expected
    overlap = [i for i in kept_b if i < 20]
    assert summary.counts[RowState.DUPLICATE.value] == len(overlap)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "xlsx", "jsonl", "sqlite"])
async def test_every_source_format_ends_in_the_same_list(
    fmt: str, tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """The same 300 customers from each format: the same members, the same final states."""
    import sqlite3

    import pandas as pd

    from klaviyo_tui.demo.sample_data import customers_table

    table = customers_table(300, invalid_rate=0.05, seed=11)
    frame = table.to_pandas().astype("string")
    segment: dict[str, Path] = {}
    query = None
    if fmt in ("csv", "parquet", "xlsx", "jsonl"):
        path = generate_customers(tmp_path / f"c.{fmt}", 300, invalid_rate=0.05, seed=11, fmt=fmt)
    elif fmt == "tsv":
        path = tmp_path / "c.tsv"
        frame.to_csv(path, sep="\t", index=False)
    else:
        path = tmp_path / "c.sqlite"
        with sqlite3.connect(path) as db:
            frame.to_sql("customers", db, index=False)
        query = "SELECT * FROM customers"
    segment["main"] = path
    list_id = create_list(sandbox.base_url)
    config = write_config(
        tmp_path / "config.toml",
        base_url=sandbox.base_url,
        list_id=list_id,
        sources=segment,
        mapping={
            "email": "email",
            "phone_number": "phone",
            "first_name": "first_name",
            "properties": ["orders", "lifetime_value"],
        },
        queries={"main": query} if query else None,
    )
    summary, _ = await drain("customers", config, store)
    counts = summary.counts
    assert summary.total_rows == 300
    assert counts[RowState.INVALID.value] > 0
    imported = counts[RowState.IMPORTED.value] + counts[RowState.IMPORTED_WITH_WARNINGS.value]
    assert counts[RowState.IMPORTED_WITH_WARNINGS.value] > 0  # bad phones dropped from rows
    members = list_emails(sandbox.base_url, list_id)
    assert (
        len(members)
        == imported
        == 300 - counts[RowState.INVALID.value] - counts[RowState.DUPLICATE.value]
    )
    expected = set(pd.Series(frame["email"]).str.strip().str.lower())
    assert set(members) <= expected


async def test_rejects_file_round_trip(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """Invalid rows: fix them in the rejects CSV, run it as a segment source, same mapping."""
    rows = [dict(r, state="CA") for r in customers(30)]
    rows[4]["email"] = "customer4@@example.com"
    rows[7]["email"] = "@customer7"  # written "'@customer7": quoted against formulas
    mapping = {
        "email": "email",
        "phone_number": "phone",
        "first_name": "first_name",
        "location": {"region": "state"},
        "properties": ["orders"],
    }
    config, list_id = one_csv_export(tmp_path, sandbox.base_url, rows, mapping=mapping)
    summary, _ = await drain("customers", config, store)
    assert summary.counts[RowState.INVALID.value] == 2
    assert summary.rejects_path is not None
    text = summary.rejects_path.read_text(encoding="utf-8")
    header = text.splitlines()[0].split(",")
    # the source's own "state" column keeps its name; the file's is prefixed
    assert header[:7] == [
        "segment",
        "row",
        "reject_state",
        "column",
        "value",
        "reason",
        "klaviyo_email",
    ]
    assert header[7:] == ["email", "phone", "first_name", "state", "orders"]
    fixed = text.replace("customer4@@example.com", "customer4@example.com")
    fixed = fixed.replace("'@customer7", "customer7@example.com")
    source = tmp_path / "fixes.csv"
    source.write_text(fixed, encoding="utf-8")
    config = write_config(
        tmp_path / "fixes.toml",
        base_url=sandbox.base_url,
        list_id=list_id,
        sources={"fixes": source},
        filters={"fixes": "reject_state == 'invalid'"},
        mapping=mapping,
    )
    again, _ = await drain("customers", config, store)
    assert again.counts[RowState.IMPORTED.value] == 2
    assert again.total_rows == 2
    members = {m["email"]: m for m in list_identities(sandbox.base_url, list_id)}
    assert len(members) == 30
    assert members["customer4@example.com"]["phone_number"] == "+14155550004"


async def test_resume_counts_rows_with_warnings_once(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore
) -> None:
    """Interrupted after the first confirmed job, then resumed: the same final states as one
    uninterrupted run, and each warning recorded once."""
    rows = customers(25_000)
    for i, row in enumerate(rows):
        row["phone"] = "+14155550100" if i % 50 == 0 else f"+1212{200 + i // 10000}{i % 10000:04d}"
    config, list_id = one_csv_export(
        tmp_path, sandbox.base_url, rows, mapping={"email": "email", "phone_number": "phone"}
    )
    await interrupt_at(config, store, JobConfirmed)
    [record] = store.runs()
    assert record.status == "interrupted"
    summary, events = await drain("customers", config, store, resume=True)
    assert summary.run_id == record.id
    before = [e for e in events if isinstance(e, SettledBefore)]
    assert before, "the interrupted run had a confirmed batch"
    progress = RunProgress("customers")  # what both front ends' bars read
    for event in events:
        progress.apply(event)  # type: ignore[arg-type]
    assert progress.settled_before == sum(e.rows for e in before)
    assert progress.rows_settled == progress.rows_total == 25_000  # the bar ends full
    counts = summary.counts
    assert summary.exit_code == ExitCode.OK
    assert counts[RowState.IMPORTED_WITH_WARNINGS.value] == 500
    assert counts[RowState.IMPORTED.value] == 24_500
    assert summary.total_rows == 25_000
    warned = RowState.IMPORTED_WITH_WARNINGS
    warnings = [f for f in store.failures(record.id) if f.state is warned]
    assert sorted(f.row for f in warnings) == [i + 1 for i in range(0, 25_000, 50)]
    members = list_identities(sandbox.base_url, list_id)
    assert len(members) == 25_000
    assert not any(m.get("phone_number") == "+14155550100" for m in members)


# ---- one identifier, one email, at 100,000 rows ------------------------------------------------

SHARED_ROWS = 100_000


def households(n: int) -> list[dict[str, str]]:
    """Phones repeat every 10,000 rows for the first 90% (a phone shared by nine customers),
    then are unique; a few phones are unusable, a few rows repeat an earlier email (the same
    customer, not a different one), and four customers give the same external_id."""
    rows = []
    for i in range(n):
        shared = i < n * 9 // 10
        rows.append(
            {
                "email": f"customer{i}@example.com",
                "phone": f"+1415555{i % 10000:04d}" if shared else f"+1212555{i % 10000:04d}",
                "ext": f"cust-{i}",
            }
        )
    for i in range(7, n, 7919):
        rows[i]["phone"] = "12"
    for k in range(10):  # the last rows repeat emails of the unique-phone block
        rows[n - 1 - k]["email"] = rows[n * 9 // 10 + k]["email"].upper()
    for i in (n // 2 + 1, n * 9 // 10 + 100, n * 9 // 10 + 200, n - 50):
        rows[i]["ext"] = "walk-in"
    return rows


def expected_outcome(
    rows: list[dict[str, str]], policy: str
) -> tuple[dict[str, dict[str, str]], int, int]:
    """The rule, computed the obvious way in memory: (winning row per email, rows expected
    imported_with_warnings, rows expected invalid)."""
    winners: dict[str, dict[str, str]] = {}
    for row in rows:
        winners[row["email"].strip().lower()] = row
    bad_phone = {e for e, r in winners.items() if r["phone"] == "12"}
    if policy == "reject_row":
        winners = {e: r for e, r in winners.items() if e not in bad_phone}
    holders: dict[tuple[str, str], int] = {}
    for row in winners.values():
        for field in ("phone", "ext"):
            if row[field] != "12":
                holders[field, row[field]] = holders.get((field, row[field]), 0) + 1
    warned = sum(
        1
        for e, r in winners.items()
        if e in bad_phone
        or holders.get(("phone", r["phone"]), 0) > 1
        or holders["ext", r["ext"]] > 1
    )
    invalid = len(bad_phone) if policy == "reject_row" else 0
    return winners, warned, invalid


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["drop_field", "reject_row"])
async def test_shared_phones_never_cost_a_customer_their_place(
    tmp_path: Path, sandbox: SandboxServer, store: HistoryStore, policy: str
) -> None:
    rows = households(SHARED_ROWS)
    config, list_id = one_csv_export(
        tmp_path,
        sandbox.base_url,
        rows,
        mapping={"email": "email", "phone_number": "phone", "external_id": "ext"},
    )
    if policy == "reject_row":
        text = (tmp_path / "config.toml").read_text()
        text = text.replace(
            'default_region = "US"', 'default_region = "US"\non_invalid_field = "reject_row"'
        )
        (tmp_path / "config.toml").write_text(text)
        from klaviyo_tui.store.config_read import load_config

        config = load_config(tmp_path / "config.toml")
    assert config.exports["customers"].on_invalid_field == policy
    summary, _ = await drain("customers", config, store)
    winners, warned, invalid = expected_outcome(rows, policy)
    counts = summary.counts
    assert summary.exit_code == ExitCode.OK, summary
    assert counts[RowState.IMPORTED_WITH_WARNINGS.value] == warned > 89_000
    assert counts[RowState.IMPORTED.value] == len(winners) - warned
    assert counts[RowState.INVALID.value] == invalid
    assert counts[RowState.DUPLICATE.value] == 10
    assert counts[RowState.REJECTED.value] == counts[RowState.NOT_SENT.value] == 0
    assert summary.total_rows == SHARED_ROWS
    members = list_identities(sandbox.base_url, list_id)
    # every customer the policy sends is in the list, once
    assert sorted(m["email"] for m in members) == sorted(winners)
    # and no profile carries another customer's phone or external_id
    owners: dict[tuple[str, str], set[str]] = {}
    for row in winners.values():
        if row["phone"] != "12":
            owners.setdefault(("phone_number", row["phone"]), set()).add(row["email"].lower())
        owners.setdefault(("external_id", row["ext"]), set()).add(row["email"].lower())
    carried = 0
    for member in members:
        for field in ("phone_number", "external_id"):
            if field in member:
                carried += 1
                assert owners[field, member[field]] == {member["email"]}, member
    assert carried >= 2 * (SHARED_ROWS // 10) - 30  # unique identifiers are still sent
    history = store.failures(run_id_of(summary))
    shared = [f for f in history if "shared with another customer" in f.reason]
    assert len(shared) == sum(len(e) for e in owners.values() if len(e) > 1) > 89_000
    assert all(f.state is RowState.IMPORTED_WITH_WARNINGS for f in shared)
