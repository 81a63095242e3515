"""Page cursors over HTTP: sealed (no learner id readable, no forging, no reuse on another
listing), and hostile query and path parameters answered with the error model, never a 500."""

from __future__ import annotations

import base64
import binascii
import json
from urllib.parse import quote

import pytest

from infra.views.reads import SqlReadViews
from tests.factories import envelope

POLICY, CYCLE = "dadukou-double-100", "2021-2025"
BOARD = f"/v1/boards/{POLICY}/{CYCLE}"
# The district fixture's ids of four characters or more: long enough that finding one by
# chance in a cursor's decoded bytes is out of the question (~1 in 16,000 runs for the
# cursors below). Not in the cursor's text: four base64 characters in a row match one of
# these ids in about one run in 50.
LONG_IDS = [f"P{n:03d}" for n in range(60)]


def unsigned(value: object) -> str:
    """A cursor in the old, readable format: base64 of JSON."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def readable(cursor: str) -> object | None:
    """What a curious reader gets out of a cursor: its JSON, if it has any."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        return None


def assert_error(answer, status: int = 422,  # noqa: ANN001, ANN201
                 codes: tuple[str, ...] = ("invalid_cursor",)):
    assert answer.status_code == status, (answer.request.url, answer.text)
    error = answer.json()["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] in codes, error
    return error


def page_through(http, path: str, params: dict, limit: int) -> tuple[list, list[str]]:  # noqa: ANN001
    entries, cursors, cursor = [], [], None
    while True:
        answer = http.get(path, params=params | {"limit": limit} | (
            {"cursor": cursor} if cursor else {}))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        entries += body["entries"]
        cursor = body["next_cursor"]
        if cursor is None:
            return entries, cursors
        cursors.append(cursor)


def test_anonymous_board_cursors_hide_learner_ids_and_page_through_the_board(district):
    with district.client() as anonymous:
        entries, cursors = page_through(anonymous, BOARD, {"org": "A"}, limit=1)
    with district.client("auditor") as auditor:
        full = auditor.get(BOARD, params={"org": "A", "limit": 500}).json()
        paged, auditor_cursors = page_through(auditor, BOARD, {"org": "A"}, limit=7)
    assert len(entries) == len(full["entries"]) == 62 and len(cursors) == 61
    assert entries == [{k: v for k, v in e.items() if k != "learner_id"}
                       for e in full["entries"]]
    assert paged == full["entries"]
    for cursor in cursors + auditor_cursors:
        assert readable(cursor) is None, cursor
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        assert len(raw) > 16, cursor  # sealed: a 16-byte tag, then the enciphered content
        assert not any(learner.encode() in raw for learner in LONG_IDS)


def test_history_cursors_are_sealed_and_page_through_the_trail(district):
    with district.client("platform") as http:
        for hours in (8, 16, 24):
            http.post("/v1/events", json=envelope(
                "training.attended", {"program_id": "P", "kind": "thematic", "hours": hours,
                                      "leave_hours": 0}, learner_id="L2", source="cela"))
    with district.client("auditor") as http:
        paged, cursors = page_through(http, "/v1/learners/L2/history", {}, limit=1)
        whole = http.get("/v1/learners/L2/history", params={"limit": 500}).json()
    assert paged == whole["entries"] and len(cursors) == len(paged) - 1 >= 3
    assert all(readable(c) is None and not c.isdigit() for c in cursors)


def test_altered_foreign_and_handmade_cursors_are_refused_with_invalid_cursor(district):
    with district.client() as anonymous:
        board_a = anonymous.get(BOARD, params={"org": "A", "limit": 2}).json()["next_cursor"]
        board_a1 = anonymous.get(BOARD, params={"org": "A1", "limit": 2}).json()["next_cursor"]
    with district.client("auditor") as auditor:
        trail_l1 = auditor.get("/v1/learners/L1/history",
                               params={"limit": 1}).json()["next_cursor"]
    # The same page of the same board, sealed by a server with another secret.
    other_secret = district.settings.model_copy(update={"secret_key": "x" * 40})
    foreign = SqlReadViews(other_secret, district.services.ledger).board(
        POLICY, CYCLE, org="A", limit=2, cursor=None, anonymous=True).next_cursor
    assert foreign and foreign != board_a

    def flipped(cursor: str, at: int) -> str:
        at %= len(cursor)
        return cursor[:at] + ("A" if cursor[at] != "A" else "B") + cursor[at + 1:]

    board_refused = [
        flipped(board_a, 0), flipped(board_a, len(board_a) // 2), flipped(board_a, -1),
        board_a[:-1], board_a + "A", board_a + "=", " " + board_a, board_a.upper(),
        board_a1,  # another org's board
        trail_l1,  # a history cursor
        foreign,   # another secret
        unsigned([29900, "L1"]), unsigned([0, "P000"]), "%%%", "é" * 10,
    ]
    with district.client() as anonymous:
        for cursor in board_refused:
            assert_error(anonymous.get(BOARD, params={"org": "A", "cursor": cursor}))
        # the page, too, refuses it (as a page)
        page = anonymous.get(f"/boards/{POLICY}/{CYCLE}",
                             params={"org": "A", "cursor": flipped(board_a, 3)})
        assert page.status_code == 422 and page.headers["content-type"].startswith("text/html")
    with district.client("auditor_R") as auditor:
        assert auditor.get(BOARD, params={"org": "A", "cursor": board_a}).status_code == 200
        for cursor in (flipped(trail_l1, 5), board_a, "2", "1"):
            assert_error(auditor.get("/v1/learners/L1/history", params={"cursor": cursor}))
        assert_error(auditor.get("/v1/learners/L2/history", params={"cursor": trail_l1}))
        assert auditor.get("/v1/learners/L1/history",
                           params={"cursor": trail_l1}).status_code == 200


def test_a_cursor_from_one_worker_is_accepted_by_another(district):
    """Every worker (and every restart) reads the one secret kept in the store."""
    second_worker = SqlReadViews(district.settings, district.services.ledger)
    cursor = second_worker.board(POLICY, CYCLE, org="A", limit=5, cursor=None,
                                 anonymous=True).next_cursor
    with district.client() as anonymous:
        served = anonymous.get(BOARD, params={"org": "A", "limit": 5}).json()["next_cursor"]
        answer = anonymous.get(BOARD, params={"org": "A", "limit": 5, "cursor": cursor})
    assert cursor == served and answer.status_code == 200
    assert answer.json()["entries"][0]["rank"] == 6


@pytest.mark.parametrize("cursor", [
    unsigned([2**63, "L1"]), unsigned([2**70, "L"]), unsigned([-(2**63) - 1, "L"]),
    unsigned([2**63 - 1, "L1"]), unsigned([True, "L1"]), unsigned([1, "L\x00"]),
    unsigned([1, "L", 3]), unsigned({"score": 1}),
    base64.urlsafe_b64encode(b"[" * 5000).decode(),
], ids=["2^63", "2^70", "-2^63-1", "2^63-1", "bool", "nul", "three", "object", "nested"])
def test_handmade_board_cursors_need_no_key_to_be_refused_and_never_give_500(district, cursor):
    with district.client() as anonymous:
        assert_error(anonymous.get(BOARD, params={"org": "A", "cursor": cursor}))


@pytest.mark.parametrize("cursor", ["²", "٣", "１", "9" * 4301, "9" * 5000, "-1", "1e3"],
                         ids=["superscript", "arabic-indic", "fullwidth", "4301-digits",
                              "5000-digits", "negative", "exponent"])
def test_odd_history_cursors_are_422_not_500(district, cursor):
    with district.client("auditor") as http:
        error = assert_error(http.get("/v1/learners/L1/history", params={"cursor": cursor}))
    assert error["details"][0]["field"] == "cursor"


def test_nul_in_a_parameter_is_invalid_input_on_both_stores(district):
    """PostgreSQL text cannot hold U+0000: it failed in the database (500) before."""
    nul = quote("\x00")
    with district.client() as anonymous:
        for path, params in [(BOARD, {"org": "\x00"}), (BOARD, {"org": "A\x00"}),
                             (f"/v1/boards/{nul}/{CYCLE}", {"org": "A"}),
                             (f"/v1/boards/{POLICY}/{nul}", {"org": "A"})]:
            error = assert_error(anonymous.get(path, params=params),
                                 codes=("invalid_request",))
            assert "NUL" in error["message"]
    with district.client("auditor_R") as http:
        for path, params in [
                (f"/v1/learners/L1{nul}/balance", {"period": CYCLE}),
                (f"/v1/learners/{nul}/history", {}), (f"/v1/learners/{nul}/verify", {}),
                ("/v1/learners/L1/balance", {"period": "2023\x00"}),
                ("/v1/learners/L1/balance", {"period": CYCLE, "policy": "\x00"}),
                (f"{BOARD}/learners/{nul}", {}), (f"{BOARD}/learners/L1", {"org": "\x00"}),
                (f"/v1/orgs/{nul}/compliance", {"period": "2023"}),
                ("/v1/orgs/R/statistics", {"year": "2023", "policy": "x\x00"})]:
            error = assert_error(http.get(path, params=params), codes=("invalid_request",))
            assert error["details"][0]["field"].startswith(("path.", "query."))
        page = http.get("/orgs/R/compliance", params={"period": "2023\x00"})
    assert page.status_code == 422 and "NUL" in page.text


ODD_VALUES = [
    "", " ", "-1", "0", "1" * 30, "10" * 40, "abc", "²", "٣", "１２", "1e3", "NaN", "inf", "null",
    "true", "[]", "{}", "0000", "9999", "0000-9999", "2025-2021", "2021-2021", "-2021", "2021-",
    "2021-2025-2030", "x" * 5000, "../../etc/passwd", "' OR 1=1 --", "\u202e", "😀", "%", "%00",
    "\r\n", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z",
    "2024-02-30T00:00:00Z", "2024-01-01T00:00:00+99:00", "2024-01-01T00:00:00",
]


def odd_requests(value: str) -> list[tuple[str, dict[str, str]]]:
    segment = quote(value, safe="")
    return [
        (BOARD, {"org": "A", "limit": value}), (BOARD, {"org": value}),
        (f"/v1/boards/{POLICY}/{segment}", {"org": "A"}),
        (f"/v1/boards/{segment}/{CYCLE}", {"org": "A"}),
        (f"{BOARD}/learners/{segment}", {}), (f"{BOARD}/learners/L1", {"org": value}),
        ("/v1/learners/L1/history", {"as_of": value}), ("/v1/learners/L1/history",
                                                         {"limit": value}),
        (f"/v1/learners/{segment}/history", {}), (f"/v1/learners/{segment}/verify", {}),
        ("/v1/learners/L1/balance", {"period": value}),
        ("/v1/learners/L1/balance", {"period": CYCLE, "policy": value}),
        ("/v1/learners/L1/balance", {"period": CYCLE, "as_of": value}),
        (f"/v1/learners/{segment}/balance", {"period": CYCLE}),
        (f"/v1/orgs/{segment}/compliance", {"period": "2023"}),
        ("/v1/orgs/R/compliance", {"period": value}),
        ("/v1/orgs/R/compliance", {"period": "2023", "policy": value}),
        ("/v1/orgs/R/statistics", {"year": value}),
        ("/v1/orgs/R/statistics", {"year": "2023", "policy": value}),
        (f"/boards/{POLICY}/{segment}", {"org": "A"}), (f"/boards/{segment}/{CYCLE}",
                                                        {"org": "A"}),
        ("/certificates/verify", {"code": value}),
        ("/certificates/verify", {"code": f"L1.{value}.AAAA"}),
        ("/learners/L1/archive", {"period": value}), ("/learners/L1/archive",
                                                      {"policy": value}),
        ("/learners/L1/certificate", {"period": value}),
        ("/orgs/R/compliance", {"period": value}),
        ("/orgs/R/compliance", {"period": "2023", "sort": value}),
        ("/orgs/R/compliance.csv", {"period": value}),
    ]


@pytest.mark.parametrize("role", [None, "auditor_R"])
def test_odd_query_and_path_parameters_never_give_a_500(district, role):
    """limit, period, policy, as_of, org, ids and codes: every odd value is a 4xx with the
    error model (an HTML page on the pages), never a server error."""
    failures = []
    with district.client(role) as http:
        for value in ODD_VALUES:
            for path, params in odd_requests(value):
                # a fresh connection each: a 500 used to reset the next keep-alive request
                answer = http.get(path, params=params, headers={"Connection": "close"})
                if answer.status_code >= 500:
                    failures.append((path, params, answer.status_code, answer.text[:120]))
                elif answer.status_code >= 400 and path.startswith("/v1/"):
                    assert set(answer.json()["error"]) == {"code", "message", "details"}
    assert failures == []
