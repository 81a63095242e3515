"""The pages people read, rendered by a real server: board, archive, certificate and its
verification, compliance with CSV."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx

from tests.e2e.conftest import RunningApi
from tests.factories import envelope, incoming

NOW = datetime(2026, 11, 22, tzinfo=UTC)
BOARD = "/boards/dadukou-double-100/2021-2025"


@contextmanager
def signed_in(api: RunningApi, role: str = "auditor") -> Iterator[httpx.Client]:
    """A browser-like client that signed in on /login (the key rides in a cookie)."""
    with httpx.Client(base_url=api.base_url, timeout=30) as client:
        answer = client.post("/login", data={"key": api.keys[role], "next": "/"})
        assert answer.status_code == 303 and "studyledger_key" in client.cookies
        yield client


def rows(html: str, table_id: str) -> list[str]:
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)[1:]  # without the header row


def test_public_board_pages_through_masked_entries_with_an_org_picker(district):
    with httpx.Client(base_url=district.base_url) as http:
        first = http.get(BOARD, params={"org": "A"})
        assert first.status_code == 200
        html = first.text
        entries = rows(html, "board")
        cursor = re.search(r'id="next-page" href="[^"]*cursor=([^"&]+)"', html)[1]
        second = http.get(BOARD, params={"org": "A", "cursor": cursor}).text
        english = http.get(BOARD, params={"org": "A", "lang": "en"}).text
    assert len(entries) == 50 and len(rows(second, "board")) == 12
    assert ">1<" in entries[0] and "王**明" in entries[0] and "60.00" in entries[0]
    assert re.search(r">51<", rows(second, "board")[0])
    # No learner ids in public, as whole tokens: a sealed cursor is random base64url, and
    # can hold "L1" by chance.
    assert not re.search(r"(?<![\w-])(P059|L1)(?![\w-])", html)
    assert "基础学分 ≥ 100" in html and "本周期要求" in html
    picker = html.split('id="org-picker"', 1)[1].split("</form>", 1)[0]
    assert 'value="A"' in picker and 'value="A1"' in picker and 'value="B"' not in picker
    assert "Ranking board" in english and "Next page" in english


def test_unpublished_board_is_refused_with_a_page_not_a_trace(district):
    with httpx.Client(base_url=district.base_url) as http:
        answer = http.get(BOARD, params={"org": "B"})
    assert answer.status_code == 403
    assert answer.headers["content-type"].startswith("text/html")
    assert "单位 B 的学分排名未公开" in answer.text and "Traceback" not in answer.text


def test_archive_needs_a_reader_key_and_shows_balance_checks_chart_and_trail(district):
    with httpx.Client(base_url=district.base_url) as anonymous:
        refused = anonymous.get("/learners/L1/archive")
    assert refused.status_code == 401 and "/login" in refused.text
    with signed_in(district, "platform") as platform:
        assert platform.get("/learners/L1/archive").status_code == 403
    with signed_in(district, "auditor_B") as outsider:
        assert outsider.get("/learners/L1/archive").status_code == 403
    with signed_in(district) as http:
        html = http.get("/learners/L1/archive").text
    categories = rows(html, "categories")
    assert [re.search(r"<td>(.*?)</td>", r)[1] for r in categories] == [
        "基础学分", "在职自学", "理论成果", "工作实绩"]
    assert "10.00" in categories[0]  # 40 class hours / 4
    assert len(rows(html, "requirements")) == 2 and 'role="progressbar"' in html
    assert [re.search(r"<td>(\d{4})</td>", r)[1] for r in rows(html, "annual-checks")] == [
        "2021", "2022", "2023", "2024", "2025"]
    assert html.count("<rect") == 5
    trail = rows(html, "trail")
    assert len(trail) >= 4 and re.search(r'class="hash" title="[0-9a-f]{64}">[0-9a-f]{64}<', html)


def issue_on_page(http: httpx.Client, learner: str, period: str) -> tuple[str, str]:
    """Open the preview, press "issue": (the printed page, its code)."""
    preview = http.get(f"/learners/{learner}/certificate", params={"period": period})
    assert preview.status_code == 200 and 'id="preview"' in preview.text
    assert 'id="code"' not in preview.text  # no code before it is issued
    issued = http.post(f"/learners/{learner}/certificate", data={"period": period},
                       follow_redirects=True)
    assert issued.status_code == 200, issued.text
    return issued.text, re.search(r'id="code">([^<]+)<', issued.text)[1]


UNKNOWN = "未查到该验证码：没有以此验证码签发的证明书，请核对后重试"


def outcome(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, re.search(r'id="outcome">([^<]+)<', answer.text)[1]


def test_certificate_lists_hours_and_its_code_verifies_until_a_void_changes_it(district):
    with signed_in(district) as http:
        html, code = issue_on_page(http, "L1", "2024")
    items = rows(html, "items")
    assert len(items) == 3
    assert "党校春季班" in html and "C-必修-1" in html
    assert ">必修<" in html and ">选修<" in html and "required" not in html
    totals = html.split('id="totals"', 1)[1].split("</table>", 1)[0]
    assert re.search(r"集中培训学时</th><td class=\"num\">40.00", totals)
    assert re.search(r"必修课学时</th><td class=\"num\">6.00", totals)
    assert re.search(r"合计学时</th><td class=\"num\"><strong>49.00", totals)
    assert "@media print" in html
    assert re.search(r'id="issuer">单位A<', html) and 'id="seal"' in html
    # The QR code is drawn inline, and both it and the printed URL use the configured public
    # address, not the host this request came in on.
    assert re.search(r'id="qr"[^>]*><svg', html) and "<img" not in html
    assert f"http://127.0.0.1:8000/certificates/verify?code={code}" in html
    assert district.base_url not in html
    public = httpx.Client(base_url=district.base_url)
    valid = public.get("/certificates/verify", params={"code": code})
    assert outcome(valid)[0] == 200 and "与当前档案一致" in valid.text and "张*明" in valid.text
    lower = public.get("/certificates/verify", params={"code": code.lower().replace("-", "")})
    assert "与当前档案一致" in lower.text  # as typed from paper

    void = envelope("record.voided", {"target_event_id": str(
        incoming("training.attended", {"program_id": "x", "kind": "thematic", "hours": 1,
                                       "leave_hours": 0}, source="school",
                 external_id="class-L1").event_id), "reason": "代学代考"},
        learner_id="L1", source="zzb")
    with district.client("admin") as admin:
        assert admin.post("/v1/events", json=void, params={"wait": "true"}).status_code == 201
    changed = public.get("/certificates/verify", params={"code": code, "lang": "en"})
    unknown = public.get("/certificates/verify", params={"code": "L404.2024.AAAAAAAAAAAAAAAA"})
    malformed = public.get("/certificates/verify", params={"code": "nonsense"})
    public.close()
    assert "has changed since this certificate was issued" in changed.text
    check = changed.text.split('id="check"', 1)[1].split("</table>", 1)[0]
    assert re.search(r"Total hours</th><td class=\"num\">49.00</td><td[^>]*>9.00<", check)
    assert outcome(unknown) == (404, UNKNOWN)
    # Anything that is not an issued code is simply not found, with the form to try again.
    assert outcome(malformed)[0] == 404 and 'name="code"' in malformed.text


def test_forged_codes_are_unknown_and_show_no_one(district):
    """A made-up code for a real learner and year (the old format, or the new one) answers
    exactly as for nobody at all, with no name."""
    with httpx.Client(base_url=district.base_url) as public:
        answers = [public.get("/certificates/verify", params={"code": code}) for code in (
            "L1.2024.AAAAAAAAAAAAAAAA", "L2.2024.AAAAAAAAAAAAAAAA", "AAAA-AAAA-AAAA-AAAA",
            "L404.2024.AAAAAAAAAAAAAAAA")]
        checks = [public.get(f"/v1/certificates/{code}").json()
                  for code in ("L1.2024.AAAAAAAAAAAAAAAA", "AAAA-AAAA-AAAA-AAAA")]
    assert {outcome(a)[0] for a in answers} == {404}
    assert {outcome(a)[1] for a in answers} == {UNKNOWN}
    assert not [a for a in answers if "张" in a.text or "欧" in a.text or "档案已变更" in a.text]
    assert [c["status"] for c in checks] == ["unknown", "unknown"]
    assert all(c.get("period") is None and "name" not in c for c in checks)


def test_certificates_for_periods_not_started_are_refused(district):
    with signed_in(district) as http:
        page = http.get("/learners/L1/certificate", params={"period": "2030"})
        post = http.post("/learners/L1/certificate", data={"period": "2031-2035"})
    with district.client("auditor") as api:
        json_post = api.post("/v1/learners/L1/certificates", json={"period": "2030"})
    assert page.status_code == post.status_code == json_post.status_code == 422
    assert json_post.json()["error"]["code"] == "policy_error"


def test_certificates_over_json_issue_verify_and_see_a_change(district):
    with district.client("auditor") as auditor:
        issued = auditor.post("/v1/learners/L2/certificates", json={"period": "2024"})
        again = auditor.post("/v1/learners/L2/certificates", json={"period": "2024"})
    with district.client("platform") as platform:
        refused = platform.post("/v1/learners/L2/certificates", json={"period": "2024"})
    with district.client("auditor_B") as outsider:
        outside = outsider.post("/v1/learners/L2/certificates", json={"period": "2024"})
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert {"code", "verify_url", "learner_id", "period", "totals", "issued_at",
            "issued_by"} <= body.keys()
    assert (body["learner_id"], body["period"]) == ("L2", "2024")
    assert body["totals"]["total_hours"] == "0.00"
    assert body["verify_url"].startswith("http://127.0.0.1:8000/certificates/verify?code=")
    assert again.json()["code"] != body["code"]  # each issue is its own record
    assert (refused.status_code, outside.status_code) == (403, 403)
    with httpx.Client(base_url=district.base_url) as public:
        valid = public.get(f"/v1/certificates/{body['code']}").json()
        session = incoming("study_session.recorded", {
            "course_id": "C-9", "course_hours": "2", "required": False, "minutes": 120,
            "progress": "1"}, learner_id="L2", at="2024-07-01T10:00:00+08:00", source="lms")
        district.services.ledger.record_facts([session], now=NOW, channel="test")
        changed = public.get(f"/v1/certificates/{body['code']}").json()
    assert valid["status"] == "valid" and valid["totals_now"] == valid["totals_issued"]
    assert changed["status"] == "changed"
    assert (changed["totals_issued"]["total_hours"], changed["totals_now"]["total_hours"]) == (
        "0.00", "2.00")


def test_compliance_page_sorts_and_downloads_csv(district):
    def listed(**params) -> list[str]:  # every page of the list, 50 a page
        pages = [http.get("/orgs/R/compliance", params={"period": "2023"} | params | {
            "page": page}).text for page in (1, 2)]
        return [i for html in pages
                for i in re.findall(r'archive\?period=2023&lang=zh">([^<]+)<', html)]

    with signed_in(district, "auditor_R") as http:
        ids = listed(sort="learner_id")
        by_id_desc = listed(sort="learner_id", desc="1")
        csv = http.get("/orgs/R/compliance.csv", params={"period": "2023"})
    assert len(ids) >= 60 and ids == sorted(ids)
    assert by_id_desc == ids[::-1]
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "学员,姓名,单位,达标要求,年度,要求,实际,差额,晋升"
    assert "单位A" in csv.text and "基础学分" in csv.text and "需补足学分" in csv.text
    assert "basic" not in csv.text and "make_up_required" not in csv.text
    assert {line.split(",")[0] for line in lines[1:]} == set(ids)


def test_a_certificate_of_an_org_whose_board_is_not_public_still_verifies(district):
    with signed_in(district, "auditor_B") as http:
        _, code = issue_on_page(http, "L3", "2024")
    with httpx.Client(base_url=district.base_url) as public:
        real = public.get("/certificates/verify", params={"code": code})
    assert real.status_code == 200 and "与当前档案一致" in real.text and "李*" in real.text
    assert re.search(r"单位B", real.text)


# (a leading carriage return is escaped too, but names may no longer hold one)
FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1:A9)", "\t=1+1"]


def test_compliance_csv_escapes_cells_a_spreadsheet_would_run_as_formulas(district):
    with district.client("platform") as http:
        for n, name in enumerate(FORMULAS):
            fact = envelope("learner.registered", {
                "name": name, "org_id": "A1", "rank": "township_section_and_below",
                "category": "公务员"}, learner_id=f"LCSV{n}", at="2021-01-04T09:00:00+08:00",
                source="cela")
            answer = http.post("/v1/events", params={"wait": "true"}, json=fact)
            assert answer.status_code == 201, answer.text
    with signed_in(district, "auditor_R") as http:
        answer = http.get("/orgs/R/compliance.csv", params={"period": "2023"})
    table = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"), newline="")))
    names = {row[0]: row[1] for row in table[1:]}
    assert {names[f"LCSV{n}"] for n in range(len(FORMULAS))} == {"'" + f for f in FORMULAS}
    assert names["L1"] == "张三明"  # an ordinary name is left as it is
    assert not [cell for row in table for cell in row if cell[:1] in ("=", "+", "-", "@", "\t",
                                                                      "\r")]


def cells(html: str, table_id: str) -> tuple[int, set[int]]:
    """(header cells, the set of data-cell counts per row) of a table."""
    body = html.split(f'id="{table_id}"', 1)[1].split("</table>", 1)[0]
    head, _, rest = body.partition("</thead>")
    data = {len(re.findall(r"<td[\s>]", row)) for row in re.findall(r"<tr[^>]*>(.*?)</tr>",
                                                                     rest, re.S)}
    return len(re.findall(r"<th[\s>]", head)), data


def test_the_compliance_table_has_a_header_over_every_column(district):
    with signed_in(district, "auditor_R") as http:
        html = http.get("/orgs/R/compliance", params={"period": "2023"}).text
    assert cells(html, "short") == (6, {6})
    header = html.split('id="short"', 1)[1].split("</thead>", 1)[0]
    assert "未达标项" in header and "差额合计" in header and "晋升" in header


def test_api_docs_load_their_scripts_from_this_server(district):
    with httpx.Client(base_url=district.base_url) as http:
        page = http.get("/docs")
        assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.text)
        loaded = [http.get(url) for url in assets]
        outside = http.get("/docs/assets/..%2F..%2F__init__.py")
    assert page.status_code == 200 and "cdn" not in page.text and "//" not in "".join(assets)
    assert len(assets) >= 2 and all(a.status_code == 200 for a in loaded)
    assert any(b"SwaggerUIBundle" in a.content for a in loaded)
    assert outside.status_code == 404


def test_pages_speak_chinese_with_local_times_words_and_titles(district):
    with signed_in(district) as http:
        archive = http.get("/learners/L1/archive").text
        english = http.get("/learners/L1/archive", params={"lang": "en"}).text
        missing = http.get("/orgs/A/compliance")
        unknown_org = http.get(BOARD, params={"org": "999"})
    trail = archive.split('id="trail"', 1)[1].split("</table>", 1)[0]
    # registered 2021-01-04T09:00+08:00: shown in Beijing time, not as 01:00Z
    assert "2021-01-04 09:00" in trail and "T01:00" not in trail and "Z<" not in trail
    assert "建立档案" in trail and "脱产培训" in trail and ">learner.registered<" not in trail
    assert "大渡口区干部学习“双百”学分制" in archive and ">dadukou-double-100" not in archive
    assert "Registered" in english and "Dadukou double-100 credits" in english
    assert missing.status_code == 422 and "缺少参数 period" in missing.text
    assert unknown_org.status_code == 404 and "单位 999 未登记" in unknown_org.text
    assert "is not registered" not in unknown_org.text
