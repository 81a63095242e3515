"""A real browser (Debian's headless Chromium driven through chromedriver) reads the public
board, pages through it, signs in, opens an archive, compliance list and certificate,
verifies codes, and saves screenshots; every page at a desktop and a phone width."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.factories import envelope, incoming

BOARD = "/boards/dadukou-double-100/2021-2025?org=A"


def click_and_wait(browser: webdriver.Chrome, element: WebElement) -> None:
    """Click a link or button and wait for the next page: reading right after the click
    could still find the old page's elements, which go stale under the reader."""
    page = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 20).until(lambda _: _gone(page))


def _gone(element: WebElement) -> bool:
    """Whether the element has left the document. Asked while the old page is being torn
    down, chromedriver may answer "Node with given id does not belong to the document" as
    an unknown error rather than as a stale element: both mean gone."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        if "does not belong to the document" in str(exc):
            return True
        raise
    return False


@pytest.fixture
def browser(tmp_path: Path):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.fail("Debian's chromium and chromium-driver are needed: `make test` installs "
                    "them (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                 "--window-size=1000,1400"):
        options.add_argument(flag)
    session = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    try:
        yield session
    finally:
        session.quit()


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
def test_a_browser_pages_the_board_and_opens_an_archive(api, district, browser, tmp_path):
    browser.get(api.base_url + BOARD)
    first_page = browser.find_elements(By.CSS_SELECTOR, "#board tbody tr")
    assert len(first_page) == 50
    click_and_wait(browser, browser.find_element(By.ID, "next-page"))
    second_page = browser.find_elements(By.CSS_SELECTOR, "#board tbody tr")
    assert len(second_page) == 12
    assert second_page[0].find_element(By.TAG_NAME, "td").text == "51"
    board_shot = tmp_path / "board.png"
    assert browser.save_screenshot(str(board_shot))

    browser.get(api.base_url + "/login?next=/learners/L1/archive")
    browser.find_element(By.NAME, "key").send_keys(api.keys["auditor"])
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    assert "L1" in browser.find_element(By.TAG_NAME, "h1").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#trail tbody tr")) >= 4
    click_and_wait(browser, browser.find_element(By.CLASS_NAME, "lang"))  # keeps the page
    assert "Learning archive" in browser.find_element(By.TAG_NAME, "h1").text

    browser.set_window_size(390, 844)  # a phone: tables scroll inside, the page does not
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1
    archive_shot = tmp_path / "archive.png"
    assert browser.save_screenshot(str(archive_shot))
    for shot in (board_shot, archive_shot):
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


# Per table: header cells, and the data-cell count of each body row (rows spanning columns
# with colspan are a note, not data). Tables without a <thead> pair th and td per row.
CELLS_JS = """
return Array.from(document.querySelectorAll('table')).filter(t => t.tHead).map(t => [
  t.id, t.tHead.querySelectorAll('th').length,
  Array.from(t.tBodies[0].rows).filter(r => !r.querySelector('[colspan]'))
       .map(r => r.cells.length)]);
"""
WIDTHS = {"desktop": (1280, 900), "phone": (390, 844)}


def check_page(browser: webdriver.Chrome, url: str, name: str, shots: Path) -> None:
    """At both widths: no sideways scrolling, no page taller than 3 screens per 50 rows,
    a header cell over every data cell; a screenshot of each."""
    for width_name, (width, height) in WIDTHS.items():
        browser.set_window_size(width, height)
        browser.get(url)
        overflow = browser.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (name, width_name, overflow)
        rows = browser.execute_script("return document.querySelectorAll('tbody tr').length")
        page_height, screen = browser.execute_script(
            "return [document.documentElement.scrollHeight, window.innerHeight]")
        assert page_height <= 3 * screen * max(1, rows / 50), (name, width_name, page_height)
        for table, headers, data in browser.execute_script(CELLS_JS):
            assert all(n == headers for n in data), (name, table, headers, data)
        # Chromium's headless screenshot is of the window; widen it to the whole page.
        browser.set_window_size(width, min(page_height + 140, 6000))
        shot = shots / f"{name}-{width_name}.png"
        assert browser.save_screenshot(str(shot))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
def test_every_page_reads_well_on_a_desktop_and_a_phone(api, district, browser, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    base = api.base_url
    browser.get(base + "/login?next=/")
    browser.find_element(By.NAME, "key").send_keys(api.keys["auditor_R"])
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    browser.get(base + "/learners/L1/certificate?period=2024")
    assert browser.find_elements(By.ID, "preview")
    click_and_wait(browser, browser.find_element(By.CSS_SELECTOR, "#issue button"))
    code = browser.find_element(By.ID, "code").text
    assert browser.find_element(By.CSS_SELECTOR, "#qr svg")
    certificate_url = browser.current_url
    for name, path in (("board", BOARD), ("archive", "/learners/L1/archive"),
                       ("compliance", "/orgs/R/compliance?period=2023"),
                       ("home", "/"), ("search", "/learners?q=%E6%98%8E"),
                       ("docs", "/docs")):
        check_page(browser, base + path, name, shots)
    check_page(browser, certificate_url, "certificate", shots)
    check_page(browser, f"{base}/certificates/verify?code={code}", "verify-valid", shots)
    assert "与当前档案一致" in browser.find_element(By.ID, "outcome").text

    void = envelope("record.voided", {"target_event_id": str(
        incoming("training.attended", {"program_id": "x", "kind": "thematic", "hours": 1,
                                       "leave_hours": 0}, source="school",
                 external_id="class-L1").event_id), "reason": "代学代考"},
        learner_id="L1", source="zzb")
    with httpx.Client(base_url=base, headers={
            "Authorization": f"Bearer {api.keys['admin']}"}) as admin:
        assert admin.post("/v1/events", json=void, params={"wait": "true"}).status_code == 201
    check_page(browser, f"{base}/certificates/verify?code={code}", "verify-changed", shots)
    assert "档案已变更" in browser.find_element(By.ID, "outcome").text
    assert browser.find_elements(By.CSS_SELECTOR, "#check tr.differs")
    check_page(browser, f"{base}/certificates/verify?code=L1.2024.AAAAAAAAAAAAAAAA",
               "verify-forged", shots)
    assert "未查到该验证码" in browser.find_element(By.ID, "outcome").text
    assert "张" not in browser.find_element(By.TAG_NAME, "main").text
