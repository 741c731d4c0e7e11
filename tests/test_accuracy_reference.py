"""The eGeMAPS + linear SVM reference beside the systems in a benchmark run: synthetic audio in
the five corpora's released layouts, real openSMILE and SVM; the networks are faked (their
training is tested elsewhere). Skipped where opensmile or scikit-learn is not installed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.helpers import tone

pytest.importorskip("opensmile")
pytest.importorskip("sklearn")

FREQS = {  # one pitch per emotion, so the SVM has something to find
    "angry": 300.0,
    "disgust": 140.0,
    "fear": 260.0,
    "happy": 240.0,
    "neutral": 120.0,
    "sad": 100.0,
    "surprise": 330.0,
    "calm": 110.0,
}


def _write(path: Path, label: str, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    freq = FREQS[label] * (1 + 0.03 * (seed % 5))
    sf.write(path, tone(freq=freq, seconds=0.4, seed=seed), 16_000)


def five_corpora(root: Path) -> None:
    """A few clips per corpus, named and laid out as each corpus's release is."""
    n = 0
    tess = {"angry": "angry", "disgust": "disgust", "fear": "fear", "happy": "happy"}
    tess |= {"neutral": "neutral", "sad": "sad", "ps": "surprise"}
    for speaker in ("OAF", "YAF"):
        for emotion, label in tess.items():
            for word in ("bite", "cab"):
                n += 1
                name = f"{speaker}_{word}_{emotion}.wav"
                _write(root / "tess" / f"{speaker}_{emotion}" / name, label, n)
    ravdess = ["neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"]
    for number in (1, 5, 9, 13, 17, 21):  # one actor in each of the six folds
        for code, label in enumerate(ravdess, start=1):
            n += 1
            name = f"03-01-{code:02d}-01-01-01-{number:02d}.wav"
            _write(root / "ravdess" / f"Actor_{number:02d}" / name, label, n)
    emodb = {"W": "angry", "E": "disgust", "A": "fear", "F": "happy", "N": "neutral", "T": "sad"}
    for speaker in ("03", "08", "09"):
        for letter, label in emodb.items():
            n += 1
            _write(root / "emodb" / f"{speaker}a01{letter}a.wav", label, n)
    emovo = {"rab": "angry", "dis": "disgust", "pau": "fear", "gio": "happy"}
    emovo |= {"neu": "neutral", "tri": "sad", "sor": "surprise"}
    for actor in ("f1", "m1"):
        for short, label in emovo.items():
            n += 1
            _write(root / "emovo" / actor / f"{short}-{actor}-b1.wav", label, n)
    for speaker in ("1234", "1358"):
        for folder in ("Angry", "Calm", "Happy", "Sad"):
            for word in ("acik", "kapi"):
                n += 1
                label = "neutral" if folder == "Calm" else folder.lower()
                _write(root / "turevdb" / folder / f"{speaker}_sk_{word}.wav", label, n)


def test_the_reference_row_runs_beside_the_systems(monkeypatch, tmp_path) -> None:
    import bench.accuracy as accuracy
    import bench.protocols as protocols
    from bench.accuracy_report import LOCO_MEAN, RAV8, REFERENCE, loco_key, noise_key

    five_corpora(tmp_path / "data")

    class ZeroFeatures:
        def __init__(self, clips, **_: object) -> None:
            self.clips = clips

        def get(self, *_: object, **__: object) -> np.ndarray:
            return np.zeros((len(self.clips), 2), dtype=np.float32)

    def uniform(system, feats, train_idx, test_sets, labels, y, *, seed, clips):
        p = {k: np.full((len(v), len(labels)), 1 / len(labels)) for k, v in test_sets.items()}
        return {k: {"raw": v, "calibrated": v} for k, v in p.items()}

    monkeypatch.setattr(accuracy, "Features", ZeroFeatures)
    monkeypatch.setattr(protocols, "train_predict", uniform)
    # White noise only: babble needs more TESS clips than this tiny corpus has.
    monkeypatch.setattr(accuracy, "NOISES", ("white@10",))
    accuracy.main(
        [
            "--data-root",
            str(tmp_path / "data"),
            "--systems",
            "paper",
            "--seeds",
            "1",
            "--protocols",
            "loco",
            "ravdess",
            "noise",
            "--reference",
            "egemaps",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--workers",
            "1",
            "--out-dir",
            str(tmp_path / "report"),
        ]
    )
    saved = json.loads((tmp_path / "report" / "accuracy.json").read_text())
    results = saved["results"]
    assert REFERENCE in saved["systems"]
    for key in (loco_key("turevdb"), LOCO_MEAN, RAV8, noise_key("white@10")):
        row = results[key][REFERENCE]
        assert 0.0 <= row["unweighted_accuracy"] <= 1.0
    turevdb = results[loco_key("turevdb")][REFERENCE]
    assert turevdb["labels"] == ["angry", "happy", "neutral", "sad"]  # its own labels only
    assert turevdb["ece"] is None  # decision values, not probabilities
    # Cached per file, the clean and the noisy features apart.
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert cached[0] == "egemaps-v02" and len(cached) == 2
    text = (tmp_path / "report" / "accuracy.md").read_text()
    loco = text.split("## Leave one corpus out")[1].split("## ")[0]
    assert "| held-out corpus (its labels) | paper | eGeMAPS + SVM |" in loco
    mean = next(line for line in loco.splitlines() if line.startswith("| **mean**"))
    assert "n/a" not in mean
    assert "research use only" in text
