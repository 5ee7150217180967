"""The rejects file written once the source is read (run/rejects.py, `draft`): it stands only
while no failure was written, changed or removed since it began; otherwise `finish` writes the
file again from the history."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from klaviyo_tui.events import Reject, RowState
from klaviyo_tui.run import rejects
from klaviyo_tui.store.history import HistoryStore


@pytest.fixture
def store() -> Iterator[HistoryStore]:
    s = HistoryStore()
    yield s
    s.close()


def _run_with_local_rejects(store: HistoryStore) -> int:
    run_id = store.start_run(export="e", connection="c", list_id="L")
    store.add_failures(
        run_id,
        [
            Reject(2, "s", "email", "nope", "not an email", RowState.INVALID, ""),
            Reject(
                5,
                "s",
                "phone_number",
                "12",
                "not a phone number; sent without it",
                RowState.IMPORTED_WITH_WARNINGS,
                "bo@x.com",
            ),
        ],
    )
    return run_id


def _states(path: Path | None) -> list[tuple[str, str]]:
    assert path is not None
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return [(line.split(",")[1], line.split(",")[2]) for line in lines]


def test_the_draft_stands_when_nothing_is_recorded_after_it(store: HistoryStore) -> None:
    run_id = _run_with_local_rejects(store)
    drafted_at = rejects.draft(store, run_id)
    placed = rejects.path_for(run_id).stat()
    store.add_failures(run_id, [])  # a batch Klaviyo confirmed in full writes nothing
    path = rejects.finish(store, run_id, drafted_at)
    assert path == rejects.path_for(run_id)
    assert path.stat().st_ino == placed.st_ino  # not written again
    assert _states(path) == [("2", "invalid"), ("5", "imported_with_warnings")]


def test_a_refusal_after_the_draft_is_in_the_file(store: HistoryStore) -> None:
    run_id = _run_with_local_rejects(store)
    drafted_at = rejects.draft(store, run_id)
    store.add_failures(
        run_id, [Reject(5, "s", "email", "", "Klaviyo: refused", RowState.REJECTED, "bo@x.com")]
    )
    path = rejects.finish(store, run_id, drafted_at)
    # the warned row takes its final state, and Klaviyo's refusal has its own line
    assert _states(path) == [
        ("2", "invalid"),
        ("5", "rejected_by_klaviyo"),
        ("5", "rejected_by_klaviyo"),
    ]


def test_a_failure_removed_after_the_draft_is_gone_from_the_file(store: HistoryStore) -> None:
    run_id = _run_with_local_rejects(store)
    drafted_at = rejects.draft(store, run_id)
    store.drop_failures(run_id, RowState.INVALID, [("s", 2)])
    assert _states(rejects.finish(store, run_id, drafted_at)) == [("5", "imported_with_warnings")]


def test_a_run_with_no_rejects_when_read_gets_a_file_for_a_later_one(store: HistoryStore) -> None:
    run_id = store.start_run(export="e", connection="c", list_id="L")
    drafted_at = rejects.draft(store, run_id)
    assert not rejects.path_for(run_id).exists()
    store.add_failures(
        run_id, [Reject(3, "s", "", "", "not in the list", RowState.NOT_IN_LIST, "a@x.com")]
    )
    assert _states(rejects.finish(store, run_id, drafted_at)) == [("3", "not_in_list")]


def test_no_draft_means_the_file_is_written_at_the_end(store: HistoryStore) -> None:
    run_id = _run_with_local_rejects(store)
    assert _states(rejects.finish(store, run_id, None)) == [
        ("2", "invalid"),
        ("5", "imported_with_warnings"),
    ]
