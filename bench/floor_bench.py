"""The floor under the exporter's CPU: what a 1M-row export cannot avoid asking of its libraries.

    python bench/floor_bench.py --rows 1000000

Each piece of work an export of export_bench.py's data must do is done once here, the cheapest
way the libraries it is built on allow, and timed in CPU seconds of this process (pyarrow's
threads included; start-up in a child process):

- start-up: a fresh interpreter importing pandas, pyarrow (csv, compute), numpy, httpx, orjson;
- read: the mapped columns parsed once, as strings, by pyarrow's streaming CSV reader;
- emails: trimmed, lower-cased and checked by one RE2 pattern;
- phones: digits kept, the default region's country code put in front (no per-region metadata,
  so less than a real check: a lower bound);
- dedupe: a 64-bit SipHash of every email (pandas), sorted;
- bodies: every profile's JSON (escaped where a value needs it) and request bodies of 10,000
  profiles, built by the exporter's own jsoncols and bodies modules: no cheaper way is known;
- upload: those bodies POSTed to the sandbox over loopback by one httpx client.

Their sum is a floor for an export built on CPython, pandas, pyarrow and httpx, not a target: a
real run also validates phones against each region's rules, reports every rejected row with its
reason, finds identifiers that customers share, keeps history and confirms every job. It says
how far the exporter's CPU (export_bench.py's cpu_total_s) is from what the libraries cost.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_bench import HEADERS, generate_data, start_sandbox, versions  # noqa: E402
from sdk_bench import new_list  # noqa: E402  (sibling scripts)

from klaviyo_tui.input import bodies as bodies_of  # noqa: E402
from klaviyo_tui.input import jsoncols  # noqa: E402

COLUMNS = ["email", "phone", "first_name", "last_name", "lifetime_value", "orders", "signup_date"]
PER_JOB = 10_000
JOBS = "/api/profile-bulk-import-jobs"
_EMAIL_SHAPE = r"^[a-z0-9_%+\-]+(\.[a-z0-9_%+\-]+)*@[a-z0-9\-]+(\.[a-z0-9\-]+)+$"
_STARTUP = "import pandas, pyarrow.csv, pyarrow.compute, numpy, httpx, orjson"


def startup_cpu() -> float:
    """CPU of a fresh interpreter that imports what an export needs, and nothing of ours."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", _STARTUP], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def chunks(path: Path) -> Iterator[pa.RecordBatch]:
    options = pacsv.ConvertOptions(
        include_columns=COLUMNS, column_types={c: pa.string() for c in COLUMNS}
    )
    yield from pacsv.open_csv(path, convert_options=options)


def email_keys(batch: pa.RecordBatch) -> pa.Array:
    keys = pc.utf8_lower(pc.utf8_trim_whitespace(batch.column("email")))
    return pc.if_else(pc.match_substring_regex(keys, _EMAIL_SHAPE), keys, None)


def phones(batch: pa.RecordBatch) -> pa.Array:
    """Digits only, +1 in front of ten; null unless 11 to 15 digits result."""
    digits = pc.replace_substring_regex(batch.column("phone"), r"[^0-9]", "")
    size = pc.utf8_length(digits)
    e164 = pc.binary_join_element_wise(pc.if_else(pc.equal(size, 10), "+1", "+"), digits, "")
    return pc.if_else(pc.and_(pc.greater(size, 9), pc.less(size, 16)), e164, None)


def dedupe(keys: list[pa.Array]) -> np.ndarray:
    values = pa.chunked_array(keys).cast(pa.binary()).to_numpy(zero_copy_only=False)
    hashes = pd.util.hash_array(np.asarray(values, dtype=object), categorize=False)
    return np.sort(hashes)


def profiles(batch: pa.RecordBatch, emails: pa.Array, e164: pa.Array) -> pa.Array:
    """Each row's profile resource as JSON, assembled the cheapest way we know (the exporter's own
    jsoncols: one gather over constant pieces and escaped values), invalid emails left out."""
    kept = emails.is_valid()
    column = batch.column

    def quoted(key: str, values: pa.Array) -> jsoncols.Field:
        return jsoncols.json_field(key, values.filter(kept), quoted=True)

    def number(key: str) -> jsoncols.Field:
        return jsoncols.json_field(key, column(key).filter(kept), quoted=False)

    top = [quoted("email", emails), quoted("phone_number", e164)]
    top += [quoted(name, column(name)) for name in ("first_name", "last_name")]
    props = [number("lifetime_value"), number("orders")]
    props.append(quoted("signup_date", column("signup_date")))
    return jsoncols.profiles(int(pc.sum(kept).as_py() or 0), top, [("properties", props)])


def bodies(resources: list[pa.Array], list_id: str) -> list[bytes]:
    """Request bodies of PER_JOB profiles each, joined as the exporter joins them."""
    every = pa.chunked_array(resources)
    out = []
    for start in range(0, len(every), PER_JOB):
        part = every.slice(start, PER_JOB).combine_chunks().cast(pa.binary())
        joined = bodies_of.joined(part)
        out.append(bodies_of.PREFIX + bytes(joined) + bodies_of.suffix(list_id))
    return out


class Stages:
    """CPU seconds per stage, summed over chunks."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def timing(self, label: str) -> Iterator[None]:
        start = time.process_time()
        yield
        self.seconds[label] = self.seconds.get(label, 0.0) + time.process_time() - start


def measure(data: Path, base_url: str, list_id: str) -> dict[str, float]:
    stages = Stages()
    stages.seconds["start-up (child process)"] = startup_cpu()
    reader = chunks(data)
    keys: list[pa.Array] = []
    resources: list[pa.Array] = []
    while True:
        with stages.timing("read (mapped columns, once)"):
            batch = next(reader, None)
        if batch is None:
            break
        with stages.timing("emails"):
            emails = email_keys(batch)
        with stages.timing("phones (no metadata)"):
            e164 = phones(batch)
        with stages.timing("profile JSON"):
            resources.append(profiles(batch, emails, e164))
        keys.append(emails)
    with stages.timing("dedupe (hash + sort)"):
        dedupe(keys)
    with stages.timing("request bodies"):
        payloads = bodies(resources, list_id)
    with httpx.Client(base_url=base_url, headers=HEADERS, timeout=120) as client:
        for body in payloads:
            with stages.timing("upload (httpx)"):
                response = client.post(JOBS, content=body)
            assert response.status_code == 202, response.text[:500]
    return stages.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="klaviyo-floor-") as work:
        data = Path(work) / "customers.csv"
        generate_data(data, args.rows)  # the same data as export_bench.py
        sandbox, base_url = start_sandbox("off", 0.0)
        try:
            seconds = measure(data, base_url, new_list(base_url, "Floor"))
        finally:
            sandbox.terminate()
            sandbox.wait()
    for label, value in seconds.items():
        print(f"{label:32s} {value:6.2f} s")
    print(f"{'floor (sum)':32s} {sum(seconds.values()):6.2f} s CPU for {args.rows:,} rows")
    print("versions", " ".join(f"{k}={v}" for k, v in versions().items()))


if __name__ == "__main__":
    main()
