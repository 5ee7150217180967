"""End-to-end benchmark: N generated rows from a CSV file to confirmed members of a sandbox list.

The sandbox runs as its own process (`klaviyo-tui sandbox`), and so does the export
(`klaviyo-tui run bench --json`), so the figures for the exporting process are its own:
wall time, rows/s, CPU seconds (user + sys) and peak RSS, read from the child's rusage.

    python bench/export_bench.py --rows 1000000 --rate-limits off
    python bench/export_bench.py --rows 3000000 --rate-limits klaviyo
    python bench/export_bench.py --rows 1000000 --incremental 0.01 [--after-incremental]
    python bench/export_bench.py --rows 1000000 --mirror 0.01

With `--incremental SHARE`, the export is incremental: a first run sends every row, then SHARE of
the rows get a new first name and the figures are those of the second run, which sends only
those (the sync goal: 1M rows with 1% changed in a few seconds). That second run also settles
the first run's million confirmed rows into the export's state; `--after-incremental` measures
the daily case instead: an incremental run (SHARE changed) comes between, so the measured run
settles only that run's rows.

With `--mirror SHARE`, the export is an incremental mirror: a first run sends every row; then SHARE
of the rows leave the source and a second run removes them: the state holds no emails (only
keyed hashes), so it reads every member of the list to find their profile ids
(`first_removal_members_read_s`, from the CLI's timestamped lines, to the second;
`members_bound_s` is what Klaviyo's limits allow such a read at best: 75/s, 700/min, 100 members
a page). Then SHARE more leave and the third run is measured: it reads only who joined since and
checks each leaver by id (`members_read_s`); `removals_bound_s` is the bound of its removal
requests (1,000 profiles a request).

It prints the bound Klaviyo's limits impose: bulk import jobs are limited to 10 a second and
150 a minute (fixed windows), so J jobs sent evenly from the start of a minute take
floor((J-1)/150) minutes plus ((J-1) mod 150)/10 seconds (`klaviyo_bound_s`), and the ratio of the
run to that bound. The windows are fixed, so with the limits on the phase matters: it also prints
where in the sandbox's minute the run started and the least time that phase allowed, from the
start (`bound_from_start_s`, `ratio_from_start`) and from the first job
(`bound_after_first_pass_s`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from klaviyo_tui.klaviyo.pacing import OPERATIONS, least_seconds_for
from klaviyo_tui.sandbox import DEMO_KEY

HEADERS = {
    "Authorization": f"Klaviyo-API-Key {DEMO_KEY}",
    "revision": "2026-07-15",
    "Accept": "application/vnd.api+json",
    "Content-Type": "application/vnd.api+json",
}


def versions() -> dict[str, str]:
    """What the figures were measured with: the interpreter, the libraries on the hot path, and
    the commit of the tree this script belongs to (when it is a git checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version.split()[0]}
    for name in ("klaviyo-tui", "pandas", "pyarrow", "numpy", "orjson", "httpx"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    try:
        commit = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "-"
    out["commit"] = commit
    import klaviyo_tui

    out["installed_at"] = str(Path(klaviyo_tui.__file__).resolve().parent.parent)
    return out


def rate_limit_bound_s(jobs: int) -> float:
    """The time Klaviyo's limits take to accept `jobs` bulk import jobs sent evenly from the
    start of a minute (pacing.least_seconds_for): the issue's yardstick, whatever the phase."""
    return least_seconds_for(OPERATIONS["bulk_import_profiles"], jobs)


def bound_from_s(jobs: int, start: float) -> float:
    """The least time from `start` (epoch seconds) in which the sandbox's fixed windows, aligned
    on the epoch like its clock (sandbox/limits.py), accept `jobs` bulk import jobs: as many as
    both windows allow at every second, the first at `start`. A run that starts late in a minute
    can beat `rate_limit_bound_s` (the minute resets early); one whose first job falls late
    loses the rest of that minute."""
    op = OPERATIONS["bulk_import_profiles"]
    t, left, minute, used = start, jobs, -1, 0
    while True:
        if int(t // 60) != minute:
            minute, used = int(t // 60), 0
        now = min(op.burst, op.steady - used, left)
        left, used = left - now, used + now
        if left <= 0:
            return t - start
        t = float(int(t) + 1) if used < op.steady else float((minute + 1) * 60)


def _phases(log: Path) -> dict[str, object]:
    """When the first and last batch were sent and confirmed, from the CLI's timestamped lines."""
    sent: list[float] = []
    confirmed: list[float] = []
    first: float | None = None
    for line in log.read_text(encoding="utf-8").splitlines():
        stamp = line[:19]
        try:
            t = time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        first = t if first is None else first
        if " sent: " in line:
            sent.append(t)
        elif " confirmed: " in line:
            confirmed.append(t)
    if first is None or not sent:
        return {}
    return {
        "first_sent_after_s": sent[0] - first,
        "sending_s": sent[-1] - sent[0],
        "last_confirmed_after_last_sent_s": (confirmed[-1] if confirmed else sent[-1]) - sent[-1],
    }


def _phase_bounds(
    jobs: int, started_at: float, wall: float, first_sent: object
) -> dict[str, object]:
    """Where the run fell in the sandbox's minute, and what that phase allowed: from the run's
    start (`bound_from_start_s`), and from its first job (`bound_after_first_pass_s`: the first
    pass's seconds plus the bound from then; to the second, as the log's stamps)."""
    out: dict[str, object] = {"start_phase_s": round(started_at % 60, 1)}
    from_start = bound_from_s(jobs, started_at)
    out["bound_from_start_s"] = round(from_start, 1)
    out["ratio_from_start"] = round(wall / from_start, 3) if from_start else None
    if isinstance(first_sent, int | float):
        out["bound_after_first_pass_s"] = round(
            first_sent + bound_from_s(jobs, started_at + first_sent), 1
        )
    return out


def generate_data(path: Path, rows: int) -> None:
    """The benches' customers (about 1% invalid, a few duplicates), written by a child process:
    Linux children inherit the parent's peak RSS at fork time, so data generated in this process
    would inflate the export's figure."""
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from klaviyo_tui.demo.sample_data import generate_customers; "
            "generate_customers(Path(sys.argv[1]), int(sys.argv[2]), invalid_rate=0.01, seed=1)",
            str(path),
            str(rows),
        ],
        check=True,
    )


def start_sandbox(rate_limits: str, job_delay: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "klaviyo_tui",
            "sandbox",
            "--rate-limits",
            rate_limits,
            "--job-delay",
            str(job_delay),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    return proc, base_url


def sample_sandbox(pid: int, out: str) -> subprocess.Popen[bytes]:
    """py-spy attached to the running sandbox (its own CPU is what `sandbox_cpu_s` measures;
    attaching rather than wrapping keeps that figure the sandbox's alone)."""
    command = ["py-spy", "record", "--nonblocking", "-r", "100", "-f", "raw", "-o", out]
    return subprocess.Popen([*command, "--pid", str(pid)], stdout=subprocess.DEVNULL)


#: Read the CSV (every column as text) and mark every 1/share-th row in `m`, for _rewrite.
_READ_MARKED = (
    "import sys, numpy as np, pyarrow as pa, pyarrow.csv as csv, pyarrow.compute as pc; "
    "t = csv.read_csv(sys.argv[1], convert_options=csv.ConvertOptions("
    "column_types={c: pa.string() for c in csv.read_csv(sys.argv[1], "
    "read_options=csv.ReadOptions(skip_rows_after_names=10**9)).column_names})); "
    "m = np.zeros(len(t), bool); m[:: round(1 / float(sys.argv[2]))] = True; "
)


def _rewrite(data: Path, share: float, change: str) -> int:
    """Rewrite the source in a child process (see generate_data), with `change` applied to the
    marked rows; returns how many were marked."""
    code = _READ_MARKED + change + "; csv.write_csv(t, sys.argv[1]); print(int(m.sum()))"
    out = subprocess.run(
        [sys.executable, "-c", code, str(data), str(share)],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(out.stdout.strip())


def change_rows(data: Path, share: float, name: str = "Changed") -> int:
    """Give every 1/share-th row the first name `name`; returns how many."""
    return _rewrite(
        data,
        share,
        "i = t.column_names.index('first_name'); "
        "t = t.set_column(i, 'first_name', pc.if_else(pa.array(m), "
        f"pa.scalar({name!r}), t.column(i)))",
    )


def drop_rows(data: Path, share: float) -> int:
    """Take every 1/share-th row out of the source; returns how many."""
    return _rewrite(data, share, "t = t.filter(pa.array(~m))")


def _members_read_s(log: Path) -> float | None:
    """Seconds from the CLI's first "removing: reading ..." line (the members who joined since
    the last mirror run, or the whole list) to the one that says what it found (to the
    second)."""
    start = None
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            t = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S"))
        except ValueError:
            continue
        if "removing: reading" in line:
            start = t if start is None else start
        elif start is not None and re.search(r"removing [\d,]+ profiles|none of the prof", line):
            return t - start
    return None


def _first_removal(env: dict[str, str], data: Path, share: float, log: Path) -> dict[str, object]:
    """The first mirror run that removes someone: it reads the whole list (nothing is kept
    yet); the measured run after it reads only who joined since."""
    left = drop_rows(data, share)
    start = time.perf_counter()
    with open(log, "w") as err:
        done = subprocess.run(
            [sys.executable, "-m", "klaviyo_tui", "run", "bench", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=err,
        )
    assert done.returncode in (0, 1), log.read_text()[-2000:]
    removed = json.loads(done.stdout.decode().splitlines()[-1])["sync"]["removed"]
    return {
        "first_removal_left_rows": left,
        "first_removal_removed": removed,
        "first_removal_wall_s": round(time.perf_counter() - start, 2),
        "first_removal_members_read_s": _members_read_s(log),
    }


def write_config(
    path: Path,
    data: Path,
    base_url: str,
    list_id: str,
    incremental: bool = False,
    mirror: bool = False,
) -> None:
    sync = "incremental = true\n" if incremental else ""
    sync += 'mode = "mirror"\n' if mirror else ""
    path.write_text(
        f"""
[connections.sandbox]
display_name = "Benchmark sandbox"
base_url = "{base_url}"
revision = "2026-07-15"
consent_accepted_at = "2026-01-01T00:00:00+00:00"
consent_accepted_by = "bench"

[segments.customers]
source = "{data}"

[exports.bench]
connection = "sandbox"
list_id = "{list_id}"
segments = ["customers"]
default_region = "US"
{sync}
[exports.bench.mapping]
email = "email"
phone_number = "phone"
first_name = "first_name"
last_name = "last_name"
properties = ["lifetime_value", "orders", "signup_date"]
""",
        encoding="utf-8",
    )


def run(
    rows: int,
    rate_limits: str,
    job_delay: float,
    keep: bool,
    incremental: float | None = None,
    profile: str | None = None,
    sandbox_profile: str | None = None,
    mirror: float | None = None,
    after_incremental: bool = False,
) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="klaviyo-bench-"))
    phases: dict[str, object] = {}
    data = work / "customers.csv"
    t0 = time.perf_counter()
    generate_data(data, rows)
    gen_s = time.perf_counter() - t0
    sandbox, base_url = start_sandbox(rate_limits, job_delay)
    spy = sample_sandbox(sandbox.pid, sandbox_profile) if sandbox_profile else None
    try:
        created = httpx.post(
            f"{base_url}/api/lists",
            headers=HEADERS,
            json={"data": {"type": "list", "attributes": {"name": "Benchmark"}}},
        )
        created.raise_for_status()
        list_id = created.json()["data"]["id"]
        config = work / "config.toml"
        two_runs = incremental is not None or mirror is not None
        write_config(config, data, base_url, list_id, two_runs, mirror is not None)
        env = dict(
            os.environ,
            KLAVIYO_TUI_CONFIG=str(config),
            KLAVIYO_TUI_DATA=str(work / "data"),
            KLAVIYO_API_KEY=DEMO_KEY,
        )
        command_of = [sys.executable, "-m", "klaviyo_tui", "run", "bench", "--json"]
        if two_runs:  # the first, full run; the second one is measured
            first = time.perf_counter()
            done = subprocess.run(command_of, env=env, capture_output=True)
            assert done.returncode in (0, 1), done.stderr.decode()[-2000:]  # 1: some rejected
            phases["first_run_s"] = round(time.perf_counter() - first, 2)
            if incremental is not None and after_incremental:  # the daily case
                change_rows(data, incremental, "Earlier")
                earlier = time.perf_counter()
                done = subprocess.run(command_of, env=env, capture_output=True)
                assert done.returncode in (0, 1), done.stderr.decode()[-2000:]
                phases["earlier_incremental_run_s"] = round(time.perf_counter() - earlier, 2)
            if incremental is not None:
                phases["changed_rows"] = change_rows(data, incremental)
            if mirror is not None:
                counts = json.loads(done.stdout.decode().splitlines()[-1])["counts"]
                phases["list_members"] = counts["imported"] + counts["imported_with_warnings"]
                phases |= _first_removal(env, data, mirror, work / "first-removal.log")
                phases["left_rows"] = drop_rows(data, mirror)
        start, started_at = time.perf_counter(), time.time()
        log = open(work / "export.log", "w")  # noqa: SIM115 - closed once the child has ended
        command_run = command_of
        command = command_run
        if profile and profile.endswith(".perf"):  # Linux perf: native frames (Arrow, numpy)
            command = ["perf", "record", "-F", "499", "-g", "-o", profile, "--", *command]
        elif profile:  # py-spy (installed by hand, not a dependency): Python frames
            # --nonblocking: pausing every thread per sample (and --native) costs the export
            # several times its own CPU; "x.native.raw" asks for native frames anyway.
            native = ["--native"] if profile.endswith(".native.raw") else ["--nonblocking"]
            command = ["py-spy", "record", *native, "-r", "100", "-o", profile, "-f", "raw"]
            command += ["--", *command_run]
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        log.close()
        phases.update(_phases(work / "export.log"))
        if mirror is not None:
            phases["members_read_s"] = _members_read_s(work / "export.log")
            why = [
                ln for ln in (work / "export.log").read_text().splitlines() if "whole list" in ln
            ]
            phases["whole_list_read"] = why[0][20:] if why else "no"
        assert proc.stdout is not None
        out = proc.stdout.read()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        summary = json.loads(lines[-1]) if lines else {}
    finally:
        if spy is not None:  # SIGINT: py-spy writes its file and detaches
            spy.send_signal(signal.SIGINT)
            spy.wait()
        sandbox.terminate()
        _, _, sandbox_usage = os.wait4(sandbox.pid, 0)
    phases["sandbox_cpu_s"] = round(sandbox_usage.ru_utime + sandbox_usage.ru_stime, 1)
    counts = summary.get("counts", {})
    imported = int(counts.get("imported", 0))
    jobs = int(summary.get("jobs", 0))
    bound = rate_limit_bound_s(jobs)
    if mirror is not None:
        pages = -(-int(str(phases["list_members"])) // 100)
        removed = int(summary.get("sync", {}).get("removed", 0))
        phases["members_bound_s"] = round(
            least_seconds_for(OPERATIONS["get_profiles_for_list"], pages), 1
        )
        phases["removals_bound_s"] = round(
            least_seconds_for(OPERATIONS["remove_profiles_from_list"], -(-removed // 1000)), 1
        )
    result = {
        "rows": rows,
        "rate_limits": rate_limits,
        "generate_s": round(gen_s, 2),
        "wall_s": round(wall, 2),
        "rows_per_s": round(rows / wall),
        "imported": imported,
        "counts": counts,
        "jobs": jobs,
        "exit_code": os.waitstatus_to_exitcode(status),
        "sync": summary.get("sync", {}),
        "cpu_user_s": round(usage.ru_utime, 2),
        "cpu_sys_s": round(usage.ru_stime, 2),
        "cpu_total_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        **phases,
        "klaviyo_bound_s": round(bound, 2),
        "ratio_to_bound": round(wall / bound, 3) if bound else None,
    }
    if rate_limits == "klaviyo" and jobs > 1:
        result |= _phase_bounds(jobs, started_at, wall, phases.get("first_sent_after_s"))
    if not keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rate-limits", choices=["off", "klaviyo"], default="off")
    parser.add_argument("--job-delay", type=float, default=0.0)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument(
        "--incremental",
        type=float,
        metavar="SHARE",
        help="measure an incremental run after SHARE (e.g. 0.01) of the rows changed",
    )
    parser.add_argument(
        "--mirror",
        type=float,
        metavar="SHARE",
        help="measure a mirror run that removes the SHARE (e.g. 0.01) of the rows that left",
    )
    parser.add_argument(
        "--after-incremental",
        action="store_true",
        help="with --incremental: the run before the measured one is incremental too (the "
        "daily case; otherwise it is the first, full run, whose state it settles)",
    )
    parser.add_argument("--profile", help="record the export with py-spy into this file")
    parser.add_argument(
        "--sandbox-profile", help="record the sandbox with py-spy (raw format) into this file"
    )
    args = parser.parse_args()
    result = run(
        args.rows,
        args.rate_limits,
        args.job_delay,
        args.keep,
        args.incremental,
        args.profile,
        args.sandbox_profile,
        args.mirror,
        args.after_incremental,
    )
    result["versions"] = " ".join(f"{k}={v}" for k, v in versions().items())
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(
        f"(benchmark process peak RSS incl. generation: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)"
    )


if __name__ == "__main__":
    main()
