"""Debian's Chromium, headless, driven through Debian's ChromeDriver with Selenium.

The browser and the driver come from the system (tools/ensure_chromium.py installs them
when missing); nothing downloads a browser of its own. This machine's network is closed,
so every background connection Chromium would make on its own is turned off, and each
browser gets a fresh profile directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service

from tools.ensure_chromium import ensure_chromium

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


@contextmanager
def chromium(profile: Path, width: int = 1280, height: int = 900) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with a fresh profile in `profile`, quit on exit."""
    browser_path, driver_path = ensure_chromium()
    profile.mkdir(parents=True, exist_ok=True)
    options = Options()
    options.binary_location = str(browser_path)
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    # Selenium Manager would look for drivers online; the paths are given, so it must not.
    os.environ["SE_OFFLINE"] = "true"
    service = Service(executable_path=str(driver_path), log_output=str(profile / "driver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        yield driver
    finally:
        driver.quit()
