"""Screenshot of the web page after an upload, for the docs: docs/img/web.png.

.venv/bin/python -m bench.screenshot_web [AUDIO_FILE]
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from service.api import create_app
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def main() -> None:
    clip = Path(
        sys.argv[1]
        if len(sys.argv) > 1
        else ROOT.parent / "shared/data/tess/YAF_happy/YAF_ring_happy.flac"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(Settings()), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    out = ROOT / "docs" / "img" / "web.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        page = browser.new_page(viewport={"width": 900, "height": 640})
        page.goto(f"http://127.0.0.1:{port}/")
        page.set_input_files("#file", str(clip))
        page.click("#send")
        page.wait_for_selector("#result:not([hidden])")
        page.screenshot(path=str(out), full_page=True)
        browser.close()
    server.should_exit = True
    print(out)


if __name__ == "__main__":
    main()
