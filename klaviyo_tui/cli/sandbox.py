"""`klaviyo-tui sandbox`: serve the sandbox in the foreground (the lead registers it in cli.py)."""

from __future__ import annotations

import sys

import click

from klaviyo_tui.klaviyo.urls import is_loopback_host
from klaviyo_tui.sandbox.settings import (
    DEMO_KEY,
    FAULT_KINDS,
    SandboxSettings,
    parse_faults,
    parse_key,
    parse_regions,
)

_EPILOG = f"""Sandbox keys are not secrets: they only open this in-memory sandbox, which is why
they may be given with --key on the command line (never do that with a real Klaviyo key).
Without --key the documented demo key {DEMO_KEY} works, with every scope.

Fault kinds: {", ".join(FAULT_KINDS)}. Example:

\b
  --faults 429=0.1,retry0=0.02,500=0.05,503=0.02,524=0.01,reset=0.02
  --faults stuck=0.05,badstatus=0.02,quota=0.3,rowfail=0.01
"""


@click.command("sandbox", epilog=_EPILOG)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=0, help="Port (default: a free one)."
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="KEY[:SCOPE,...]",
    help="Accept this sandbox key (repeatable), optionally limited to the listed scopes.",
)
@click.option(
    "--rate-limits",
    type=click.Choice(["klaviyo", "off"]),
    default="klaviyo",
    show_default=True,
    help="Enforce Klaviyo's per-operation burst/steady limits, or not (daily caps stay).",
)
@click.option(
    "--faults",
    "faults_spec",
    default="",
    metavar="SPEC",
    help="Inject seeded faults: KIND=PROBABILITY,... (quota=SHARE of every rate window).",
)
@click.option(
    "--sms-regions",
    "sms_regions",
    default="",
    metavar="US,CA",
    help="Regions whose phone numbers the account accepts (default: every region).",
)
@click.option(
    "--job-delay",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Seconds a bulk import job takes from queued to complete.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for ids and faults.")
def sandbox_command(
    host: str,
    port: int,
    keys: tuple[str, ...],
    rate_limits: str,
    faults_spec: str,
    sms_regions: str,
    job_delay: float,
    seed: int,
) -> None:
    """Run a Klaviyo-compatible sandbox server on loopback until interrupted.

    The first line of stdout is the base URL to use as the connection's base_url; the second
    is an API key it accepts (the first --key, else the demo key).
    """
    from klaviyo_tui.sandbox.server import serve  # uvicorn import only when actually serving

    if not is_loopback_host(host):
        raise click.UsageError(
            f"--host {host} is not a loopback address. The sandbox has no TLS and accepts "
            "published demo keys, so it only listens on loopback (127.0.0.1 or ::1)."
        )
    try:
        parsed = dict(parse_key(k) for k in keys)
        faults = parse_faults(faults_spec)
        settings = SandboxSettings(
            keys=parsed or None,
            rate_limits=rate_limits == "klaviyo",
            faults=faults,
            job_delay=job_delay,
            seed=seed,
            sms_regions=parse_regions(sms_regions),
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    key = next(iter(settings.effective_keys))

    def announce(url: str) -> None:
        click.echo(url)
        click.echo(key)
        sys.stdout.flush()

    try:
        serve(settings, host, port, on_listening=announce)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        raise click.ClickException(
            f"could not listen on {host}:{port}: {exc.strerror or exc}. Try another --port."
        ) from None
