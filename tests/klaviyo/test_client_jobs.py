"""Import jobs as the client reads them and the run confirms them: statuses (known, unknown,
missing), derived counts, polling that always ends, and import errors tied back to rows."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from klaviyo_tui.events import JobConfirmed, JobUnconfirmed, RowState
from klaviyo_tui.input.batching import Batch, BatchPacker
from klaviyo_tui.klaviyo import ImportErrorItem, ImportJob, JobState
from klaviyo_tui.klaviyo.models import parse_job
from klaviyo_tui.run.jobs import JobTracker, Tally
from klaviyo_tui.run.outcomes import map_import_errors
from klaviyo_tui.store.history import HistoryStore
from tests.support.client import Recorder, doc, job_obj, make

JOB_ID = "01J3Y8ZQ6W2XH1M4T7V5B0C9DA"


def job(status: object = "queued", **attrs: Any) -> ImportJob:
    obj = job_obj(JOB_ID, "queued", **attrs)
    if status is None:
        del obj["attributes"]["status"]
    else:
        obj["attributes"]["status"] = status
    return parse_job(obj)


# ---- statuses and counts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "state", "raw", "running"),
    [
        ("queued", JobState.QUEUED, "queued", True),
        ("PROCESSING", JobState.PROCESSING, "processing", True),
        ("complete", JobState.COMPLETE, "complete", False),
        ("cancelled", JobState.CANCELLED, "cancelled", False),
        ("failed", JobState.UNKNOWN, "failed", False),  # seen live, not in the spec
        (" Exploded ", JobState.UNKNOWN, "exploded", False),
        (None, JobState.UNKNOWN, "", False),  # missing: unknown, not queued
        (7, JobState.UNKNOWN, "7", False),
    ],
)
def test_job_status_known_or_unknown(
    status: object, state: JobState, raw: str, running: bool
) -> None:
    parsed = job(status)
    assert parsed.state is state
    assert parsed.status == raw
    assert parsed.running is running
    assert parsed.finished is not running
    assert parsed.unknown is (state is JobState.UNKNOWN)


@pytest.mark.parametrize(
    ("attrs", "counts"),
    [
        ({"total_count": 10, "completed_count": 7, "failed_count": None}, (7, 3, True)),
        ({"total_count": 10, "completed_count": None, "failed_count": 4}, (6, 4, True)),
        ({"total_count": 10, "completed_count": 12}, (12, 0, True)),  # never negative
        ({"total_count": 10, "completed_count": -3, "failed_count": -1}, (0, 0, True)),
        ({"total_count": 10, "failed_count": "2"}, (8, 2, True)),
        ({"total_count": 10}, (0, 0, False)),  # neither count: cannot be confirmed
    ],
)
def test_complete_job_counts_are_derived_and_never_negative(
    attrs: dict[str, Any], counts: tuple[int, int, bool]
) -> None:
    parsed = job("complete", **attrs)
    assert (parsed.completed_count, parsed.failed_count, parsed.counts_known) == counts


def test_running_job_counts_stay_as_sent() -> None:
    parsed = job("processing", total_count=10, completed_count=None, failed_count=None)
    assert (parsed.completed_count, parsed.failed_count, parsed.counts_known) == (0, 0, True)


def test_progress_key_changes_only_when_the_job_moves() -> None:
    a = job("processing", total_count=10, completed_count=3)
    assert a.progress_key == job("processing", total_count=10, completed_count=3).progress_key
    assert a.progress_key != job("processing", total_count=10, completed_count=4).progress_key
    assert a.progress_key != job("complete", total_count=10, completed_count=3).progress_key


# ---- polling -----------------------------------------------------------------------------------


async def test_poll_many_jobs_reads_the_listing_and_fetches_only_the_unlisted() -> None:
    ids = ["J1", "J2", "J3", "J4"]

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/profile-bulk-import-jobs":
            assert request.url.params["sort"] == "-created_at"
            assert request.url.params["page[size]"] == "100"
            listed = [
                job_obj("J1", "processing"),
                job_obj("OTHER", "queued"),
                job_obj("J2", "complete", total_count=10, completed_count=9, failed_count=1),
                job_obj("J3", "complete", total_count=10, completed_count=10),
            ]
            return doc({"data": listed})
        jid = path.rsplit("/", 1)[1]
        return doc({"data": job_obj(jid, "complete", total_count=10, completed_count=10)})

    rec = Recorder(handler)
    async with make(rec) as k:
        jobs = await k.poll_jobs(ids)
        few = await k.poll_jobs(["J2"])
    assert list(jobs) == ids
    assert jobs["J1"].running
    assert all(jobs[i].finished for i in ids[1:])
    assert jobs["J2"].failed_count == 1  # counts come from the listing itself
    paths = [r.url.path for r in rec.requests]
    assert paths.count("/api/profile-bulk-import-jobs") == 1
    assert "/api/profile-bulk-import-jobs/J4" in paths  # not listed: fetched on its own
    assert "/api/profile-bulk-import-jobs/J2" in paths[-1:]  # the single-id poll
    assert not {"/api/profile-bulk-import-jobs/J1", "/api/profile-bulk-import-jobs/J3"} & set(paths)
    assert few["J2"].completed_count == 10


def packed(profiles: list[dict[str, Any]], list_id: str = "Y6nRLr") -> Batch:
    packer = BatchPacker(list_id)
    for i, attrs in enumerate(profiles):
        payload = orjson.dumps({"type": "profile", "attributes": attrs})
        packer.add(payload, i + 1, str(attrs.get("email", "")).lower(), "vip")
    batch = packer.flush()
    assert batch is not None
    return batch


@pytest.mark.parametrize(
    ("final", "imported", "unconfirmed"),
    [
        ({"status": "failed"}, 0, 3),
        ({"status": None}, 0, 3),
        ({"status": "complete", "total_count": 3}, 0, 3),  # no counts at all
        ({"status": "complete", "total_count": 3, "completed_count": 3}, 3, 0),
    ],
)
async def test_a_job_in_an_unknown_status_ends_polling_unconfirmed(
    tmp_path: Path, final: dict[str, Any], imported: int, unconfirmed: int
) -> None:
    polls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal polls
        if request.method == "POST":
            return doc({"data": job_obj(JOB_ID, "queued", total_count=3)}, 202)
        polls += 1
        if polls < 3:
            return doc({"data": job_obj(JOB_ID, "processing", total_count=3)})
        obj = job_obj(JOB_ID, "x", **{k: v for k, v in final.items() if k != "status"})
        obj["attributes"]["status"] = final["status"]
        if final["status"] is None:
            del obj["attributes"]["status"]
        return doc({"data": obj})

    events: list[Any] = []
    batch = packed([{"email": f"r{i}@x.com"} for i in range(3)])
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        run_id = store.start_run(export="e", connection="c", list_id="Y6nRLr")
        tally = Tally()
        async with make(Recorder(handler)) as k:
            tracker = JobTracker(
                client=k,
                store=store,
                run_id=run_id,
                export_name="e",
                list_id="Y6nRLr",
                tally=tally,
                emit=events.append,
            )
            done = asyncio.Event()
            await (await tracker.start_upload(batch))
            done.set()
            await asyncio.wait_for(tracker.poll(done), timeout=30)
        journal = store.journal(run_id)
    assert tally.counts[RowState.IMPORTED] == imported
    assert tally.counts[RowState.UNCONFIRMED] == unconfirmed
    assert tally.counts[RowState.NOT_SENT] == 0
    assert polls == 3
    if unconfirmed:
        # The job id stays in the journal: a resumed run asks about the job again.
        assert (journal[0].state, journal[0].job_id) == ("unconfirmed", JOB_ID)
        (event,) = [e for e in events if isinstance(e, JobUnconfirmed)]
        assert (event.job_id, event.rows) == (JOB_ID, 3)
        assert not [e for e in events if isinstance(e, JobConfirmed)]
        with HistoryStore(tmp_path / "history.sqlite3") as store:
            failures = store.failures(run_id)
        assert sorted(f.row for f in failures) == [1, 2, 3]
        assert all(f.state is RowState.UNCONFIRMED and "--resume" in f.reason for f in failures)
    else:
        assert journal[0].state == "finished"


# ---- import errors back to rows ----------------------------------------------------------------


def error(payload: dict[str, Any] | None, detail: str = "bad") -> ImportErrorItem:
    return ImportErrorItem("invalid", "Invalid", detail, "/data/attributes/email", payload)


def test_import_errors_match_email_then_nested_then_phone_then_external_id() -> None:
    batch = packed(
        [
            {"email": "a@x.com"},
            {"email": "b@x.com"},
            {"email": "c@x.com", "phone_number": "+14155550100"},
            {"email": "d@x.com", "external_id": "cust-4"},
            {"email": "e@x.com", "phone_number": "+14155550105"},
        ]
    )
    errors = [
        error({"email": "A@X.com "}, "top-level email"),
        error({"type": "profile", "attributes": {"email": "b@x.com"}}, "nested email"),
        error({"phone_number": "+14155550100"}, "top-level phone"),
        error({"attributes": {"external_id": "cust-4"}}, "nested external id"),
        error({"attributes": {"phone_number": "+14155550105"}}, "nested phone"),
        error({"email": "a@x.com"}, "a second error for row 1"),
        error({"email": "nobody@x.com"}, "no such row"),
        error(None, "no payload"),
    ]
    rejects = map_import_errors(batch, errors, failed=8)
    itemised = {r.row: (r.value, r.reason) for r in rejects if r.row}
    assert itemised == {
        1: ("a@x.com", "Klaviyo: top-level email"),
        2: ("b@x.com", "Klaviyo: nested email"),
        3: ("+14155550100", "Klaviyo: top-level phone"),
        4: ("cust-4", "Klaviyo: nested external id"),
        5: ("+14155550105", "Klaviyo: nested phone"),
    }
    assert all(r.state is RowState.REJECTED and r.segment == "vip" for r in rejects if r.row)
    assert all(r.column == "email" for r in rejects if r.row)
    unitemised = [r for r in rejects if not r.row]
    assert len(unitemised) == 3  # the repeat, the stranger and the empty payload
    assert all("without an itemised import error" in r.reason for r in unitemised)


def test_a_receipt_matches_phones_through_given_identifiers() -> None:
    batch = packed([{"email": "a@x.com", "phone_number": "+1555"}, {"email": "b@x.com"}])
    receipt = batch.receipt()
    errors = [error({"phone_number": "+1555"})]
    assert [r.row for r in map_import_errors(receipt, errors, failed=1)] == [0]  # unitemised
    given = map_import_errors(
        receipt, errors, failed=1, identifiers={"phone_number": ["+1555", None]}
    )
    assert [(r.row, r.value) for r in given] == [(1, "+1555")]
