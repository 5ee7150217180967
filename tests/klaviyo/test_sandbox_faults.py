"""Rate limits and seeded faults, over real loopback HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from klaviyo_tui.sandbox import DEMO_KEY, SandboxServer, SandboxSettings, parse_faults
from klaviyo_tui.sandbox.faults import FaultInjector
from tests.support.sandbox import client, create_list, import_body, list_members, wait_job


def test_rate_limit_headers_and_429() -> None:
    with SandboxServer(SandboxSettings()) as s, client(s.base_url) as c:
        ok = c.get("/api/accounts")  # XS: 1/s burst
        assert ok.status_code == 200
        assert ok.headers["RateLimit-Limit"] == "1, 1;w=1, 15;w=60"  # binding quota first
        assert ok.headers["RateLimit-Remaining"] == "0"
        assert int(ok.headers["RateLimit-Reset"]) >= 1
        # two calls in one 1 s window must meet a 429 (three calls cover a window boundary)
        r = next(r for r in (c.get("/api/accounts") for _ in range(3)) if r.status_code == 429)
        assert int(r.headers["Retry-After"]) >= 1
        assert not any(h.lower().startswith("ratelimit-") for h in r.headers)
        err = r.json()["errors"][0]
        assert err["code"] == "throttled"
        assert err["title"] == "Request was throttled."
        assert err["detail"].startswith("Request was throttled. Expected available in ")
        lists = c.get("/api/lists")  # per operation buckets
        assert lists.status_code == 200
        assert lists.headers["RateLimit-Limit"] == "75, 75;w=1, 750;w=60"
        assert lists.headers["RateLimit-Remaining"] == "74"


def test_ratelimit_limit_names_the_binding_window() -> None:
    with SandboxServer(SandboxSettings()) as s, client(s.base_url) as c:
        for i in range(3):
            ok = c.post(
                "/api/lists", json={"data": {"type": "list", "attributes": {"name": f"{i}"}}}
            )
            assert ok.status_code in (201, 429)
        # create_list: 10/s, 150/min, 150/day; after a few calls the 1 s window binds
        assert ok.headers.get("RateLimit-Limit", "10, ").startswith(
            "10, 10;w=1, 150;w=60, 150;w=86400"
        )


def test_rate_limits_off() -> None:
    with SandboxServer(SandboxSettings(rate_limits=False)) as s, client(s.base_url) as c:
        assert all(c.get("/api/accounts").status_code == 200 for _ in range(5))


def _statuses(faults: dict[str, float], n: int = 40, seed: int = 7) -> list[object]:
    out: list[object] = []
    settings = SandboxSettings(rate_limits=False, faults=faults, seed=seed)
    with SandboxServer(settings) as s, client(s.base_url, timeout=2) as c:
        for _ in range(n):
            try:
                r = c.get("/api/lists")
                out.append(r.status_code)
            except httpx.TransportError as exc:
                out.append(type(exc).__name__)
    return out


@pytest.mark.parametrize("kind", ["429", "500", "502", "503", "524"])
def test_status_faults(kind: str) -> None:
    statuses = _statuses({kind: 0.5})
    assert int(kind) in statuses
    assert 200 in statuses


def test_retry0_fault_is_429_with_retry_after_zero() -> None:
    with SandboxServer(SandboxSettings(faults={"retry0": 1.0})) as s, client(s.base_url) as c:
        r = c.get("/api/lists")
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "0"
        assert r.json()["errors"][0]["code"] == "throttled"
        assert not any(h.lower().startswith("ratelimit-") for h in r.headers)


def test_524_fault_takes_effect_but_answers_html() -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0, faults={"524": 1.0})
    with SandboxServer(settings) as s, client(s.base_url) as c:
        r = c.post("/api/lists", json={"data": {"type": "list", "attributes": {"name": "T"}}})
        assert r.status_code == 524
        assert r.headers["content-type"].startswith("text/html")
        assert "524" in r.text
        job = c.post("/api/profile-bulk-import-jobs", json=import_body([{"email": "t@x.com"}]))
        assert job.status_code == 524
        s.app.faults = FaultInjector({}, 0)  # the next requests get through
        assert [d["attributes"]["name"] for d in c.get("/api/lists").json()["data"]] == ["T"]
        jobs = c.get("/api/profile-bulk-import-jobs").json()["data"]
        assert len(jobs) == 1  # the import job was created although its answer was lost


def _job_status(c: httpx.Client, job_id: str) -> dict[str, object]:
    attrs: dict[str, object] = c.get(f"/api/profile-bulk-import-jobs/{job_id}").json()["data"][
        "attributes"
    ]
    return attrs


def test_stuck_job_applies_rows_but_stays_processing() -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0, faults={"stuck": 1.0})
    with SandboxServer(settings) as s, client(s.base_url) as c:
        list_id = create_list(c, "Stuck")
        rows = [{"email": f"s{i}@example.com"} for i in range(3)]
        job_id = c.post("/api/profile-bulk-import-jobs", json=import_body(rows, list_id)).json()[
            "data"
        ]["id"]
        assert len(list_members(s.base_url, list_id)) == 3  # the effect landed
        for _ in range(3):
            attrs = _job_status(c, job_id)
            assert attrs["status"] == "processing"
            assert attrs["completed_at"] is None


def test_badstatus_job_reports_failed_and_applies_nothing() -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0, faults={"badstatus": 1.0})
    with SandboxServer(settings) as s, client(s.base_url) as c:
        list_id = create_list(c, "Bad status")
        r = c.post(
            "/api/profile-bulk-import-jobs", json=import_body([{"email": "b@x.com"}], list_id)
        )
        assert r.json()["data"]["attributes"]["status"] == "queued"
        assert _job_status(c, r.json()["data"]["id"])["status"] == "failed"
        assert list_members(s.base_url, list_id) == []


def test_job_faults_are_drawn_per_job() -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0, faults={"stuck": 0.5}, seed=2)
    with SandboxServer(settings) as s, client(s.base_url) as c:
        statuses = set()
        for i in range(12):
            body = import_body([{"email": f"d{i}@example.com"}])
            job_id = c.post("/api/profile-bulk-import-jobs", json=body).json()["data"]["id"]
            statuses.add(_job_status(c, job_id)["status"])
        assert statuses == {"processing", "complete"}


def test_quota_fault_throttles_a_paced_client() -> None:
    """Another integration uses half of every window: the 6th call in a 1 s M-tier window is
    refused although the published burst is 10."""
    settings = SandboxSettings(rate_limits=False, job_delay=0, faults={"quota": 0.5})
    with SandboxServer(settings) as s, client(s.base_url) as c:
        results = [c.get("/api/profile-bulk-import-jobs") for _ in range(12)]
        refused = [r for r in results if r.status_code == 429]
        assert refused, [r.status_code for r in results]
        assert int(refused[0].headers["Retry-After"]) >= 1
        ok = results[0]
        assert ok.status_code == 200
        assert ok.headers["RateLimit-Limit"].startswith("10, 10;w=1")
        assert int(ok.headers["RateLimit-Remaining"]) <= 4


def test_faults_are_reproducible() -> None:
    spec = parse_faults("429=0.2,500=0.1,503=0.1")
    assert _statuses(spec, seed=3) == _statuses(spec, seed=3)
    assert _statuses(spec, seed=3) != _statuses(spec, seed=4)


def test_reset_fault_drops_connection() -> None:
    statuses = _statuses({"reset": 0.5})
    assert 200 in statuses
    assert any(isinstance(s, str) for s in statuses), statuses


def test_hang_fault_times_out_and_server_stops_cleanly() -> None:
    with (
        SandboxServer(SandboxSettings(faults={"hang": 1.0})) as s,
        pytest.raises(httpx.ReadTimeout),
        client(s.base_url) as c,
    ):
        c.get("/api/lists", timeout=0.3)
    # leaving the with-block stopped the server although a request was hanging


def test_cf403_fault_is_html() -> None:
    with SandboxServer(SandboxSettings(faults={"cf403": 1.0})) as s, client(s.base_url) as c:
        r = c.get("/api/lists")
        assert r.status_code == 403
        assert r.headers["content-type"].startswith("text/html")
        assert r.headers["cf-mitigated"] == "challenge"


def test_rowfail_counts_and_import_errors() -> None:
    settings = SandboxSettings(rate_limits=False, job_delay=0, faults={"rowfail": 0.3}, seed=1)
    with SandboxServer(settings) as s, client(s.base_url) as c:
        list_id = create_list(c, "Rowfail")
        rows = [{"email": f"r{i}@example.com"} for i in range(150)]
        job_id = c.post("/api/profile-bulk-import-jobs", json=import_body(rows, list_id)).json()[
            "data"
        ]["id"]
        job = wait_job(c, job_id)
        failed = job["attributes"]["failed_count"]
        assert 0 < failed < 150
        assert job["attributes"]["completed_count"] == 150 - failed
        failed_emails: set[str] = set()
        url: str | None = f"/api/profile-bulk-import-jobs/{job_id}/import-errors?page[size]=10"
        while url:
            body = c.get(url).json()
            failed_emails |= {e["attributes"]["original_payload"]["email"] for e in body["data"]}
            url = body["links"].get("next")
        assert len(failed_emails) == failed
        members = {m["attributes"]["email"] for m in list_members(s.base_url, list_id)}
        assert members.isdisjoint(failed_emails)
        assert len(members) == 150 - failed


def test_invalid_settings_rejected() -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        parse_faults("boom=0.1")
    with pytest.raises(ValueError, match="between 0 and 1"):
        SandboxSettings(faults={"500": 2.0})
    with pytest.raises(ValueError, match="job fault"):
        SandboxSettings(faults={"stuck": 0.6, "badstatus": 0.6})
    assert parse_faults("retry0=0.1,524=0.1,stuck=0.2,badstatus=0.1,quota=0.9") == {
        "retry0": 0.1,
        "524": 0.1,
        "stuck": 0.2,
        "badstatus": 0.1,
        "quota": 0.9,
    }


@pytest.fixture
def cli() -> Iterator[subprocess.Popen[str]]:
    code = "from klaviyo_tui.cli.sandbox import sandbox_command; sandbox_command()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--job-delay", "0", "--rate-limits", "off"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_command_prints_url_then_key_and_exits_quietly(cli: subprocess.Popen[str]) -> None:
    assert cli.stdout is not None
    url = cli.stdout.readline().strip()
    assert url.startswith("http://127.0.0.1:")
    key = cli.stdout.readline().strip()
    assert key == DEMO_KEY
    with client(url, key) as c:
        assert c.get("/api/accounts").status_code == 200
    cli.send_signal(2)  # SIGINT, like Ctrl-C
    _out, err = cli.communicate(timeout=10)
    assert cli.returncode == 0
    assert "Traceback" not in err


def test_command_help_names_the_key_and_keeps_the_faults_example_whole() -> None:
    code = "from klaviyo_tui.cli.sandbox import sandbox_command; sandbox_command()"
    result = subprocess.run(
        [sys.executable, "-c", code, "--help"],
        capture_output=True,
        text=True,
        timeout=20,
        env={**os.environ, "COLUMNS": "50"},
    )
    assert result.returncode == 0
    assert DEMO_KEY in result.stdout
    assert "DEMO_KEY" not in result.stdout
    example = [
        ln.strip() for ln in result.stdout.splitlines() if ln.strip().startswith("--faults 4")
    ]
    assert example, result.stdout
    assert set(parse_faults(example[0].split(" ", 1)[1])) == {
        "429",
        "retry0",
        "500",
        "503",
        "524",
        "reset",
    }


def test_command_refuses_non_loopback_host() -> None:
    code = "from klaviyo_tui.cli.sandbox import sandbox_command; sandbox_command()"
    result = subprocess.run(
        [sys.executable, "-c", code, "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "loopback" in result.stderr
    assert "Traceback" not in result.stderr
