"""Task 2 (front end): the numpy log-mel against the references that can be had without torch.

1. The filter bank against ``librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, htk=False,
   norm='slaney')`` and, given openai-whisper's source distribution, against the
   ``whisper/assets/mel_filters.npz`` it ships (``mel_80``).
2. The whole log-mel against ``transformers.WhisperFeatureExtractor`` (its numpy path), at
   30 s and at the clip's own length, on the TESS clips of ``provenance.py``.
3. Frame counts: n_samples // 160 (30 s -> 3000, what CTranslate2's ``generate`` requires;
   ``encode`` takes any even count up to 3000 and returns half as many frames).

Run::

    /tmp/wvenv/bin/pip download --no-deps --no-binary :all: openai-whisper==20250625 \
        -d /tmp/whisper/wheels
    OMP_NUM_THREADS=1 taskset -c 1 /tmp/wvenv/bin/python -m experiments.whisper.check_frontend \
        --whisper-sdist /tmp/whisper/wheels/openai_whisper-20250625.tar.gz
"""

from __future__ import annotations

import argparse
import io
import tarfile
from pathlib import Path

import numpy as np

from experiments.whisper.common import DATA, load_audio, say
from experiments.whisper.frontend import WINDOW_SAMPLES, log_mel, mel_filters
from experiments.whisper.provenance import TESS_CLIPS


def whisper_filters(sdist: Path) -> np.ndarray:
    """``mel_80`` from the ``mel_filters.npz`` inside an openai-whisper sdist, shape (80, 201)."""
    with tarfile.open(sdist) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("assets/mel_filters.npz"))
        blob = tar.extractfile(member)
        assert blob is not None
        with np.load(io.BytesIO(blob.read())) as npz:
            return np.asarray(npz["mel_80"])


def main() -> None:
    import librosa

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--whisper-sdist", type=Path)
    args = parser.parse_args()

    ours = mel_filters()
    ref = librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, htk=False, norm="slaney")
    say(
        f"filters vs librosa slaney: max|diff| {np.abs(ours - ref).max():.2e} (max {ref.max():.4f})"
    )
    if args.whisper_sdist:
        shipped = whisper_filters(args.whisper_sdist)
        say(
            f"filters vs openai-whisper's mel_filters.npz {shipped.shape}: max|diff| "
            f"{np.abs(ours - shipped).max():.2e}"
        )
        say(
            "  (librosa htk=True instead would differ by "
            f"{np.abs(librosa.filters.mel(sr=16000, n_fft=400, n_mels=80, htk=True) - shipped).max():.2e})"
        )
    try:
        from transformers import WhisperFeatureExtractor
    except ImportError:
        say("transformers not installed: skipping the feature-extractor comparison")
        return
    extractor = WhisperFeatureExtractor(feature_size=80, sampling_rate=16000, hop_length=160)
    for rel in TESS_CLIPS:
        audio = load_audio(args.data / "tess" / rel)
        mine_30 = log_mel(audio, pad_to=WINDOW_SAMPLES)
        hf_30 = extractor(audio, sampling_rate=16000, return_tensors="np").input_features[0]
        mine = log_mel(audio)
        hf = extractor(
            audio, sampling_rate=16000, return_tensors="np", padding="longest"
        ).input_features[0]
        say(
            f"  {rel:38s} {len(audio)} samples -> {mine.shape[1]} frames (30 s: "
            f"{mine_30.shape[1]}); max|diff| vs transformers: 30 s {np.abs(mine_30 - hf_30).max():.1e}"
            f", own length {np.abs(mine - hf).max():.1e}"
        )


if __name__ == "__main__":
    main()
