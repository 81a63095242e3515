"""A real browser (Debian's headless Chromium driven through chromedriver) reads the public
board, pages through it, signs in and opens an archive, and saves screenshots."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

BOARD = "/boards/dadukou-double-100/2021-2025?org=A"


def click_and_wait(browser: webdriver.Chrome, element: WebElement) -> None:
    """Click a link or button and wait for the next page: reading right after the click
    could still find the old page's elements, which go stale under the reader."""
    page = browser.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(browser, 20).until(expected_conditions.staleness_of(page))


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
