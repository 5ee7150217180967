"""Micro-benchmark of the data pipeline: µs per row for each stage on generated customers.

    python bench/pipeline_bench.py [ROWS] [--keep DIR]

Stages are timed in CPU seconds of this process (time.process_time), which is what the export's
CPU budget counts; pyarrow's reader threads are included.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from klaviyo_tui.demo.sample_data import generate_customers
from klaviyo_tui.input import mapping
from klaviyo_tui.input.batching import BatchPacker
from klaviyo_tui.input.pipeline import first_pass, iter_validated
from klaviyo_tui.input.sources import read_chunks
from klaviyo_tui.store.config import Export, Mapping, Segment

MAPPING = Mapping(
    email="email",
    phone_number="phone",
    first_name="first_name",
    last_name="last_name",
    location={"city": "city", "country": "country", "zip": "zip"},
    properties=("lifetime_value", "orders", "signup_date", "vip"),
)


def _report(label: str, seconds: float, rows: int) -> None:
    print(f"{label:34s} {seconds:7.2f} s CPU  {seconds / rows * 1e6:6.2f} µs/row")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rows", type=int, nargs="?", default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    tmp = args.dir or Path(tempfile.mkdtemp(prefix="klaviyo-bench-"))
    path = tmp / f"customers-{args.rows}.csv"
    rows = args.rows
    if not path.exists():
        t = time.process_time()
        generate_customers(path, rows)
        _report("generate (sample_data)", time.process_time() - t, rows)
    seg = Segment("customers", str(path))
    export = Export("bench", "sandbox", "LIST01", ("customers",), MAPPING)

    t = time.process_time()
    for _ in read_chunks(seg, MAPPING.columns()):
        pass
    _report("read CSV (mapped columns)", time.process_time() - t, rows)

    t = time.process_time()
    first_pass(export, [seg])
    _report("first pass (email keys, kinds)", time.process_time() - t, rows)

    calls = {"email": 0, "phone": 0}
    careful_email, careful_phone = mapping.careful_email, mapping.careful_phone

    def count_email(value: str) -> tuple[str | None, str]:
        calls["email"] += 1
        return careful_email(value)

    def count_phone(value: str, region: str) -> tuple[str | None, str]:
        calls["phone"] += 1
        return careful_phone(value, region)

    mapping.careful_email, mapping.careful_phone = count_email, count_phone  # type: ignore[assignment]
    t = time.process_time()
    packer = BatchPacker(export.list_id)
    valid = batches = 0
    pack_s = 0.0
    for item in iter_validated(export, {"customers": seg}):
        if isinstance(item, mapping.ValidatedChunk):
            p = time.process_time()
            valid += item.valid
            columns = (item.payload_array, item.row_array, item.email_array)
            batches += len(packer.add_arrays(*columns, item.segment))
            pack_s += time.process_time() - p
    batches += packer.flush() is not None
    total = time.process_time() - t
    _report("pipeline: both passes + validate", total - pack_s, rows)
    _report("batch packing", pack_s, rows)
    _report("TOTAL file -> packed batches", total, rows)
    print(f"valid {valid}, batches {batches}, careful calls: {calls}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MB")


if __name__ == "__main__":
    main()
