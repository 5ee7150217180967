"""The one rule for Klaviyo base URLs, used by the config, the client and the sandbox.

Only https:// is accepted, except loopback addresses (the sandbox), because the API key travels in
a header: plain http anywhere else would send it unencrypted.
"""

from __future__ import annotations

import ipaddress

import httpx

from klaviyo_tui.errors import AppError, ExitCode


class UnsafeBaseURL(AppError):
    """The base URL cannot be used; the message says why and what to use instead."""

    title = "The base URL is not allowed"
    default_hint = "Use https://a.klaviyo.com, or a loopback URL for the sandbox."
    exit_code = ExitCode.USAGE


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def normalise_base_url(base_url: str) -> str:
    """The base URL without a trailing slash; raises UnsafeBaseURL when it is not acceptable."""
    try:
        url = httpx.URL(base_url.strip())
    except (httpx.InvalidURL, TypeError) as exc:
        raise UnsafeBaseURL(
            f"The Klaviyo base URL {base_url!r} is not a valid URL ({exc})."
        ) from None
    if not url.host:
        raise UnsafeBaseURL(
            f"The Klaviyo base URL {base_url!r} has no host; use https://a.klaviyo.com."
        )
    if url.userinfo:
        raise UnsafeBaseURL("The Klaviyo base URL must not contain a user name or password.")
    if url.query or url.fragment:
        raise UnsafeBaseURL(f"The Klaviyo base URL {base_url!r} must not have a query or fragment.")
    if url.scheme == "http" and not is_loopback_host(url.host):
        raise UnsafeBaseURL(
            f"The Klaviyo base URL {base_url!r} uses plain http://, which would send the API key "
            "unencrypted; use https:// (plain http is allowed only for loopback, e.g. the sandbox)."
        )
    if url.scheme not in ("http", "https"):
        raise UnsafeBaseURL(
            f"The Klaviyo base URL {base_url!r} must start with https:// "
            "(e.g. https://a.klaviyo.com)."
        )
    return str(url).rstrip("/")


def base_url_problem(base_url: str) -> str | None:
    """None when the base URL is acceptable, else what is wrong with it."""
    try:
        normalise_base_url(base_url)
    except UnsafeBaseURL as problem:
        return str(problem)
    return None
