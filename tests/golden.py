"""Golden values of the bundled models: feature vectors and probabilities of synthetic clips.

``python -m tests.golden`` records them into ``tests/data/golden.json``; record only when a
model or a feature set changes on purpose, and say why in the commit. ``test_golden.py`` checks
the current code against the file, so moving or optimising feature code cannot change what a
bundled model answers without a failing test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from service.settings import BUNDLED_MODEL

GOLDEN = Path(__file__).parent / "data" / "golden.json"
MODELS = ("ser-default.onnx", "ser-fast.onnx", "ser-accurate.onnx")
RATE = 16_000


def golden_clips() -> dict[str, np.ndarray]:
    """Three deterministic speech-like clips at 16 kHz, float32 of shape ``(n,)``."""
    rng = np.random.default_rng(20261207)
    t2 = np.arange(2 * RATE) / RATE
    # A voiced vowel: harmonics of a 180 Hz pitch with vibrato, syllable-rate envelope.
    f0 = 180.0 + 15.0 * np.sin(2 * np.pi * 5.0 * t2)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    vowel = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.6 + 0.4 * np.sin(np.pi * 4 * t2))
    vowel = 0.2 * vowel + 0.005 * rng.standard_normal(t2.shape)
    # A rising, louder call with silence around it (pauses, a pitch glide, noise bursts).
    t3 = np.arange(3 * RATE) / RATE
    glide = 2 * np.pi * np.cumsum(220.0 + 120.0 * t3) / RATE
    call = sum(np.sin(k * glide) / k**1.5 for k in range(1, 10))
    gate = ((t3 > 0.5) & (t3 < 1.4)) | ((t3 > 1.7) & (t3 < 2.6))
    call = 0.5 * call * gate + 0.002 * rng.standard_normal(t3.shape)
    call[int(1.5 * RATE) : int(1.6 * RATE)] += 0.3 * rng.standard_normal(int(0.1 * RATE))
    # A low, quiet murmur: 110 Hz harmonics under pink-ish noise.
    t15 = np.arange(int(1.5 * RATE)) / RATE
    low = sum(np.sin(2 * np.pi * 110.0 * k * t15) / k**2 for k in range(1, 6))
    noise = np.cumsum(rng.standard_normal(t15.shape))
    noise = (noise - noise.mean()) / (np.abs(noise).max() + 1e-9)
    murmur = 0.05 * low + 0.01 * noise
    return {
        name: clip.astype(np.float32)
        for name, clip in (("vowel", vowel), ("call", call), ("murmur", murmur))
    }


def record() -> dict[str, object]:
    from service.model import load_model  # noqa: PLC0415 - the recorder only

    out: dict[str, object] = {}
    clips = golden_clips()
    for file in MODELS:
        model = load_model(BUNDLED_MODEL.parent / file)
        entry: dict[str, object] = {"version": model.version, "feature_set": model.feature_set.name}
        for name, samples in clips.items():
            features = model.feature_set.extract(samples)
            probs = model.predict_proba(features)[0]
            entry[name] = {"features": features.tolist(), "probabilities": probs.tolist()}
        out[file] = entry
    return out


if __name__ == "__main__":
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(record(), indent=1) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN}")
