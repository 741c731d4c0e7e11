"""The web page in a real browser: headless Chromium driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from service.api import create_app
from service.settings import Settings
from service.timeline_plot import EMOTION_COLOURS
from tests.helpers import encode, serve_in_thread, speech_like
from tests.test_predict_cli import speech_with_pauses

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
    with serve_in_thread(create_app(Settings(model_path=tiny_model))) as url:
        yield url


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
    clip.write_bytes(encode(speech_like(freq=260.0, seconds=1.5)))
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


def _css_rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({r}, {g}, {b})"


def test_timeline_strip_colours_segments_and_shows_probabilities(
    server: str, page, tmp_path: Path
) -> None:
    y, spans = speech_with_pauses()
    clip = tmp_path / "call.wav"
    clip.write_bytes(encode(y))
    expected = httpx.post(
        f"{server}/predict?timeline=true", files={"file": ("call.wav", clip.read_bytes())}
    ).json()["timeline"]
    segments, duration = expected["segments"], expected["summary"]["duration_s"]
    assert len(segments) == len(spans)
    page.goto(server + "/")
    page.check("#timeline")
    page.set_input_files("#file", str(clip))
    page.click("#send")
    page.wait_for_selector("#timeline-view:not([hidden])", timeout=10_000)

    strip = page.locator("#strip")
    segs, gaps = strip.locator(".seg"), strip.locator(".silence")
    assert segs.count() == len(segments)
    assert gaps.count() == len(segments) + 1  # before, between and after the bursts
    colours = segs.evaluate_all("els => els.map((e) => getComputedStyle(e).backgroundColor)")
    assert colours == [_css_rgb(EMOTION_COLOURS[s["label"]]) for s in segments]
    # Placed along the time axis: each element starts where its segment does.
    box = strip.bounding_box()
    for i, s in enumerate(segments):
        left = segs.nth(i).bounding_box()["x"] - box["x"]
        assert left / box["width"] == pytest.approx(s["start"] / duration, abs=0.01)
    assert page.locator("#axis .tick").count() >= 3
    legend = page.text_content("#legend")
    assert all(label in legend for label in EMOTION_COLOURS) and "silence" in legend

    tip = page.locator("#strip-tip")
    assert tip.is_hidden()
    segs.nth(1).hover()
    tip.wait_for(state="visible")
    text = tip.text_content()
    assert segments[1]["label"] in text and f"{segments[1]['start']:.2f} s" in text
    rows = tip.locator("tr").evaluate_all(
        "rows => rows.map((r) => [...r.cells].map((c) => c.textContent))"
    )
    shown = {label: float(p.rstrip("%")) for label, p in rows}
    assert list(shown.values()) == sorted(shown.values(), reverse=True)  # likeliest first
    assert shown == pytest.approx(
        {label: 100 * p for label, p in segments[1]["probabilities"].items()}, abs=0.051
    )
    page.mouse.move(0, 0)
    tip.wait_for(state="hidden")
    # From the keyboard: a segment takes focus and shows the same tooltip.
    segs.nth(0).focus()
    tip.wait_for(state="visible")
    assert f"{segments[0]['start']:.2f} s" in tip.text_content()
    page.keyboard.press("Escape")
    tip.wait_for(state="hidden")

    rows = page.locator("#segments .segment")
    assert rows.count() == len(segments)
    assert rows.nth(0).bounding_box()["y"] > box["y"] + box["height"]  # the list is below
    assert [rows.nth(i).locator("b").text_content() for i in range(len(segments))] == [
        s["label"] for s in segments
    ]
