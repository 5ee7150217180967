"""The parts of confirmation on their own: removing a refused field from a profile, rebuilding a
batch around the new payloads, pointers, verification plans and samples, the history schema
step, the export keys, and the CLI flags end to end (subprocess, real sandbox)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from klaviyo_tui.errors import ExitCode, RunError
from klaviyo_tui.events import RowState, RunSummary
from klaviyo_tui.input.batching import Batch, BatchPacker
from klaviyo_tui.run.options import RunOptions, VerifyPlan, parse_verify
from klaviyo_tui.run.outcomes import pointer_path
from klaviyo_tui.run.resend import from_original, rebatch, removable, strip_field
from klaviyo_tui.run.verify import Expected, Sample, email_hashes
from klaviyo_tui.sandbox import DEMO_KEY
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import ConfigError
from klaviyo_tui.store.config_read import load_config
from klaviyo_tui.store.history import SCHEMA_VERSION, HistoryStore, ResendLog, Verification
from klaviyo_tui.store.history_schema import SCHEMA
from tests.support.engine import create_list, write_config, write_customers


def profile(**attrs: object) -> bytes:
    return orjson.dumps({"type": "profile", "attributes": attrs})


# ---- removing a field ---------------------------------------------------------------------------


def stripped(payload: bytes, path: str) -> tuple[bytes, str]:
    result = strip_field(payload, path)
    assert result is not None, f"{path} was not found"
    return result


def test_strip_field_removes_top_level_and_nested_attributes() -> None:
    payload = profile(
        email="a@x.com", phone_number="+447911123456", location={"zip": "N1"}, properties={"t": 1}
    )
    no_phone, value = stripped(payload, "phone_number")
    assert value == "+447911123456"
    assert "phone_number" not in orjson.loads(no_phone)["attributes"]
    no_zip, zip_value = stripped(payload, "location/zip")
    assert zip_value == "N1"
    assert "location" not in orjson.loads(no_zip)["attributes"]  # emptied: gone too
    _, number = stripped(payload, "properties/t")
    assert number == "1"
    assert strip_field(payload, "external_id") is None  # nothing to remove
    assert strip_field(payload, "location/city") is None


def test_from_original_accepts_attributes_or_the_whole_resource() -> None:
    attrs = {"email": "a@x.com", "phone_number": "+14155550100"}
    for original in (attrs, {"type": "profile", "attributes": attrs}):
        built = from_original(original, "phone_number")
        assert built is not None
        assert orjson.loads(built[0]) == {"type": "profile", "attributes": {"email": "a@x.com"}}
    assert from_original(None, "phone_number") is None
    assert from_original({"email": "a@x.com"}, "phone_number") is None


@pytest.mark.parametrize(
    ("path", "policy", "expected"),
    [
        ("phone_number", "drop_field", True),
        ("external_id", "drop_field", True),
        ("location/zip", "drop_field", True),
        ("email", "drop_field", False),  # the matching key: the row is rejected
        ("", "drop_field", False),  # the whole profile
        ("phone_number", "reject_row", False),
    ],
)
def test_which_refusals_are_answered_by_removing_the_field(
    path: str, policy: str, expected: bool
) -> None:
    assert removable(path, policy) is expected


@pytest.mark.parametrize(
    ("pointer", "path"),
    [
        ("/data/attributes/phone_number", "phone_number"),
        ("/data/attributes/location/zip", "location/zip"),
        ("/data/attributes/profiles/data/3/attributes/phone_number", "phone_number"),
        ("/data/attributes", ""),
        ("/data", ""),
        (None, ""),
    ],
)
def test_pointer_path(pointer: str | None, path: str) -> None:
    assert pointer_path(pointer) == path


def test_rebatch_frames_payloads_exactly_like_the_packer() -> None:
    payloads = [profile(email=f"r{i}@x.com") for i in range(5)]
    packer = BatchPacker("Y6nRLr")
    packer.add_many(payloads[:3], [1, 2, 3], ["r0@x.com", "r1@x.com", "r2@x.com"], "a")
    packer.add_many(payloads[3:], [1, 2], ["r3@x.com", "r4@x.com"], "b")
    packed = packer.flush()
    assert packed is not None
    (rebuilt,) = rebatch(
        7, "Y6nRLr", payloads, packed.rows, packed.emails, ["a", "a", "a", "b", "b"]
    )
    assert rebuilt.body == packed.body
    assert rebuilt.number == 7
    assert rebuilt.payloads == payloads
    assert rebuilt.segments == packed.segments


# ---- verification -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "plan"),
    [
        (None, VerifyPlan("off")),
        ("off", VerifyPlan("off")),
        ("FULL", VerifyPlan("full")),
        ("sample:250", VerifyPlan("sample", 250)),
    ],
)
def test_parse_verify(spec: str | None, plan: VerifyPlan) -> None:
    assert parse_verify(spec) == plan


@pytest.mark.parametrize("spec", ["sample", "sample:0", "sample:-3", "all", "sample:x"])
def test_parse_verify_refuses_with_what_is_accepted(spec: str) -> None:
    with pytest.raises(RunError) as caught:
        parse_verify(spec)
    assert caught.value.exit_code == ExitCode.USAGE
    assert "sample:N" in caught.value.hint


def packed(n: int) -> Batch:
    packer = BatchPacker("Y6nRLr")
    emails = [f"r{i}@x.com" for i in range(n)]
    packer.add_many([profile(email=e) for e in emails], list(range(1, n + 1)), emails, "s")
    batch = packer.flush()
    assert batch is not None
    return batch


def test_expected_finds_exactly_the_rows_not_among_the_members() -> None:
    batch = packed(50)
    expected = Expected()
    expected.add(batch, list(range(50)), [i == 9 for i in range(50)])
    members = email_hashes([f" R{i}@X.com" for i in range(50) if i not in (9, 30)])
    assert expected.missing(members) == [("s", 10, True), ("s", 31, False)]
    assert expected.count == 50


def test_sample_keeps_at_most_n_rows_drawn_from_everything_added() -> None:
    sample = Sample(10, seed=4)
    for _ in range(20):
        batch = packed(100)
        sample.add(batch, list(range(100)), [False] * 100)
    assert sample.count == 2000
    assert len(sample.items) == 10
    rows = [row for _, _, row, _ in sample.items]
    assert all(1 <= r <= 100 for r in rows)
    small = Sample(10, seed=4)
    small.add(packed(3), [0, 1, 2], [False, True, False])
    assert sorted(small.items) == [
        ("r0@x.com", "s", 1, False),
        ("r1@x.com", "s", 2, True),
        ("r2@x.com", "s", 3, False),
    ]


def test_email_hashes_are_the_pipelines_normalised_hashes() -> None:
    a, b = email_hashes(["  Ann@Example.com ", "ann@example.com"])
    assert a == b and email_hashes(["bob@example.com"])[0] != a
    assert email_hashes(["x@y.z"]).dtype == np.uint64


# ---- options and export keys --------------------------------------------------------------------


def write_export(path: Path, **keys: object) -> Path:
    lines = [
        "[exports.e]",
        'connection = "c"',
        'list_id = "Y6nRLr"',
        'segments = ["s"]',
        *[f"{k} = {json.dumps(v)}" for k, v in keys.items()],
        "[exports.e.mapping]",
        'email = "email"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_export_keys_set_the_run_options(tmp_path: Path) -> None:
    config = load_config(
        write_export(tmp_path / "c.toml", confirm_timeout_minutes=5, verify="sample:40")
    )
    export = config.exports["e"]
    options = RunOptions.of(export, None, None)
    assert options.confirm_timeout_s == 300
    assert options.verify == VerifyPlan("sample", 40)
    assert options.policy == "drop_field"
    overridden = RunOptions.of(export, 0.5, "full")  # the command line wins
    assert (overridden.confirm_timeout_s, overridden.verify.kind) == (30, "full")
    default = RunOptions.of(load_config(write_export(tmp_path / "d.toml")).exports["e"], None, None)
    assert (default.confirm_timeout_s, default.verify.kind) == (1800, "off")


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ({"verify": "sometimes"}, "not a verification mode"),
        ({"confirm_timeout_minutes": 0}, "positive number of minutes"),
        ({"confirm_timeout_minutes": "soon"}, "positive number of minutes"),
    ],
)
def test_bad_export_keys_name_the_key(tmp_path: Path, keys: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write_export(tmp_path / "c.toml", **keys))
    assert words in str(caught.value) and "[exports.e]" in str(caught.value)


def test_a_bad_timeout_on_the_command_line_is_a_usage_error(tmp_path: Path) -> None:
    export = load_config(write_export(tmp_path / "c.toml")).exports["e"]
    with pytest.raises(RunError) as caught:
        RunOptions.of(export, float("nan"), None)
    assert caught.value.exit_code == ExitCode.USAGE


# ---- the history schema step ---------------------------------------------------------------------


def test_a_schema_1_history_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as db:
        for statement in SCHEMA:
            db.execute(statement)
        db.execute("PRAGMA user_version = 1")
        db.execute(
            "INSERT INTO runs (export, connection, list_id, started_at, status) "
            "VALUES ('e', 'c', 'L', '2026-01-01T00:00:00+00:00', 'ok')"
        )
        db.execute(
            "INSERT INTO batches (run_id, batch_no, fingerprint, profiles, job_id, state) "
            "VALUES (1, 0, 'f', 3, 'J', 'accepted')"
        )
    reader = HistoryStore(path, readonly=True)  # cannot upgrade: reads as before
    assert reader.verification(1) is None
    assert reader.run(1) is not None
    reader.close()
    with HistoryStore(path) as store:
        assert store.journal(1)[0].warned == 0
        assert not store.batch_log(1, 0)
        log = ResendLog(refused=[2], fixes={0: [("phone_number", "not in region")]})
        store.batch_accepted(1, 0, "J", log)
        assert store.batch_log(1, 0) == log
        store.record_verification(1, Verification("full", 3, 2, 1, 40))
        got = store.verification(1)
        assert got is not None and (got.checked, got.missing, got.members) == (3, 1, 40)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_partial_run_with_unconfirmed_batches_is_resumable(tmp_path: Path) -> None:
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        run_id = store.start_run(export="e", connection="c", list_id="L")
        store.batch_submitting(run_id, 0, "f", 3)
        store.batch_accepted(run_id, 0, "J")
        store.finish_run(run_id, RunSummary(run_id, "e", {}, 1.0, ExitCode.PARTIAL))
        assert store.resumable_run("e") is None
        store.batch_unconfirmed(run_id, 0)
        record = store.resumable_run("e")
        assert record is not None and record.id == run_id
        assert store.journal(run_id)[0].job_id == "J"


# ---- the command line ---------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KLAVIYO_API_KEY=DEMO_KEY)
    return subprocess.run(
        [sys.executable, "-m", "klaviyo_tui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_run_verify_and_history_show_through_the_cli(
    tmp_path: Path, sandbox: SandboxServer, isolated_dirs: Path
) -> None:
    source = write_customers(
        tmp_path / "c.csv", [{"email": f"user{i}@example.com"} for i in range(40)]
    )
    write_config(
        Path(os.environ["KLAVIYO_TUI_CONFIG"]),
        base_url=sandbox.base_url,
        list_id=create_list(sandbox.base_url),
        sources={"main": source},
    )
    bad = cli("run", "customers", "--verify=maybe")
    assert bad.returncode == ExitCode.USAGE
    assert "not a verification mode" in bad.stderr and "sample:N" in bad.stderr
    done = cli("run", "customers", "--verify=sample:10", "--confirm-timeout", "2", "--json")
    assert done.returncode == ExitCode.OK, done.stderr
    summary = json.loads(done.stdout)
    assert summary["verification"]["mode"] == "sample:10"
    assert summary["verification"]["missing"] == 0
    full = cli("run", "customers", "--verify")
    assert full.returncode == ExitCode.OK, full.stderr
    assert "verified: 40 of 40 confirmed rows in the list" in full.stdout
    assert "reading them takes about" in full.stderr
    shown = cli("history", "show", str(summary["run_id"] + 1))
    assert "verified: 40 of 40 confirmed rows in the list" in shown.stdout
    assert "40 members read" in shown.stdout
    shown_json = json.loads(cli("history", "show", "1", "--json").stdout)
    assert shown_json["verification"]["checked"] == 10
    assert shown_json["counts"][RowState.IMPORTED.value] == 40


@pytest.mark.parametrize(
    ("code", "resumable"),
    [(ExitCode.UNAVAILABLE, True), (ExitCode.AUTH, True), (ExitCode.USAGE, False)],
)
def test_a_run_failed_by_klaviyo_or_its_key_is_resumable(
    tmp_path: Path, code: ExitCode, resumable: bool
) -> None:
    """Their messages say to resume (the rows of accepted jobs are unconfirmed): --resume must
    take them. A run refused for the user's own mistake is run again instead."""
    with HistoryStore(tmp_path / "h.sqlite3") as store:
        run_id = store.start_run(export="e", connection="c", list_id="L")
        store.batch_submitting(run_id, 0, "f", 3)
        store.batch_accepted(run_id, 0, "J")
        store.finish_run(run_id, RunSummary(run_id, "e", {}, 1.0, code, error="x"))
        record = store.resumable_run("e")
        assert (record is not None and record.id == run_id) is resumable
