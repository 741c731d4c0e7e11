"""The timeline picture's pieces: one colour table for the web page and the plot, the gaps."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from service import contract
from service.model import load_model
from service.timeline import timeline
from service.timeline_plot import (
    EMOTION_COLOURS,
    OTHER_COLOUR,
    SILENCE_COLOUR,
    SILENCE_EDGE,
    plot_timeline,
    silences,
)

STATIC = Path(__file__).resolve().parent.parent / "service" / "static"


def test_web_page_and_plot_colour_emotions_alike() -> None:
    script = (STATIC / "app.js").read_text()
    table = re.search(r"const EMOTION_COLOURS = \{(.*?)\};", script, re.S)
    assert table is not None, "app.js has no EMOTION_COLOURS table"
    in_js = dict(re.findall(r'(\w+): "(#[0-9A-Fa-f]{6})"', table.group(1)))
    assert in_js == EMOTION_COLOURS
    assert f'const OTHER_COLOUR = "{OTHER_COLOUR}";' in script
    assert set(EMOTION_COLOURS) == set(contract.EMOTIONS)
    assert len(set(EMOTION_COLOURS.values())) == len(EMOTION_COLOURS)
    # Silence is hatched in the same two greys on both.
    rules = re.findall(r"([^{}]*)\{([^}]*)\}", (STATIC / "app.css").read_text())
    hatch = [
        body for selector, body in rules if ".strip .silence" in selector and "gradient" in body
    ]
    assert len(hatch) == 1 and SILENCE_COLOUR in hatch[0] and SILENCE_EDGE in hatch[0]


def test_silences_are_the_gaps_around_the_segments() -> None:
    segments = [{"start": 0.0, "end": 1.0}, {"start": 2.5, "end": 4.0}]
    assert silences(segments, 5.0) == [(1.0, 2.5), (4.0, 5.0)]
    assert silences(segments, 4.0) == [(1.0, 2.5)]
    assert silences([], 3.0) == [(0.0, 3.0)]


def test_a_recording_without_speech_is_drawn_as_silence(tiny_model, tmp_path) -> None:
    import matplotlib.image

    quiet = (0.001 * np.random.default_rng(0).standard_normal(4 * 16_000)).astype(np.float32)
    body = timeline(load_model(tiny_model), quiet)
    assert body["segments"] == [] and body["summary"]["dominant"] is None
    png = plot_timeline(body, tmp_path / "quiet.png", title="quiet.wav")
    rgb = (matplotlib.image.imread(str(png))[..., :3] * 255).round().astype(int)
    rgb = rgb[:, : int(0.85 * rgb.shape[1])]  # the axes; the legend on the right has them all
    for colour in EMOTION_COLOURS.values():  # no strip segment, no probability bar
        want = [int(colour[i : i + 2], 16) for i in (1, 3, 5)]
        assert not np.all(rgb == want, axis=-1).any(), colour
    grey = [int(SILENCE_COLOUR[i : i + 2], 16) for i in (1, 3, 5)]
    assert np.all(rgb == grey, axis=-1).sum() > 20_000


@pytest.mark.parametrize("suffix", [".svg", ".pdf"])
def test_other_formats_follow_the_suffix(tmp_path, suffix) -> None:
    body = {
        "segments": [
            {
                "start": 0.5,
                "end": 1.5,
                "label": "sad",
                "confidence": 0.9,
                "probabilities": {"sad": 0.9, "happy": 0.1},
            }
        ],
        "summary": {
            "duration_s": 2.0,
            "speech_s": 1.0,
            "segments": 1,
            "dominant": "sad",
            "distribution": {"sad": 0.9, "happy": 0.1},
        },
    }
    out = plot_timeline(body, tmp_path / f"one{suffix}")
    head = out.read_bytes()[:5]
    assert head == (b"%PDF-" if suffix == ".pdf" else b"<?xml")
