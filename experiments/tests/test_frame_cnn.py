"""experiments/frame_cnn.py, the frame-level probe: its frames, crops and network, synthetic audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from experiments import frame_cnn
from service.features import get_feature_set
from tests.helpers import tone


def test_log_mel_frames_are_the_serving_front_end_trimmed_of_silence(tmp_path: Path) -> None:
    rate = 16_000
    speech = tone(seconds=1.0, rate=rate)
    silence = np.zeros(rate // 2, dtype=np.float32)
    path = tmp_path / "clip.wav"
    sf.write(path, np.concatenate([silence, speech, silence]), rate)

    frames = frame_cnn.log_mel_frames(str(path), None, ())

    assert frames is not None and frames.dtype == np.float16
    front_end = get_feature_set(frame_cnn.FRONT_END).frontend
    untrimmed = front_end.log_mel(front_end.power(sf.read(path, dtype="float32")[0]))
    assert frames.shape[1] == untrimmed.shape[1] == 64
    # 1 s of tone at a 10 ms hop, give or take the frames that straddle its edges.
    assert 98 <= frames.shape[0] <= 106 < untrimmed.shape[0]
    # The kept frames are the untrimmed ones, not recomputed differently.
    offset = int(np.argmin(np.abs(untrimmed[:, 10] - frames[0, 10].astype(np.float32))))
    assert np.allclose(untrimmed[offset : offset + len(frames)], frames, atol=0.05)


def test_log_mel_frames_of_a_file_that_is_not_audio_is_none(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("not audio")
    assert frame_cnn.log_mel_frames(str(path), None, ()) is None


def test_crop_tiles_short_clips_and_windows_long_ones() -> None:
    rng = np.random.default_rng(0)
    short = np.arange(10 * 3, dtype=np.float32).reshape(10, 3)
    tiled = frame_cnn.crop(short, rng, 25)
    assert tiled.shape == (25, 3)
    assert np.array_equal(tiled[:10], short) and np.array_equal(tiled[10:20], short)

    long = np.arange(400 * 2, dtype=np.float32).reshape(400, 2)
    window = frame_cnn.crop(long, rng, 250)
    start = int(window[0, 0]) // 2
    assert window.shape == (250, 2)
    assert np.array_equal(window, long[start : start + 250])


def test_spec_augment_masks_bands_and_frames_with_the_example_mean() -> None:
    rng = np.random.default_rng(1)
    batch = np.random.default_rng(2).standard_normal((16, 50, 64)).astype(np.float32)
    masked = frame_cnn.spec_augment(batch, rng)
    assert masked.shape == batch.shape
    assert not np.shares_memory(masked, batch)
    changed = masked != batch
    assert changed.any()
    for example, original, where in zip(masked, batch, changed, strict=True):
        if where.any():
            assert np.allclose(example[where], original.mean())


@pytest.mark.slow
def test_cnn_pools_any_length_into_probabilities() -> None:
    model = frame_cnn.build_cnn(64, 7, np.zeros(64), np.ones(64))
    predict = frame_cnn.predictor(model)
    rng = np.random.default_rng(0)
    clips = [rng.standard_normal((n, 64)).astype(np.float16) for n in (37, 120, 301)]
    probs = predict(clips)
    assert probs.shape == (3, 7)
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
