"""Unit tests of the Klaviyo client against httpx.MockTransport: headers, parsing, retries, errors.

The loopback integration tests (tests/klaviyo/test_client_sandbox.py) cover the same operations
against the real sandbox; these pin edge cases the sandbox does not produce (null links, odd hosts).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from klaviyo_tui.errors import ExitCode
from klaviyo_tui.klaviyo import (
    AuthError,
    InvalidBaseURL,
    InvalidConfiguration,
    KlaviyoClient,
    KlaviyoError,
    NotFoundError,
    RequestRejected,
    ScopeError,
    UnexpectedResponse,
    check_base_url,
    mask_key,
)
from tests.support.client import BASE, JSONAPI, KEY, Recorder, doc, err, job_obj, list_obj, make

# ---- construction ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://a.klaviyo.com",
        "https://a.klaviyo.com/",
        "http://127.0.0.1:8123",
        "http://127.5.0.1:80",
        "http://localhost:9000",
        "http://[::1]:9000",
    ],
)
def test_base_url_accepted(url: str) -> None:
    assert not check_base_url(url).endswith("/")


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://a.klaviyo.com", "https://"),
        ("http://10.0.0.5:8000", "loopback"),
        ("http://127.0.0.1.evil.example", "https://"),
        ("ftp://a.klaviyo.com", "https://"),
        ("https://user:pw@a.klaviyo.com", "password"),
        ("https://a.klaviyo.com?x=1", "query"),
        ("not a url", ""),
    ],
)
def test_base_url_refused(url: str, words: str) -> None:
    with pytest.raises(InvalidBaseURL) as info:
        KlaviyoClient(url, KEY)
    assert words in str(info.value)
    assert info.value.exit_code == ExitCode.USAGE
    assert KEY not in str(info.value)


def test_key_masked_everywhere() -> None:
    assert mask_key(KEY) == "pk_…6789"
    client = KlaviyoClient(BASE, KEY)
    assert KEY not in repr(client)
    assert "pk_…6789" in repr(client)
    with pytest.raises(AuthError):
        KlaviyoClient(BASE, "pk_with space")
    with pytest.raises(InvalidConfiguration):
        KlaviyoClient(BASE, KEY, revision="latest")


async def test_headers_and_timeouts_on_every_request() -> None:
    rec = Recorder(lambda r: doc({"data": [], "links": {"next": None}}))
    async with make(rec, timeout=httpx.Timeout(5.0, connect=2.0)) as k:
        await k.lists()
        with pytest.raises(UnexpectedResponse):
            await k.submit_import(b'{"data": {}}')
    get, post = rec.requests
    for r in (get, post):
        assert r.headers["authorization"] == f"Klaviyo-API-Key {KEY}"
        assert r.headers["revision"] == "2026-07-15"
        assert r.headers["accept"] == JSONAPI
        timeout = r.extensions["timeout"]
        assert timeout["connect"] == 2.0
        assert timeout["read"] == 5.0
    assert "content-type" not in get.headers
    assert post.headers["content-type"] == JSONAPI
    assert post.content == b'{"data": {}}'


# ---- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("end", [{"next": None}, {}, {"next": ""}, None])
async def test_pagination_stops_on_null_absent_or_empty_next(end: dict[str, Any] | None) -> None:
    pages = {
        None: {
            "data": [list_obj("AAAAA1", "one")],
            "links": {"next": "https://elsewhere.example/api/lists?page%5Bcursor%5D=p2"},
        },
        "p2": {"data": [list_obj("AAAAA2", "two")]} | ({"links": end} if end is not None else {}),
    }
    rec = Recorder(lambda r: doc(pages[r.url.params.get("page[cursor]")]))
    async with make(rec) as k:
        lists = await k.lists()
    assert [lst.id for lst in lists] == ["AAAAA1", "AAAAA2"]
    assert lists[0].created is not None
    assert lists[0].updated is None
    # The next link named another host; the client stayed on its own origin (the key stays home).
    assert {r.url.host for r in rec.requests} == {"a.klaviyo.com"}


async def test_lists_by_name_filters_and_checks_exact_name() -> None:
    rec = Recorder(lambda r: doc({"data": [list_obj("AAAAA1", "VIP"), list_obj("B", "VIP 2")]}))
    async with make(rec) as k:
        found = await k.lists("VIP")
        weird = await k.lists('say "hi" it\'s')
    assert [lst.id for lst in found] == ["AAAAA1"]
    assert rec.requests[0].url.params["filter"] == 'equals(name,"VIP")'
    assert weird == []
    assert "filter" not in rec.requests[1].url.params  # unquotable: filtered client-side


async def test_job_parsed_leniently() -> None:
    body = {
        "data": job_obj(
            "01J3Y8ZQ6W2XH1M4T7V5B0C9DA",
            "PROCESSING",
            total_count="5000",
            completed_count=None,
            failed_count=4.0,
            started_at="garbage",
        )
        | {"relationships": {"lists": {"data": [{"type": "list", "id": "Y6nRLr"}]}}}
    }
    rec = Recorder(lambda r: doc(body))
    async with make(rec) as k:
        job = await k.get_job("01J3Y8ZQ6W2XH1M4T7V5B0C9DA")
    assert (job.status, job.total_count, job.completed_count, job.failed_count) == (
        "processing",
        5000,
        0,
        4,
    )
    assert job.started_at is None
    assert job.created_at is not None
    assert job.list_ids == ("Y6nRLr",)
    assert job.running


async def test_submit_without_job_id_is_an_error() -> None:
    rec = Recorder(lambda r: doc({"data": {"type": "profile-bulk-import-job"}}, 202))
    async with make(rec) as k:
        with pytest.raises(UnexpectedResponse, match="no job id"):
            await k.submit_import(b"{}")


async def test_bad_ids_never_reach_the_network() -> None:
    rec = Recorder(lambda r: doc({}))
    async with make(rec) as k:
        for bad in ["", "a/b", "..", "x?y", "a b"]:
            with pytest.raises(InvalidConfiguration):
                await k.get_list(bad)
            with pytest.raises(InvalidConfiguration):
                await k.get_job(bad)
    assert rec.requests == []


# ---- errors ------------------------------------------------------------------------------------


async def test_400_row_pointers_and_no_retry() -> None:
    body = {
        "errors": [
            {
                "status": 400,
                "code": "invalid",
                "title": "Invalid input.",
                "detail": "x is not a valid email address.",
                "source": {"pointer": "/data/attributes/profiles/data/3/attributes/email"},
            },
            {
                "status": "400",
                "code": "invalid",
                "title": "Invalid input.",
                "detail": "bad list",
                "source": {"pointer": "/data/relationships/lists/data/0/id"},
            },
        ]
    }
    rec = Recorder(lambda r: doc(body, 400))
    async with make(rec) as k:
        with pytest.raises(RequestRejected) as info:
            await k.submit_import(b"{}")
    assert len(rec.requests) == 1
    assert info.value.row_errors == [(3, "email", "x is not a valid email address.")]
    assert [e.detail for e in info.value.unattributed] == ["bad list"]
    assert {e.status for e in info.value.errors} == {400}
    assert info.value.exit_code == ExitCode.INPUT


@pytest.mark.parametrize(
    ("answer", "kind", "words"),
    [
        (err(401, "bad key"), AuthError, "Klaviyo rejected the API key (pk_…6789)"),
        (err(403, "nope"), ScopeError, "lacks the scope lists:read"),
        (err(404, "gone"), NotFoundError, "list AAAAA1 does not exist in this account"),
        (err(405, "method"), RequestRejected, "method"),
        (err(400, f"revision {KEY} unknown", parameter="revision"), InvalidConfiguration, "rev"),
    ],
)
async def test_error_mapping(answer: httpx.Response, kind: type[KlaviyoError], words: str) -> None:
    rec = Recorder(lambda r: answer)
    async with make(rec) as k:
        with pytest.raises(kind) as info:
            await k.get_list("AAAAA1")
    assert words in str(info.value)
    assert KEY not in str(info.value)
    assert len(rec.requests) == 1  # never retried


async def test_server_text_echoing_the_key_is_scrubbed() -> None:
    rec = Recorder(lambda r: err(400, f"key {KEY} is odd"))
    async with make(rec) as k:
        with pytest.raises(RequestRejected) as info:
            await k.lists()
    assert KEY not in str(info.value)
    assert "pk_…6789" in str(info.value)
    assert all(KEY not in e.detail for e in info.value.errors)


# ---- revisions ---------------------------------------------------------------------------------

FUTURE = "Unable to specify a future revision date."
MISSING = "No valid revisions found for method GET on path /api/lists/{id}."
REDIRECT = httpx.Response(302, headers={"location": "/elsewhere"})


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (err(404, FUTURE), "Unable to specify a future revision date"),
        (err(404, MISSING), "No valid revisions found for method"),
        (err(410, "This revision has been retired."), "(it may be retired)"),
        (httpx.Response(410, text="Gone"), "HTTP 410 Gone"),
        (err(400, "Invalid revision header", parameter="revision"), "Invalid revision"),
    ],
)
async def test_revision_errors_say_which_revision_and_what_to_set(
    answer: httpx.Response, words: str
) -> None:
    rec = Recorder(lambda r: answer)
    async with make(rec, revision="2099-01-01") as k:
        with pytest.raises(InvalidConfiguration) as info:
            await k.get_list("AAAAA1")  # a 404 here used to read "list does not exist"
    text = str(info.value)
    assert "'2099-01-01'" in text
    assert words in text
    assert "set the connection's revision" in text.lower()
    assert "2026-07-15" in text
    assert info.value.exit_code == ExitCode.USAGE
    assert len(rec.requests) == 1


def key_check_klaviyo(overrides: dict[tuple[str, str], httpx.Response]) -> Recorder:
    """A Klaviyo where the key has every scope, except where `overrides` answer otherwise."""

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        hit = overrides.get((request.method, path))
        if hit is not None:
            return hit
        if request.method == "POST":
            return err(400, "invalid body", pointer="/data")
        if path == "/api/accounts":
            return doc({"data": [{"type": "account", "id": "ACC1", "attributes": {}}]})
        return doc({"data": []})

    return Recorder(handler)


async def test_verify_key_reports_subscriptions_write_as_optional() -> None:
    subscribe = ("POST", "/api/profile-subscription-bulk-create-jobs")
    for answer, expected in (
        (err(400, "bad body", pointer="/data"), True),
        (err(403, "no permission"), False),
        (err(404, "No resource here."), False),  # a server without the endpoint: unconfirmed
    ):
        rec = key_check_klaviyo({subscribe: answer})
        async with make(rec) as k:
            check = await k.verify_key()
        assert check.granted["subscriptions:write"] is expected
        assert check.ok  # optional: never in `missing`
        assert "subscriptions:write" not in check.missing
    assert rec.requests[-1].content == b"{}"


@pytest.mark.parametrize(
    ("where", "answer", "kind"),
    [
        (("GET", "/api/lists"), err(404, MISSING), InvalidConfiguration),
        (("POST", "/api/lists"), err(404, FUTURE), InvalidConfiguration),
        (("GET", "/api/accounts"), err(404, "Not found."), UnexpectedResponse),
        (("POST", "/api/profile-bulk-import-jobs"), err(404, "Not found."), UnexpectedResponse),
        (("GET", "/api/profile-bulk-import-jobs"), err(409, "odd"), UnexpectedResponse),
        (
            ("POST", "/api/lists"),
            httpx.Response(302, headers={"location": "/"}),
            UnexpectedResponse,
        ),
        (("POST", "/api/lists"), err(410, "retired"), InvalidConfiguration),
    ],
)
async def test_verify_key_never_reads_an_unexpected_answer_as_granted(
    where: tuple[str, str], answer: httpx.Response, kind: type[KlaviyoError]
) -> None:
    rec = key_check_klaviyo({where: answer})
    async with make(rec) as k:
        with pytest.raises(kind) as info:
            await k.verify_key()
    assert KEY not in str(info.value)


async def test_import_errors_are_scrubbed_of_the_key() -> None:
    item = {
        "type": "import-error",
        "id": "e1",
        "attributes": {
            "code": "invalid",
            "title": f"Bad {KEY}",
            "detail": f"key {KEY} echoed",
            "source": {"pointer": "/data"},
            "original_payload": {"email": "a@x.com", "properties": {"note": [f"x{KEY}y"]}},
        },
    }
    rec = Recorder(lambda r: doc({"data": [item]}))
    async with make(rec) as k:
        (error,) = await k.import_errors("01J3Y8ZQ6W2XH1M4T7V5B0C9DA")
    assert KEY not in repr(error)
    assert error.detail == "key pk_…6789 echoed"
    assert error.original_payload == {"email": "a@x.com", "properties": {"note": ["xpk_…6789y"]}}
