"""The web page in a real browser: headless Chromium driven by Playwright."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from service.app import create_app
from service.settings import Settings
from tests.helpers import encode, tone

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="needs Debian's chromium (apt-get install chromium); .ci/run installs it",
)
BROWSER_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def server(tiny_model: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        create_app(Settings(model_path=tiny_model)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/readyz").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(server: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page()
        yield page
        browser.close()


def test_upload_shows_the_same_label_as_the_api(server: str, page, tmp_path: Path) -> None:
    clip = tmp_path / "clip.wav"
    clip.write_bytes(encode(tone(freq=260.0, seconds=1.5)))
    expected = httpx.post(
        f"{server}/predict", files={"file": ("clip.wav", clip.read_bytes())}
    ).json()
    page.goto(server + "/")
    page.set_input_files("#file", str(clip))
    page.click("#send")
    page.wait_for_selector("#result:not([hidden])", timeout=10_000)
    assert page.text_content("#label") == expected["label"]
    assert page.locator(".bar").count() == len(expected["probabilities"])


def test_bad_file_shows_the_error(server: str, page, tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 20)
    page.goto(server + "/")
    page.set_input_files("#file", str(junk))
    page.click("#send")
    page.wait_for_selector("#error:not([hidden])", timeout=10_000)
    assert "unsupported_format" in page.text_content("#error")


def test_model_page_shows_metrics(server: str, page) -> None:
    page.goto(server + "/")
    page.click("nav a[data-tab=model]")
    page.wait_for_selector("#model-metrics h3", timeout=10_000)
    assert "Unweighted accuracy" not in page.text_content("#model-name")
    assert page.locator("#model-metrics table").count() >= 1


def test_api_key_field_only_when_auth_is_on(server: str, page) -> None:
    page.goto(server + "/")
    page.wait_for_load_state("networkidle")
    assert not page.is_visible("#apikey")  # auth is off on this server
