"""`klaviyo-tui lists` against the sandbox: sorted names and ids, search, find-or-create that says
which it did, one list's member count, and a run to a made-up list naming the command that lists
the account's lists."""

from __future__ import annotations

import json
from pathlib import Path

from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.config import Export, Mapping, Segment
from klaviyo_tui.store.config_store import ConfigStore
from tests.support.cli import account_lists, config_path, connect, customers, invoke
from tests.support.sandbox import client, import_body, wait_job


def _make_lists(base_url: str, names: list[str]) -> dict[str, str]:
    with client(base_url) as c:
        for name in names:
            c.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": name}}})
    return account_lists(base_url)


def test_lists_sorted_by_name_with_ids_search_and_json(sandbox: SandboxServer) -> None:
    connect(sandbox.base_url)
    ids = _make_lists(sandbox.base_url, ["zeta", "Alpha", "beta VIP"])
    done = invoke("lists")
    assert done.exit_code == 0, done.output
    rows = done.stdout.splitlines()
    assert [r.split()[0] for r in rows] == ["Alpha", "beta", "zeta"]
    assert rows[1].split()[-1] == ids["beta VIP"]
    assert "3 lists" in done.stderr
    found = json.loads(invoke("lists", "--search", "vip", "--json").stdout)
    assert [(f["name"], f["id"]) for f in found] == [("beta VIP", ids["beta VIP"])]
    assert found[0]["created"]
    one = invoke("lists", "--search", "alpha")
    assert "1 list (connection sandbox)" in one.stderr  # not "1 lists"
    none = invoke("lists", "--search", "nothing-like-this")
    assert none.exit_code == 0 and "no list matches" in none.stdout


def test_lists_create_says_whether_it_found_or_created(sandbox: SandboxServer) -> None:
    connect(sandbox.base_url)
    first = invoke("lists", "create", "Weekly")
    assert first.exit_code == 0, first.output
    list_id = account_lists(sandbox.base_url)["Weekly"]
    assert first.stdout == f"list 'Weekly' ({list_id}): created\n"
    second = invoke("lists", "--connection", "sandbox", "create", "Weekly", "--json")
    assert json.loads(second.stdout) == {
        "id": list_id,
        "name": "Weekly",
        "created": json.loads(second.stdout)["created"],
        "created_now": False,
    }
    assert account_lists(sandbox.base_url) == {"Weekly": list_id}


def test_lists_show_counts_members_and_names_the_exports(sandbox: SandboxServer) -> None:
    connect(sandbox.base_url)
    list_id = _make_lists(sandbox.base_url, ["Members"])["Members"]
    with client(sandbox.base_url) as c:
        profiles = [{"email": f"m{i}@example.com"} for i in range(3)]
        job = c.post("/api/profile-bulk-import-jobs", json=import_body(profiles, list_id))
        wait_job(c, job.json()["data"]["id"])
    store = ConfigStore(config_path())
    store.put_segment(Segment("s", "/nowhere.csv"))
    store.put_export(Export("weekly", "sandbox", list_id, ("s",), Mapping(email="email")))
    store.save()
    shown = invoke("lists", "show", list_id)
    assert shown.exit_code == 0, shown.output
    assert "members  3\n" in shown.stdout and "exports  weekly" in shown.stdout
    data = json.loads(invoke("lists", "show", list_id, "--json").stdout)
    assert data["profile_count"] == 3 and data["exports"] == ["weekly"]
    missing = invoke("lists", "show", "ZZZZZZ")
    assert missing.exit_code == 2 and "ZZZZZZ" in missing.stderr


def test_two_connections_need_a_choice(sandbox: SandboxServer) -> None:
    connect(sandbox.base_url)
    connect(sandbox.base_url, "second")
    done = invoke("lists")
    assert done.exit_code == 2 and "--connection" in done.stderr and "second" in done.stderr
    assert invoke("lists", "--connection", "second").exit_code == 0


def test_a_run_to_a_made_up_list_names_the_command_that_lists_them(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    connect(sandbox.base_url)
    store = ConfigStore(config_path())
    store.put_segment(Segment("s", str(customers(tmp_path / "c.csv"))))
    store.put_export(Export("weekly", "sandbox", "ZZZZZZ", ("s",), Mapping(email="contact")))
    store.save()
    done = invoke("run", "weekly")
    assert done.exit_code == 2
    assert "klaviyo-tui lists --connection sandbox" in done.stderr
    assert "klaviyo-tui exports edit weekly --set list_id=ID" in done.stderr


def _twins(base_url: str, name: str) -> list[str]:
    """Two lists of the same name (Klaviyo allows it): their ids."""
    ids = []
    with client(base_url) as c:
        for _ in range(2):
            made = c.post(
                "/api/lists", json={"data": {"type": "list", "attributes": {"name": name}}}
            )
            ids.append(made.json()["data"]["id"])
    return ids


def _list_count(base_url: str) -> int:
    with client(base_url) as c:
        return len(c.get("/api/lists").json()["data"])


def test_a_name_two_lists_share_is_refused_with_both_ids(
    tmp_path: Path, sandbox: SandboxServer
) -> None:
    connect(sandbox.base_url)
    ids = _twins(sandbox.base_url, "Twin")
    source = customers(tmp_path / "customers.csv")
    for args in (
        ("lists", "create", "Twin"),
        ("exports", "create", "twin", "--source", str(source), "--list-name", "Twin"),
    ):
        done = invoke(*args)
        assert done.exit_code == 2, done.output
        assert "found" not in done.stdout and "created" not in done.stdout
        assert "2 lists in this account are named 'Twin'" in done.stderr
        assert all(i in done.stderr for i in ids)
        assert "--list ID" in done.stderr
        assert "Traceback" not in done.output
    assert _list_count(sandbox.base_url) == 2  # nothing created
    assert "twin" not in ConfigStore(config_path()).config.exports  # nothing saved
    by_id = invoke("exports", "create", "twin", "--source", str(source), "--list", ids[1])
    assert by_id.exit_code == 0, by_id.output
    assert f"({ids[1]}), checked" in by_id.stdout
