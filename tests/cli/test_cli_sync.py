"""The sync options from the CLI: exports create/edit keep them (with the consent assertion),
`run --dry-run` plans them, and `history` shows what each run added, updated and skipped."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config_read import load_config
from tests.support.cli import config_path, connect, invoke, write_csv


@pytest.fixture
def source(tmp_path: Path, sandbox: SandboxServer) -> Path:
    connect(sandbox.base_url)
    rows = [
        {"contact": f"user{i}@example.com", "First": f"U{i}", "optin": "2024-02-01T08:00:00Z"}
        for i in range(8)
    ]
    return write_csv(tmp_path / "customers.csv", rows)


def test_new_exports_are_incremental_and_the_second_run_skips_everything(source: Path) -> None:
    made = invoke("exports", "create", "weekly", "--source", str(source), "--list-name", "W")
    assert made.exit_code == 0, made.output
    assert load_config(config_path()).exports["weekly"].sync.incremental
    assert "incremental = true" in config_path().read_text()
    first = invoke("run", "weekly", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["sync"]["added"] == 8
    second = invoke("run", "weekly")
    assert second.exit_code == 0, second.output
    assert "8 unchanged (skipped)" in second.stdout
    assert "0 added, 0 updated, 8 unchanged" in second.stdout
    shown = invoke("history", "weekly")
    assert "UNCHANGED" in shown.stdout
    runs = json.loads(invoke("history", "--json").stdout)
    assert [r["sync"]["unchanged"] for r in runs] == [8, 0]
    full = invoke("run", "weekly", "--full", "--json")
    assert json.loads(full.stdout)["sync"]["full_reason"] == "--full was given"


def test_subscribe_needs_the_consent_assertion(source: Path) -> None:
    args = ["exports", "create", "news", "--source", str(source), "--list-name", "News"]
    args += ["--subscribe", "email", "--consent-column", "optin", "--historical"]
    refused = invoke(*args)
    assert refused.exit_code == 2
    assert "You assert that each of these customers gave you their consent" in refused.stderr
    assert "--assert-consent" in refused.stderr
    assert "news" not in load_config(config_path()).exports
    made = invoke(*args, "--assert-consent", "--json")
    assert made.exit_code == 0, made.output
    sub = json.loads(made.stdout)["sync"]["subscribe"]
    assert sub["channel"] == "email" and sub["historical"] and sub["asserted_at"]
    sms = invoke("exports", "edit", "news", "--set", "subscribe=sms", "--assert-consent")
    assert sms.exit_code == 2 and "needs a phone_number column" in sms.stderr
    edited = invoke("exports", "edit", "news", "--set", "mode=mirror", "--set", "max_removals=3")
    assert edited.exit_code == 0, edited.output
    sync = load_config(config_path()).exports["news"].sync
    assert sync.mode == "mirror" and sync.max_removals == 3 and sync.subscribe is not None
    shown = invoke("exports", "show", "news").stdout
    assert "sync           mirror: sends only new or changed rows" in shown
    assert "up to 10% of the list, at most 3 a run" in shown
    assert "subscribe      email marketing (historical), consent times from optin" in shown
    assert f"asserted {sync.subscribe.asserted_at} by " in shown
    cleared = invoke("exports", "edit", "news", "--set", "max_removal_ratio=0.5")
    assert cleared.exit_code == 0
    cleared = invoke("exports", "edit", "news", "--set", "max_removal_ratio=")  # as --help says
    assert cleared.exit_code == 0, cleared.output
    assert load_config(config_path()).exports["news"].sync.max_removal_ratio == 0.1
    plan = invoke("run", "news", "--dry-run")
    assert plan.exit_code == 0, plan.output
    assert "8 to add" in plan.stdout and "8 to subscribe" in plan.stdout
    assert "0 at most to remove" in plan.stdout
    off = invoke("exports", "edit", "news", "--set", "subscribe=off")
    assert off.exit_code == 0, off.output
    assert load_config(config_path()).exports["news"].sync.subscribe is None


def test_a_run_refuses_to_subscribe_when_a_hand_edit_dropped_the_assertion(source: Path) -> None:
    args = ["exports", "create", "news", "--source", str(source), "--list-name", "News"]
    made = invoke(*args, "--subscribe", "email", "--assert-consent")
    assert made.exit_code == 0, made.output
    text = config_path().read_text()
    cut = re.sub(r",? *asserted_(at|by) = \"[^\"]*\"", "", text)
    assert cut != text and "asserted" not in cut
    config_path().write_text(cut)
    for run in (invoke("run", "news"), invoke("run", "news", "--dry-run")):
        assert run.exit_code == 2, run.output
        assert "records no assertion that they consented" in run.stderr
        assert "exports edit news --set subscribe=email" in run.stderr
    assert not json.loads(invoke("history", "--json").stdout)  # refused before any record
    again = invoke("exports", "edit", "news", "--set", "subscribe=email", "--assert-consent")
    assert again.exit_code == 0, again.output
    assert invoke("run", "news").exit_code == 0


def test_a_removed_exports_tracking_is_not_inherited_by_a_new_one_of_its_name(
    source: Path, tmp_path: Path
) -> None:
    """A mirror export removed and created again (same name, same list, a smaller source) must
    not plan to remove what the old one added: it knows nothing it added itself."""
    made = invoke(
        "exports", "create", "m2", "--source", str(source), "--list-name", "M", "--mode", "mirror"
    )
    assert made.exit_code == 0, made.output
    assert invoke("run", "m2").exit_code == 0
    list_id = load_config(config_path()).exports["m2"].list_id
    assert invoke("exports", "remove", "m2", "--yes").exit_code == 0
    small = write_csv(tmp_path / "small.csv", [{"contact": "user0@example.com"}])
    again = invoke(
        "exports", "create", "m2", "--source", str(small), "--list", list_id, "--mode", "mirror"
    )
    assert again.exit_code == 0, again.output
    plan = invoke("run", "m2", "--dry-run", "--json")
    assert plan.exit_code == 0, plan.output
    sync = json.loads(plan.stdout)["sync"]
    assert sync["removals"] == 0 and "no earlier run" in sync["full_reason"], sync


def test_a_mirror_run_refused_for_its_removals_says_what_to_do(source: Path) -> None:
    args = ["exports", "create", "m", "--source", str(source), "--list-name", "M"]
    assert invoke(*args, "--mode", "mirror").exit_code == 0
    assert invoke("run", "m").exit_code == 0
    write_csv(source, [{"contact": "user0@example.com", "First": "U0", "optin": ""}])

    refused = invoke("run", "m")
    assert refused.exit_code == 2
    assert "would remove 7 of the list's 8 members" in refused.stderr
    assert "what to do: " in refused.stderr and "--allow-mass-removal" in refused.stderr
    as_json = invoke("run", "m", "--json")
    assert as_json.exit_code == 2
    assert "--allow-mass-removal" in json.loads(as_json.stdout)["hint"]


def test_history_of_a_typo_is_an_error_and_a_dry_run_adds_nothing(source: Path) -> None:
    assert invoke("exports", "create", "weekly", "--source", str(source), "--list-name", "W")
    limit = invoke("exports", "edit", "weekly", "--set", "max_removals=5")
    assert limit.exit_code == 0, limit.output
    shown = invoke("exports", "show", "weekly").stdout  # an upsert export's limit, still shown
    assert "who left the segment (with --mode mirror), up to 10% of the list, at most 5" in shown
    none_yet = invoke("history", "weekly")
    assert none_yet.exit_code == 0 and "no runs yet for export 'weekly'" in none_yet.stdout
    typo = invoke("history", "weekyl")
    assert typo.exit_code == 2 and "there is no export 'weekyl'" in typo.stderr
    assert invoke("run", "weekly", "--dry-run").exit_code == 0
    lines = invoke("history", "weekly").stdout.splitlines()
    assert "ADDED" not in lines[0]  # the dry run's 8 "to add" are a plan, not added rows
    assert invoke("run", "weekly").exit_code == 0
    header, real, dry = invoke("history", "weekly").stdout.splitlines()[:3]
    added = header.index("ADDED") + len("ADDED")
    assert real[:added].endswith("8") and dry[:added].endswith("-")
