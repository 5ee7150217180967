"""A recognisable key through every CLI flow: it never reaches a file, an output stream, an
exception's text or a process argument list; messages that mention it show it masked."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from klaviyo_tui.klaviyo import KlaviyoClient, KlaviyoError
from klaviyo_tui.redaction import mask_key
from klaviyo_tui.sandbox import SandboxSettings
from klaviyo_tui.sandbox.server import SandboxServer
from klaviyo_tui.sandbox.settings import ALL_SCOPES
from tests.cli.test_cli import rows
from tests.support.engine import create_list, write_config, write_customers

LEAK = "pk_" + "LEAKCHECK" + "a1B2c3D4e5F6g7H8i9J0k1L2m"
WRONG = "pk_" + "LEAKCHECK" + "zzzzzzzzzzzzzzzzzzzzzzzzz"
assert len(LEAK) == len(WRONG) == 37
SECRETS = (LEAK, WRONG, "LEAKCHECK")
pytestmark = pytest.mark.timeout(120)


def assert_no_leak(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret[:12]}… leaked into {where}: {text[:400]}"


def run_watched(
    *args: str, key: str | None = LEAK, stdin: str | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run the CLI while sampling /proc/<pid>/cmdline; returns the result and every argv seen."""
    env = dict(os.environ)
    env.pop("KLAVIYO_API_KEY", None)
    if key:
        env["KLAVIYO_API_KEY"] = key
    proc = subprocess.Popen(
        [sys.executable, "-m", "klaviyo_tui", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    argvs: list[str] = []
    cmdline = Path(f"/proc/{proc.pid}/cmdline")
    assert proc.stdin is not None
    if stdin:
        proc.stdin.write(stdin)
        proc.stdin.flush()
    proc.stdin.close()
    proc.stdin = None  # communicate() below must not touch the closed pipe
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            argvs.append(cmdline.read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            break
        time.sleep(0.005)
    out, err = proc.communicate(timeout=60)
    assert argvs, "never saw the process's argument list"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), argvs


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    settings = SandboxSettings(
        keys={LEAK: ALL_SCOPES}, rate_limits=False, job_delay=0.0, faults={"rowfail": 0.2}
    )
    with SandboxServer(settings) as server:
        yield server


def test_key_never_leaks_through_any_cli_flow(
    tmp_path: Path, sandbox: SandboxServer, isolated_dirs: Path
) -> None:
    data = rows(30)
    data[4]["email"] = "broken@"
    source = write_customers(tmp_path / "c.csv", data)
    list_id = create_list(sandbox.base_url, key=LEAK)
    config = Path(os.environ["KLAVIYO_TUI_CONFIG"])
    write_config(config, base_url=sandbox.base_url, list_id=list_id, sources={"m": source})
    add_args = ["connections", "add", "second", "--display-name", "Second"]
    flows: list[tuple[list[str], str | None, str | None, int]] = [
        ([*add_args, "--base-url", sandbox.base_url, "--yes"], None, LEAK + "\n", 0),
        (["connections", "list"], LEAK, None, 0),
        (["connections", "test", "sandbox"], LEAK, None, 0),
        (["connections", "test", "sandbox"], WRONG, None, 4),
        (["run", "customers", "--dry-run"], LEAK, None, 0),
        (["run", "customers"], LEAK, None, 1),
        (["run", "customers", "--json"], WRONG, None, 4),
        (["history"], LEAK, None, 0),
        (["history", "show", "2"], LEAK, None, 0),
        (["history", "show", "3", "--json"], LEAK, None, 0),
    ]
    masked_seen = False
    for args, key, stdin, code in flows:
        done, argvs = run_watched(*args, key=key, stdin=stdin)
        label = " ".join(args)
        assert done.returncode == code, (label, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        assert_no_leak(done.stdout, f"stdout of {label}")
        assert_no_leak(done.stderr, f"stderr of {label}")
        for argv in argvs:
            assert_no_leak(argv, f"argv of {label}")
        masked_seen |= mask_key(LEAK) in done.stdout + done.stderr
        if key == WRONG:
            assert mask_key(WRONG) in done.stderr, done.stderr  # the key is named, masked
    assert masked_seen
    files = [p for p in isolated_dirs.rglob("*") if p.is_file()]
    assert any(p.suffix == ".csv" for p in files)  # the rejects file was written and checked
    for path in files:
        content = path.read_bytes()
        for secret in SECRETS:
            assert secret.encode() not in content, path


def echoing_transport() -> httpx.MockTransport:
    """A hostile 'Klaviyo' that echoes the Authorization header back in every error detail."""

    def handler(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        status = {"/api/lists/AAAAAA": 404, "/api/accounts": 401}.get(request.url.path, 400)
        if request.url.path == "/api/profile-bulk-import-jobs/BBBBBB":
            status = 503
        body = {
            "errors": [
                {
                    "status": status,
                    "code": "invalid",
                    "title": f"bad {auth}",
                    "detail": f"you sent {auth}",
                    "source": {"pointer": "/data/attributes/profiles/data/0/attributes/email"},
                }
            ]
        }
        return httpx.Response(
            status, json=body, headers={"content-type": "application/vnd.api+json"}
        )

    return httpx.MockTransport(handler)


async def test_no_exception_text_carries_the_key() -> None:
    raised: list[BaseException] = []
    client = KlaviyoClient(
        "https://a.klaviyo.com", LEAK, transport=echoing_transport(), max_retries=1, seed=1,
        backoff_base=0.001,
    )  # fmt: skip
    async with client:
        calls = [
            client.get_list("AAAAAA"),
            client.get_job("BBBBBB"),
            client.submit_import(b'{"data": {}}'),
            client.lists(),
            client.verify_key(),
            client.create_list("x"),
        ]
        for call in calls:
            try:
                await call
            except KlaviyoError as error:
                raised.append(error)
        assert_no_leak(repr(client), "repr(client)")
    for bad in (LEAK + " ", LEAK + "\n", "pk_LEAKCHECK with space"):
        try:
            KlaviyoClient("https://a.klaviyo.com", bad)
        except KlaviyoError as error:
            raised.append(error)
    assert len(raised) >= 7
    for caught in raised:
        for text in (str(caught), repr(caught), " ".join(map(str, caught.args))):
            assert_no_leak(text, f"{type(caught).__name__}")
        for item in getattr(caught, "errors", ()):
            assert_no_leak(repr(item), f"{type(caught).__name__}.errors")
    assert any(mask_key(LEAK) in str(e) for e in raised)
