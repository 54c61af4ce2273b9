"""The README's pictures of the console: `python -m tests.console.screenshots [DIR]`.

Starts `gateway serve` with the console on, sends the browser test's callbacks, logs in
with the same headless Chromium the test drives, and saves the overview and one order's
trace as PNG files (docs/ by default).
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.console.browser import chromium
from tests.console.scenario import (
    ORDER,
    console_gateway,
    send_callbacks,
    wait_for_events,
    wait_for_no_lag,
)

REPO = Path(__file__).resolve().parents[2]
WIDTH = 1280


def _save(browser: WebDriver, path: Path, most: int) -> None:
    """The page from its top, as tall as it is (at most `most` pixels)."""
    browser.execute_script("window.scrollTo(0, 0)")
    height = int(browser.execute_script("return document.documentElement.scrollHeight"))
    metrics = {"width": WIDTH, "height": min(most, height), "deviceScaleFactor": 1, "mobile": False}
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    png = browser.get_screenshot_as_png()
    browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    # 256 colours are plenty for a page of text and flat colours: a third of the bytes.
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256).save(path, optimize=True)
    sys.stdout.write(f"{path}\n")


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else REPO / "docs"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, console_gateway(Path(tmp)) as (gateway, token):
        sent = send_callbacks(gateway.url)
        wait_for_events(gateway.metrics_url, sent.published)
        wait_for_no_lag(gateway.metrics_url)
        console = f"{gateway.metrics_url}/console"
        with chromium(Path(tmp) / "profile", WIDTH, 900) as browser:
            browser.get(f"{console}/login")
            browser.find_element(By.ID, "token").send_keys(token)
            browser.find_element(By.CSS_SELECTOR, "form.login button").click()
            WebDriverWait(browser, 30).until(lambda b: b.current_url == f"{console}/")
            _save(browser, out / "console-overview.png", 1000)
            search = browser.find_element(By.CSS_SELECTOR, "form.search input[name=entity]")
            search.send_keys(ORDER)
            search.submit()
            WebDriverWait(browser, 30).until(lambda b: "Trace of" in b.title)
            # One delivery opened, to show a body as the topic's policy masks it.
            browser.find_elements(By.CSS_SELECTOR, "article.delivery summary")[2].click()
            _save(browser, out / "console-trace.png", 2600)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
