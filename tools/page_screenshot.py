"""Drive the service's web page in headless Chromium: the helpers the browser tests use, and the
screenshot in the docs.

    python tools/page_screenshot.py --run demo/run --out docs/web-client.png

starts ``keyless serve RUN`` on a free loopback port, classifies the bundled 96 x 96 sample
photos in the page (fitted to the model's size and encrypted in the browser) and saves the page
as a PNG. Needs Debian's ``chromium`` and ``chromium-driver`` packages and selenium (the dev
extras); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx

BINARIES = ("chromium", "chromedriver")  # Debian's chromium and chromium-driver packages
FINISHED = '.card[data-status="done"], .card[data-status="error"]'


def missing() -> list[str]:
    """What a headless browser lacks on this machine: the binaries and selenium, by name."""
    absent = [name for name in BINARIES if shutil.which(name) is None]
    return absent + ([] if importlib.util.find_spec("selenium") else ["selenium"])


def headless_chromium(width: int = 1100, height: int = 900) -> Any:
    """A Selenium driver of the installed headless Chromium (no driver download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--window-size={width},{height}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(options, Service(shutil.which("chromedriver")))


def open_page(driver: Any, url: str, timeout: float = 30) -> str:
    """Load the page at ``url`` and wait until it has read the model; returns that line."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    model = driver.find_element(By.ID, "model")
    WebDriverWait(driver, timeout).until(lambda _: not model.text.startswith("Reading"))
    return model.text


def classify_in_page(
    driver: Any, paths: Sequence[Path | str], plain: bool = False, timeout: float = 60
) -> list[dict[str, str | None]]:
    """Choose ``paths`` in the open page (``plain``: with the switch on) and wait for each
    photo's card; returns per photo its name, status (done or error), label, what was sent
    (encrypted or plain) and its message."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    switch = driver.find_element(By.ID, "plain")
    if switch.is_selected() != plain:
        switch.click()
    before = len(driver.find_elements(By.CSS_SELECTOR, ".card"))
    wanted = before + len(paths)
    driver.find_element(By.ID, "files").send_keys("\n".join(str(Path(p).resolve()) for p in paths))
    WebDriverWait(driver, timeout).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, FINISHED)) == wanted
    )
    cards = driver.find_elements(By.CSS_SELECTOR, ".card")[before:]
    return [
        {
            "name": card.find_element(By.TAG_NAME, "h2").text,
            "status": card.get_attribute("data-status"),
            "label": card.get_attribute("data-label"),
            "sent": card.get_attribute("data-sent"),
            "message": "\n".join(m.text for m in card.find_elements(By.CLASS_NAME, "message")),
        }
        for card in cards
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served(run: Path, timeout: float = 120) -> Iterator[str]:
    """``keyless serve RUN`` on 127.0.0.1 and a free port until the block ends; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "keyless.cli", "serve", str(run), "--port", str(port),
               "--no-access-log"]  # fmt: skip
    process = subprocess.Popen(command)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(f"keyless serve exited with {process.returncode}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit(f"keyless serve not healthy after {timeout} s") from None
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="run folder to serve")
    parser.add_argument("--out", type=Path, default=Path("docs/web-client.png"))
    args = parser.parse_args()
    if missing():
        raise SystemExit(f"not installed: {', '.join(missing())}")
    samples = sorted(Path(str(files("keyless") / "samples")).glob("*.png"))
    driver = headless_chromium()
    try:
        with served(args.run) as url:
            open_page(driver, url)
            for card in classify_in_page(driver, samples):
                print(card["name"], card["status"], card["label"], card["message"])
            height = driver.execute_script("return document.documentElement.scrollHeight")
            metrics = {"width": 1100, "height": height, "deviceScaleFactor": 1, "mobile": False}
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)  # whole page
            driver.save_screenshot(str(args.out))
    finally:
        driver.quit()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
