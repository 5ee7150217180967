"""The TUI through a full-speed run: how late the event loop gets, and how often the UI draws.

    python bench/tui_bench.py --rows 1000000

The real app runs headless (Textual's `run_test`, the same app and screens, no terminal) against
`klaviyo-tui sandbox` in its own process (limits off), and starts the export the way the Home
screen does (`start_run`). While it runs, a task sleeps 10 ms at a time and records how late
each sleep wakes: that lateness is the event loop's lag, what a key press would wait. The UI's
frame rate is the number of screen updates the app writes to its (headless) driver per second.
Printed: lag p50/p99/max, frames per second, the run's wall time and rows/s, and this process's
CPU time (the TUI runs the export in-process: reading thread included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from export_bench import generate_data, start_sandbox, versions, write_config  # noqa: E402
from sdk_bench import new_list  # noqa: E402

from klaviyo_tui.sandbox import DEMO_KEY  # noqa: E402

SAMPLE_S = 0.010


async def _sample_lag(lags: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        start = loop.time()
        await asyncio.sleep(SAMPLE_S)
        lags.append(max(0.0, loop.time() - start - SAMPLE_S))


async def drive(config: Path, export: str, limit_s: float) -> dict[str, object]:
    from klaviyo_tui.tui.app import make_app

    app = make_app(config)
    lags: list[float] = []
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 30
        while export not in app.config.exports:
            if time.monotonic() > deadline:
                raise SystemExit("the app did not load the config")
            await pilot.pause(0.05)
        driver = app._driver
        assert driver is not None
        written = [0, 0]  # updates, bytes

        class Drawing(type(driver)):  # type: ignore[misc]
            """The headless driver, but the app renders every update in full (as it would for
            a terminal) and the bytes are counted, not shown."""

            @property
            def is_headless(self) -> bool:
                return False

            def write(self, data: str) -> None:
                written[0] += 1
                written[1] += len(data)

            def flush(self) -> None:
                pass

        driver.__class__ = Drawing
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample_lag(lags, stop))
        cpu0 = time.process_time()
        start = time.perf_counter()
        handle = app.start_run(export)
        assert handle is not None
        while handle.progress.summary is None and handle.progress.error is None:
            if time.perf_counter() - start > limit_s:
                raise SystemExit("the run did not finish in time")
            # not pilot.pause(): it forces a screen update of its own, one no terminal would get
            await asyncio.sleep(0.1)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        stop.set()
        await sampler
        progress = handle.progress
    ordered = sorted(lags)
    return {
        "wall_s": round(wall, 2),
        "confirmed": progress.confirmed,
        "error": progress.error,
        "rows_per_s": round(progress.read / wall) if wall else None,
        "cpu_s": round(cpu, 2),
        "lag_samples": len(lags),
        "lag_p50_ms": round(statistics.median(ordered) * 1000, 1),
        "lag_p99_ms": round(ordered[int(len(ordered) * 0.99) - 1] * 1000, 1),
        "lag_max_ms": round(ordered[-1] * 1000, 1),
        "frames_per_s": round(written[0] / wall, 1),
        "drawn_kb_per_s": round(written[1] / wall / 1024, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


async def _debug(work: Awaitable[dict[str, object]], slow_ms: float) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    loop.set_debug(True)
    loop.slow_callback_duration = slow_ms / 1000
    return await work


def first_frame(config: Path, runs: int) -> list[float]:
    """Seconds from starting `klaviyo-tui` on a terminal (a pty, 120x40) until its first screen
    with the app's title has been written, `runs` times."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    times = []
    for _ in range(runs):
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = dict(os.environ, KLAVIYO_TUI_CONFIG=str(config), TERM="xterm-256color")
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "klaviyo_tui"],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env=env,
            start_new_session=True,
        )
        os.close(follower)
        seen = b""
        try:
            while b"klaviyo-tui" not in seen:
                ready, _, _ = select.select([leader], [], [], 10)
                if not ready:
                    raise SystemExit("no first frame within 10 s")
                seen += os.read(leader, 65536)
            times.append(time.perf_counter() - start)
        finally:
            proc.terminate()
            proc.wait()
            os.close(leader)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--slow-ms", type=float, default=0, help="log loop steps slower than this")
    parser.add_argument(
        "--first-frame", type=int, default=0, metavar="N", help="only time the first frame, N times"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="klaviyo-tui-bench-"))
    if args.first_frame:
        config = work / "config.toml"
        write_config(config, work / "customers.csv", "http://127.0.0.1:9", "LIST01")
        os.environ["KLAVIYO_TUI_DATA"] = str(work / "data")
        times = sorted(first_frame(config, args.first_frame))
        print(f"first frame  {times[0]:.2f}-{times[-1]:.2f} s ({len(times)} runs)")
        print("versions     " + " ".join(f"{k}={v}" for k, v in versions().items()))
        return
    data = work / "customers.csv"
    generate_data(data, args.rows)
    sandbox, base_url = start_sandbox("off", 0.0)
    try:
        config = work / "config.toml"
        write_config(config, data, base_url, new_list(base_url, "TUI benchmark"))
        os.environ.update(
            KLAVIYO_TUI_CONFIG=str(config),
            KLAVIYO_TUI_DATA=str(work / "data"),
            KLAVIYO_API_KEY=DEMO_KEY,
        )
        if args.slow_ms:  # name every event-loop step slower than this (asyncio's debug mode)
            import logging

            logging.basicConfig(level=logging.WARNING)
            result = asyncio.run(_debug(drive(config, "bench", args.timeout), args.slow_ms))
        else:
            result = asyncio.run(drive(config, "bench", args.timeout))
    finally:
        sandbox.terminate()
        sandbox.wait()
    width = max(len(k) for k in result)
    print(f"{'rows':<{width}}  {args.rows}")
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    print(f"{'versions':<{width}}  " + " ".join(f"{k}={v}" for k, v in versions().items()))


if __name__ == "__main__":
    main()
