"""Bad configuration and a hostile environment, through the real CLI: each problem gives one clear
message (no traceback), leaves the config file byte-identical, and a run that had started is
recorded in history with its reason."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import tomlkit

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.sandbox import DEMO_KEY, SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.store.history import HistoryStore
from tests.cli.test_cli import cli, rows
from tests.hardening.test_hardening_chaos import run_cli
from tests.support.engine import create_list, list_emails, write_config, write_customers

pytestmark = pytest.mark.timeout(120)


def config_path() -> Path:
    return Path(os.environ["KLAVIYO_TUI_CONFIG"])


def assert_clean_failure(done: subprocess.CompletedProcess[str], code: int, *words: str) -> None:
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    for word in words:
        assert word in done.stderr, (word, done.stderr)


@pytest.fixture
def configured(tmp_path: Path, sandbox: SandboxServer) -> tuple[str, bytes]:
    source = write_customers(tmp_path / "c.csv", rows(20))
    list_id = create_list(sandbox.base_url)
    write_config(config_path(), base_url=sandbox.base_url, list_id=list_id, sources={"m": source})
    return list_id, config_path().read_bytes()


def edit_config(change: Callable[[tomlkit.TOMLDocument], None]) -> bytes:
    doc = tomlkit.parse(config_path().read_text())
    change(doc)
    config_path().write_text(tomlkit.dumps(doc))
    return config_path().read_bytes()


BROKEN = [
    ("[exports.customers\nconnection = 'x'\n", ["line 1"]),
    ("[connections.a]\ndisplay_name = 'x'\nbase_url = \n", ["line 3"]),
    ('title = "unterminated\n', ["line 1"]),
]


@pytest.mark.parametrize(("text", "words"), BROKEN)
@pytest.mark.parametrize(
    "command",
    [
        ["run", "customers"],
        ["connections", "list"],
        ["exports", "list"],
        ["exports", "remove", "customers", "--yes"],
        ["history"],
    ],
)
def test_broken_toml_is_reported_and_never_touched(
    command: list[str], text: str, words: list[str]
) -> None:
    config_path().write_text(text)
    before = config_path().read_bytes()
    done = cli(*command)
    if command == ["history"]:  # history does not need the config at all
        assert done.returncode == 0, done.stderr
    else:
        assert_clean_failure(done, ExitCode.USAGE, str(config_path()), *words)
    assert config_path().read_bytes() == before


def test_broken_toml_refuses_connections_add(sandbox: SandboxServer) -> None:
    config_path().write_text("[connections\n")
    before = config_path().read_bytes()
    done = cli(
        "connections", "add", "x", "--display-name", "X", "--base-url", sandbox.base_url,
        "--yes", stdin=DEMO_KEY + "\n",
    )  # fmt: skip
    assert_clean_failure(done, ExitCode.USAGE, "line 1")
    assert config_path().read_bytes() == before


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda d: d["exports"]["customers"].add("colour", "red"), ["colour", "unknown key"]),
        (lambda d: d["connections"]["sandbox"].add("timeout", 5), ["timeout", "unknown key"]),
        (lambda d: d.add("extras", {"a": 1}), ["extras", "unknown key"]),
        (lambda d: d["exports"]["customers"].__setitem__("list_id", 5), ["list_id", "string"]),
        (lambda d: d["exports"]["customers"].__setitem__("segments", 3), ["segments", "list"]),
        (lambda d: d["segments"].__setitem__("m", "file.csv"), ["segments.m", "table"]),
        (
            lambda d: d["connections"]["sandbox"].__setitem__("display_name", True),
            ["display_name", "true/false"],
        ),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_key(
    configured: tuple[str, bytes], change: Callable[[tomlkit.TOMLDocument], None], words: list[str]
) -> None:
    before = edit_config(change)
    for command in (["run", "customers"], ["exports", "list"]):
        done = cli(*command)
        assert_clean_failure(done, ExitCode.USAGE, str(config_path()), *words)
        assert config_path().read_bytes() == before


@pytest.mark.parametrize(
    ("field", "value", "word"),
    [("connection", "nope", "'nope'"), ("segments", ["m", "ghost"], "ghost")],
)
def test_export_naming_a_missing_connection_or_segment(
    configured: tuple[str, bytes], field: str, value: object, word: str
) -> None:
    before = edit_config(lambda d: d["exports"]["customers"].__setitem__(field, value))
    done = cli("run", "customers")
    assert_clean_failure(done, ExitCode.USAGE, "customers", word, "exist")
    assert config_path().read_bytes() == before
    assert json.loads(cli("history", "--json").stdout) == []  # refused before any run started


def test_no_key_anywhere(configured: tuple[str, bytes]) -> None:
    done = cli("run", "customers", key=None)
    assert_clean_failure(done, ExitCode.AUTH, "no API key", "sandbox", "KLAVIYO_API_KEY")
    assert config_path().read_bytes() == configured[1]
    test = cli("connections", "test", "sandbox", key=None)
    assert_clean_failure(test, ExitCode.AUTH, "no API key")


def run_interfering(
    args: list[str], marker: str, action: Callable[[], None], code: str | None = None
) -> tuple[int, str, str]:
    """Start the CLI, call `action` once stderr shows `marker`, then let the run finish."""
    env = dict(os.environ, KLAVIYO_API_KEY=DEMO_KEY)
    head = ["-c", code] if code else ["-m", "klaviyo_tui"]
    proc = subprocess.Popen(
        [sys.executable, *head, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None and proc.stdout is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if marker in line:
            action()
            break
    else:
        proc.wait()
        raise AssertionError(f"never saw {marker!r}: {''.join(seen)}")
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, "".join(seen) + err


@pytest.fixture
def slow_jobs_setup(tmp_path: Path) -> Iterator[tuple[SandboxServer, str, int]]:
    """30,000 rows (3 jobs) against a sandbox whose jobs take a second: the run is long enough
    to interfere with after its first job is accepted."""
    n = 30_000
    with SandboxServer(SandboxSettings(rate_limits=False, job_delay=1.0)) as server:
        source = write_customers(tmp_path / "big.csv", rows(n))
        list_id = create_list(server.base_url)
        write_config(
            config_path(), base_url=server.base_url, list_id=list_id, sources={"m": source}
        )
        yield server, list_id, n


def last_run() -> dict[str, object]:
    runs: list[dict[str, object]] = json.loads(cli("history", "--json").stdout)
    assert runs, "the run was not recorded"
    return runs[0]


def test_key_revoked_mid_run(slow_jobs_setup: tuple[SandboxServer, str, int]) -> None:
    server, _, n = slow_jobs_setup
    before = config_path().read_bytes()
    code, out, err = run_interfering(
        ["run", "customers"], " sent: ", lambda: server.revoke_key(DEMO_KEY)
    )
    assert code == ExitCode.AUTH, err
    assert "Traceback" not in err + out
    assert "rejected the API key" in err and "pk_…0000" in err
    assert DEMO_KEY not in err + out
    assert config_path().read_bytes() == before
    run = last_run()
    assert run["status"] == "failed" and run["exit_code"] == ExitCode.AUTH
    assert "rejected the API key" in str(run["error"])
    counts = run["counts"]
    assert isinstance(counts, dict) and sum(counts.values()) == n
    # rows not confirmed are not claimed as imported: jobs accepted before the key went are
    # unconfirmed, the rest not sent (how many of each depends on when it went)
    unsettled = counts["not_sent"] + counts["unconfirmed"]
    assert unsettled > 0 and counts["imported"] + unsettled == n, counts


def test_list_deleted_mid_run(slow_jobs_setup: tuple[SandboxServer, str, int]) -> None:
    server, list_id, n = slow_jobs_setup

    def delete() -> None:
        with httpx.Client(base_url=server.base_url, headers=_headers()) as c:
            assert c.delete(f"/api/lists/{list_id}").status_code == 204

    before = config_path().read_bytes()
    code, out, err = run_interfering(["run", "customers"], " sent: ", delete)
    assert code in (ExitCode.PARTIAL, ExitCode.INPUT, ExitCode.USAGE), err
    assert "Traceback" not in err + out
    assert list_id in err
    assert config_path().read_bytes() == before
    run = last_run()
    assert run["status"] in ("failed", "partial")
    counts = run["counts"]
    assert isinstance(counts, dict) and sum(counts.values()) == n
    assert counts["imported"] == 0  # nothing joined a list that no longer exists
    store = HistoryStore()
    try:
        reasons = " ".join(r for r, _, _ in store.failure_reasons(int(str(run["id"]))))
    finally:
        store.close()
    assert list_id in str(run["error"] or "") + reasons


def _headers() -> dict[str, str]:
    from tests.support.sandbox import headers

    return headers()


ENOSPC_CLI = (
    "import errno, klaviyo_tui.run.rejects as r\n"
    "def full(*a, **k):\n"
    "    raise OSError(errno.ENOSPC, 'No space left on device')\n"
    "r.write = full\n"
    "from klaviyo_tui.cli.main import main; main()"
)


def test_full_disk_for_the_rejects_file(
    tmp_path: Path, sandbox: SandboxServer, configured: tuple[str, bytes]
) -> None:
    data = rows(20)
    data[2]["email"] = "broken@"  # one reject, so there is a rejects file to write
    list_id = create_list(sandbox.base_url)
    write_config(
        config_path(),
        base_url=sandbox.base_url,
        list_id=list_id,
        sources={"m": write_customers(tmp_path / "c.csv", data)},
    )
    before = config_path().read_bytes()
    env = dict(os.environ, KLAVIYO_API_KEY=DEMO_KEY)
    done = run_cli("run", "customers", env=env, code=ENOSPC_CLI)
    assert done.returncode not in (ExitCode.OK, ExitCode.PARTIAL)
    assert "Traceback" not in done.stderr + done.stdout
    assert "No space left on device" in done.stderr
    assert config_path().read_bytes() == before
    run = last_run()
    assert run["status"] == "failed"
    assert "No space left on device" in str(run["error"])
    assert len(list_emails(sandbox.base_url, list_id)) == 19  # the import itself was confirmed


READ_ONLY_CLI = (
    "import errno, os\n"
    "def refuse(*a, **k):\n"
    "    raise PermissionError(errno.EACCES, 'Permission denied')\n"
    "os.replace = refuse\n"
    "from klaviyo_tui.cli.main import main; main()"
)


@pytest.mark.parametrize(
    "command",
    [
        ["exports", "remove", "customers", "--yes"],
        ["connections", "remove", "sandbox", "--yes"],
        ["connections", "add", "other", "--display-name", "Other", "--yes"],
    ],
)
def test_read_only_config_directory(
    configured: tuple[str, bytes], sandbox: SandboxServer, command: list[str]
) -> None:
    """Simulated (tests run as root, where chmod does not stop writes): os.replace is refused."""
    if command[:2] == ["connections", "add"]:
        command = [*command, "--base-url", sandbox.base_url]
    env = dict(os.environ)
    env.pop("KLAVIYO_API_KEY", None)
    done = subprocess.run(
        [sys.executable, "-c", READ_ONLY_CLI, *command],
        capture_output=True,
        text=True,
        env=env,
        input=DEMO_KEY + "\n",
        timeout=60,
    )
    assert_clean_failure(done, ExitCode.USAGE, "cannot save the config file", "Permission denied")
    assert "saved" not in done.stdout and "removed" not in done.stdout
    assert config_path().read_bytes() == configured[1]
    assert [p.name for p in config_path().parent.iterdir()] == [config_path().name]  # no temp
