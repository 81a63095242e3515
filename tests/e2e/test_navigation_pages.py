"""The way around the pages over HTTP: home with the compliance rate, learner search, the
cycle and policy pickers, compliance paging and unit filter, and signing out."""

from __future__ import annotations

import re

import httpx

from tests.e2e.test_pages import rows, signed_in

CYCLE = "2021-2025"


def test_home_signed_out_links_the_board_and_sign_in_in_chinese(district):
    with httpx.Client(base_url=district.base_url) as http:
        html = http.get("/").text
    assert 'lang="zh-CN"' in html and "登录" in html
    # The clock's cycle (2026-2030) has no credits yet: the page shows the latest that has.
    assert 'id="not-current"' in html
    assert f'href="/boards/dadukou-double-100/{CYCLE}?org=A' in html
    assert 'id="rate"' not in html


def test_home_signed_in_shows_the_scope_compliance_rate_and_links(district):
    with district.client("auditor") as api:
        report = api.get("/v1/orgs/A/compliance", params={"period": CYCLE}).json()
    meeting = report["learners_in_scope"] - len(report["short"])
    with signed_in(district) as http:
        html = http.get("/").text
        english = http.get("/", params={"lang": "en"}).text
    assert "达标率" in html and 'id="logout"' in html
    assert f'<span id="meeting">{meeting}</span>' in html
    assert f'<span id="in-scope">{report["learners_in_scope"]}</span>' in html
    assert f'href="/orgs/A/compliance?policy=dadukou-double-100&amp;period={CYCLE}' in html
    assert 'id="search"' in html
    assert "Compliance rate" in english and "Sign out" in english


def test_learner_search_by_id_or_name_stays_within_the_keys_scope(district):
    with signed_in(district) as http:
        by_id = rows(http.get("/learners", params={"q": "l1"}).text, "found")
        by_name = rows(http.get("/learners", params={"q": "欧阳"}).text, "found")
        wildcard = rows(http.get("/learners", params={"q": "%"}).text, "found")
    assert len(by_id) == 1 and "/learners/L1/archive" in by_id[0]
    assert len(by_name) == 1 and "L2" in by_name[0]
    assert "暂无记录" in wildcard[0]  # % is a character to find, not a wildcard
    with signed_in(district, "auditor_B") as http:
        outside = rows(http.get("/learners", params={"q": "张三明"}).text, "found")
        assert "暂无记录" in outside[0]
        assert "李四" in rows(http.get("/learners", params={"q": "李"}).text, "found")[0]


def test_logout_clears_the_cookie_and_the_pages_ask_to_sign_in_again(district):
    with signed_in(district) as http:
        out = http.get("/logout")
        assert out.status_code == 303 and out.headers["location"] == "/"
        assert "studyledger_key" not in http.cookies
        assert http.get("/learners", params={"q": "L1"}).status_code == 401
        assert 'id="login"' in http.get("/").text


def test_board_picker_goes_to_the_chosen_policy_and_cycle(district):
    with httpx.Client(base_url=district.base_url) as http:
        picked = http.get("/boards", params={"policy": "cadre-regs-2023", "period": CYCLE,
                                             "org": "A", "lang": "en"})
        assert picked.status_code == 303
        assert picked.headers["location"] == f"/boards/cadre-regs-2023/{CYCLE}?org=A&lang=en"
        html = http.get(f"/boards/dadukou-double-100/{CYCLE}", params={"org": "A"}).text
    assert 'action="/boards"' in html
    assert f'<option value="{CYCLE}" selected>' in html
    assert '<option value="cadre-regs-2023" >' in html


def test_compliance_list_pages_by_50_and_filters_by_unit(district):
    with signed_in(district) as http:
        first = http.get("/orgs/A/compliance", params={"period": CYCLE}).text
        second = http.get("/orgs/A/compliance", params={"period": CYCLE, "page": 2}).text
        unit = http.get("/orgs/A/compliance", params={"period": CYCLE, "unit": "A1"}).text
        outside = http.get("/orgs/A/compliance", params={"period": CYCLE, "unit": "B"})
        english = http.get("/orgs/A/compliance", params={"period": CYCLE, "lang": "en"}).text
    short = int(re.search(r'id="short-count">(\d+)<', first).group(1))
    assert short > 50
    assert len(rows(first, "short")) == 50
    assert len(rows(second, "short")) == short - 50
    assert "第 1 / 2 页" in first and 'id="next-page"' in first
    assert "第 2 / 2 页" in second and 'id="previous-page"' in second
    unit_rows = rows(unit, "short")
    assert unit_rows and all("/learners/L1/" not in r for r in unit_rows)  # L1 is in A, not A1
    assert '<option value="A1" selected>' in unit
    assert outside.status_code == 422
    assert "Page 1 of 2" in english and "Compliance rate" in english
