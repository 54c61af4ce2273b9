"""The console the way a person uses it: a real headless Chromium against `gateway serve`.

Without the token the console is refused; with it, the figures are the callbacks sent;
searching an order opens its trace, with its deliveries and their events. The page loads
nothing its Content-Security-Policy forbids (Chromium would log the refusal).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.browser import chromium
from tests.console.scenario import ORDER, console_gateway, send_callbacks, wait_for_events
from tests.helpers import outbound_callback

pytestmark = pytest.mark.slow


def figure(browser: WebDriver, metric: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, f'[data-metric="{metric}"]').text)


def log_in(browser: WebDriver, token: str) -> None:
    browser.find_element(By.ID, "token").send_keys(token)
    browser.find_element(By.CSS_SELECTOR, "form.login button").click()


def events_on_topic(data_dir: Path, key: str) -> set[str]:
    """The ce_ids on the outbound topic for `key`, read from the file independently."""
    conn = sqlite3.connect(f"file:{data_dir / 'log.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT headers FROM records WHERE topic = 'oc.outbound.orders.v1' AND key = ?",
            (key.encode(),),
        ).fetchall()
    finally:
        conn.close()
    return {dict(json.loads(h))["ce_id"] for (h,) in rows}


def test_an_operator_finds_an_order_in_the_console(tmp_path: Path) -> None:
    with console_gateway(tmp_path) as (gateway, token):
        sent = send_callbacks(gateway.url)
        wait_for_events(gateway.metrics_url, sent.published)
        console = f"{gateway.metrics_url}/console"

        # The webhook port has no console, whatever the token.
        assert httpx.get(f"{gateway.url}/console/").status_code == 404
        assert (
            httpx.get(
                f"{gateway.url}/console/", headers={"authorization": f"Bearer {token}"}
            ).status_code
            == 404
        )
        answer = httpx.get(f"{console}/api/summary")
        assert answer.status_code == 401
        assert "default-src 'none'" in answer.headers["content-security-policy"]

        with chromium(tmp_path / "profile") as browser:
            browser.get(f"{console}/")
            assert browser.current_url == f"{console}/login"  # no token: refused
            assert not browser.find_elements(By.CSS_SELECTOR, "[data-metric]")

            log_in(browser, "not-the-token")
            WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.CSS_SELECTOR, ".error"))
            assert "Wrong token." in browser.find_element(By.CSS_SELECTOR, ".error").text
            assert not browser.find_elements(By.CSS_SELECTOR, "[data-metric]")

            log_in(browser, token)
            WebDriverWait(browser, 30).until(lambda b: b.current_url == f"{console}/")
            assert figure(browser, "received_total") == str(sent.received)
            assert figure(browser, "accepted_total") == str(sent.accepted)
            assert figure(browser, "refused_total") == str(sent.refused)
            assert figure(browser, "quarantined_total") == str(sent.quarantined)
            assert figure(browser, "published_total") == str(sent.published)
            assert figure(browser, "dead_lettered_total") == "0"
            rows = browser.find_elements(By.CSS_SELECTOR, "#deliveries tr")
            assert len(rows) == sent.received
            assert "verification_failed" in rows[0].text  # newest first
            assert "quarantined" in rows[1].text
            cookie = browser.get_cookie("gw_console_session")
            assert cookie is not None
            assert cookie["httpOnly"]
            assert cookie["sameSite"] == "Strict"
            assert token not in cookie["value"]

            # The script refreshes the figures without a reload.
            httpx.post(
                f"{gateway.url}/webhooks/oc/test-token/outbound",
                content=outbound_callback("OCO0000011225099GB", "Submitted", message_id="late"),
                headers={"content-type": "application/json"},
            ).raise_for_status()
            WebDriverWait(browser, 30).until(
                lambda b: figure(b, "received_total") == str(sent.received + 1)
            )

            search = browser.find_element(By.CSS_SELECTOR, "form.search input[name=entity]")
            search.send_keys(ORDER)
            search.submit()
            WebDriverWait(browser, 30).until(lambda b: "Trace of" in b.title)
            assert browser.find_element(By.TAG_NAME, "h1").text == f"Trace of {ORDER}"
            deliveries = browser.find_elements(By.CSS_SELECTOR, "article.delivery")
            assert len(deliveries) == 4
            outcomes = [d.find_element(By.CSS_SELECTOR, "h3 .badge").text for d in deliveries]
            assert outcomes == ["published", "published", "published", "duplicate"]
            shown = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "table.events td.id")}
            assert shown == events_on_topic(tmp_path / "data", ORDER)
            assert len(shown) == 3
            assert "NOT FOUND" not in browser.page_source
            assert "Jane Doe" not in browser.page_source  # the policy drops the name
            problems = browser.find_element(By.CSS_SELECTOR, ".problems")
            assert "quarantined" in problems.text  # the body of unknown shape names the order

            refused = [
                entry["message"]
                for entry in browser.get_log("browser")  # type: ignore[no-untyped-call]
                if "Content Security Policy" in entry["message"] or "Refused" in entry["message"]
            ]
            assert refused == []

        metrics = httpx.get(f"{gateway.metrics_url}/metrics").text
        assert 'gateway_console_auth_failures_total{reason="wrong_token"} 1.0' in metrics
        assert token not in gateway.log_path.read_text()
