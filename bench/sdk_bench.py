"""klaviyo-tui against the straightforward official-SDK script, same sandbox, same rows.

    python bench/sdk_bench.py --rows 200000

The comparison script is what a Klaviyo user would write with the official `klaviyo-api`
package: read the CSV with the csv module, build the profiles as dicts, send one bulk import job
per 10,000 rows, one after the other, and poll each job (once a second) until it is complete.
It runs in a throwaway venv under /tmp (created on first use, `pip install klaviyo-api`): the
SDK is never a dependency of this project. `--sdk-python` points at another interpreter that has
it; `--httpx-loop` runs the same loop with plain httpx instead (when the SDK cannot be installed).

Both talk to one `klaviyo-tui sandbox` process (limits off, as in export_bench.py), each into a
list of its own. The data has no invalid emails (`invalid_rate=0`): one bad email fails a whole
bulk job with a 400, which the straightforward loop does not handle; klaviyo-tui would reject it
row by row. Printed: each side's wall time, the ratio, and what each side got into its list.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_bench import HEADERS, start_sandbox, versions, write_config  # noqa: E402

from klaviyo_tui.sandbox import DEMO_KEY  # noqa: E402

SDK_VENV = Path(tempfile.gettempdir()) / "klaviyo-sdk-bench-venv"

SDK_SCRIPT = """
import csv, sys, time
from klaviyo_api import KlaviyoAPI

path, base_url, list_id, key = sys.argv[1:5]
klaviyo = KlaviyoAPI(key, max_delay=60, max_retries=3, test_host=base_url)
with open(path, newline="", encoding="utf-8") as f:
    rows = list(csv.DictReader(f))
completed = failed = 0
for start in range(0, len(rows), 10000):
    profiles = []
    for r in rows[start : start + 10000]:
        attributes = {"email": r["email"].strip(), "first_name": r["first_name"],
                      "last_name": r["last_name"],
                      "properties": {"lifetime_value": r["lifetime_value"],
                                     "orders": r["orders"], "signup_date": r["signup_date"]}}
        if r["phone"].strip():
            attributes["phone_number"] = r["phone"].strip()
        profiles.append({"type": "profile", "attributes": attributes})
    body = {"data": {"type": "profile-bulk-import-job",
                     "attributes": {"profiles": {"data": profiles}},
                     "relationships": {"lists": {"data": [{"type": "list", "id": list_id}]}}}}
    job = klaviyo.Profiles.bulk_import_profiles(body)
    job_id = job["data"]["id"] if isinstance(job, dict) else job.data.id
    while True:
        status = klaviyo.Profiles.get_bulk_import_profiles_job(job_id)
        attrs = status["data"]["attributes"] if isinstance(status, dict) else status.data.attributes
        state = attrs["status"] if isinstance(attrs, dict) else attrs.status
        if state in ("complete", "failed", "cancelled"):
            break
        time.sleep(1)
    done = attrs["completed_count"] if isinstance(attrs, dict) else attrs.completed_count
    bad = attrs["failed_count"] if isinstance(attrs, dict) else attrs.failed_count
    completed += done or 0
    failed += bad or 0
print(f"completed {completed} failed {failed}")
"""

HTTPX_SCRIPT = SDK_SCRIPT.replace(
    "from klaviyo_api import KlaviyoAPI",
    "import httpx",
).replace(
    "klaviyo = KlaviyoAPI(key, max_delay=60, max_retries=3, test_host=base_url)",
    """headers = {"Authorization": f"Klaviyo-API-Key {key}", "revision": "2026-07-15",
           "Accept": "application/vnd.api+json", "Content-Type": "application/vnd.api+json"}
http = httpx.Client(base_url=base_url, headers=headers, timeout=60)
class Profiles:
    @staticmethod
    def bulk_import_profiles(body):
        r = http.post("/api/profile-bulk-import-jobs", json=body); r.raise_for_status()
        return r.json()
    @staticmethod
    def get_bulk_import_profiles_job(job_id):
        r = http.get(f"/api/profile-bulk-import-jobs/{job_id}"); r.raise_for_status()
        return r.json()
class klaviyo:
    Profiles = Profiles""",
)


def sdk_python(given: str | None) -> str:
    """An interpreter with klaviyo-api: the given one, or a throwaway venv under /tmp."""
    if given:
        return given
    python = SDK_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SDK_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "klaviyo-api"], check=True)
    return str(python)


def new_list(base_url: str, name: str) -> str:
    created = httpx.post(
        f"{base_url}/api/lists",
        headers=HEADERS,
        json={"data": {"type": "list", "attributes": {"name": name}}},
    )
    created.raise_for_status()
    return str(created.json()["data"]["id"])


def members(base_url: str, list_id: str) -> int:
    """How many profiles the list holds, by paging through its members."""
    count = 0
    url: str | None = (
        f"{base_url}/api/lists/{list_id}/profiles?page[size]=100&fields[profile]=email"
    )
    while url:
        page = httpx.get(url, headers=HEADERS)
        page.raise_for_status()
        doc = page.json()
        count += len(doc["data"])
        url = (doc.get("links") or {}).get("next")
    return count


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + sys) and stdout of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{command[:3]} failed ({status}): {out[-500:]}")
    return wall, usage.ru_utime + usage.ru_stime, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--sdk-python", help="an interpreter that has klaviyo-api installed")
    parser.add_argument("--httpx-loop", action="store_true", help="the same loop with httpx")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="klaviyo-sdk-bench-"))
    data = work / "customers.csv"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from klaviyo_tui.demo.sample_data import generate_customers; "
            "generate_customers(Path(sys.argv[1]), int(sys.argv[2]), invalid_rate=0, seed=2)",
            str(data),
            str(args.rows),
        ],
        check=True,
    )
    python = sys.executable if args.httpx_loop else sdk_python(args.sdk_python)
    script = work / "loop.py"
    script.write_text(HTTPX_SCRIPT if args.httpx_loop else SDK_SCRIPT, encoding="utf-8")
    sandbox, base_url = start_sandbox("off", 0.0)
    try:
        ours = new_list(base_url, "klaviyo-tui")
        config = work / "config.toml"
        write_config(config, data, base_url, ours)
        env = dict(
            os.environ,
            KLAVIYO_TUI_CONFIG=str(config),
            KLAVIYO_TUI_DATA=str(work / "data"),
            KLAVIYO_API_KEY=DEMO_KEY,
        )
        tui_wall, tui_cpu, _ = timed(
            [sys.executable, "-m", "klaviyo_tui", "run", "bench", "--json"], env
        )
        theirs = new_list(base_url, "sdk")
        sdk_wall, sdk_cpu, sdk_out = timed(
            [python, str(script), str(data), base_url, theirs, DEMO_KEY]
        )
        in_ours, in_theirs = members(base_url, ours), members(base_url, theirs)
    finally:
        sandbox.terminate()
        sandbox.wait()
    side = "httpx loop" if args.httpx_loop else "official SDK loop"
    print(f"rows                {args.rows}")
    print(f"klaviyo-tui         {tui_wall:.2f} s wall, {tui_cpu:.2f} s CPU, {in_ours} in list")
    print(
        f"{side:<19} {sdk_wall:.2f} s wall, {sdk_cpu:.2f} s CPU, {in_theirs} in list "
        f"({sdk_out.strip()})"
    )
    print(f"ratio (wall)        {sdk_wall / tui_wall:.2f}x")
    print("versions            " + " ".join(f"{k}={v}" for k, v in versions().items()))


if __name__ == "__main__":
    main()
