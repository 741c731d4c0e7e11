"""Task 6: Google's speech_embedding as shipped in the ``openwakeword`` 0.4.0 wheel.

The wheel holds two ONNX models used here, read straight from the wheel (no install):
``melspectrogram.onnx`` (int16-scaled 16 kHz audio -> (frames, 32) mel, ~97 frames per
second; openwakeword applies ``x / 10 + 2`` to match Google's TF front end) and
``embedding_model.onnx`` (windows of 76 mel frames, 0.775 s, -> 96 values; openwakeword steps
the window by 8 frames, one embedding per 80 ms). This script prints the licence statements
and checksums, the cost on a 3 s clip (one core, next to librosa's MFCC-40 in the same run)
and the RAVDESS probe of ``probe.py`` on the embeddings' mean and std over time.

Run::

    /tmp/wvenv/bin/pip download --no-deps openwakeword==0.4.0 -d /tmp/whisper/wheels
    OMP_NUM_THREADS=1 taskset -c 1 /tmp/wvenv/bin/python -m experiments.whisper.speech_embedding \
        --wheel /tmp/whisper/wheels/openwakeword-0.4.0-py3-none-any.whl
"""

from __future__ import annotations

import argparse
import hashlib
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from experiments.whisper.common import DATA, OUT, load_audio, say
from experiments.whisper.probe import probe, ravdess
from experiments.whisper.speed import CLIP, interleaved_medians

MODELS = "openwakeword/resources/models/"
WINDOW, STEP = 76, 8  # mel frames per embedding window and between windows (openwakeword's)


class SpeechEmbedding:
    """openwakeword's two-stage front end, one intra-op thread each."""

    def __init__(self, wheel: Path) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        with zipfile.ZipFile(wheel) as zf:
            self.blobs = {
                name: zf.read(MODELS + name)
                for name in ("melspectrogram.onnx", "embedding_model.onnx")
            }
        self.mel_session = ort.InferenceSession(self.blobs["melspectrogram.onnx"], opts)
        self.embed_session = ort.InferenceSession(self.blobs["embedding_model.onnx"], opts)

    def mel(self, audio: np.ndarray) -> np.ndarray:
        """Mel frames as openwakeword computes them.

        Parameters
        ----------
        audio : ndarray, shape (n_samples,)
            16 kHz float audio in [-1, 1].

        Returns
        -------
        ndarray, shape (frames, 32)
        """
        pcm = np.round(np.clip(audio, -1, 1) * 32767).astype(np.float32)[None]
        return np.squeeze(self.mel_session.run(None, {"input": pcm})[0]) / 10 + 2

    def embed(self, audio: np.ndarray) -> np.ndarray:
        """One 96-value embedding per 80 ms step of 0.775 s windows.

        Returns
        -------
        ndarray, shape (windows, 96)
            Clips shorter than one window are padded with silence to one window.
        """
        mel = self.mel(audio)
        if mel.shape[0] < WINDOW:
            return self.embed(np.pad(audio, (0, 16000)))
        starts = range(0, mel.shape[0] - WINDOW + 1, STEP)
        batch = np.stack([mel[s : s + WINDOW] for s in starts])[..., None].astype(np.float32)
        return self.embed_session.run(None, {"input_1": batch})[0].reshape(len(batch), -1)


def licence(wheel: Path) -> None:
    say(f"sha256 {hashlib.sha256(wheel.read_bytes()).hexdigest()}  {wheel.name}")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        for name in (MODELS + "melspectrogram.onnx", MODELS + "embedding_model.onnx"):
            say(f"sha256 {hashlib.sha256(zf.read(name)).hexdigest()}  {name}")
        lic = next(n for n in names if n.endswith(".dist-info/LICENSE"))
        say(f"{lic}: {zf.read(lic).decode().strip().splitlines()[0].strip()}")
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        for line in meta.splitlines():
            if re.search(r"licen[cs]e|tfhub|non-?commercial", line, re.I):
                say("   ", line.strip()[:400])


def cost(model: SpeechEmbedding, data: Path, repeats: int) -> None:
    import librosa

    audio = load_audio(data / CLIP)
    audio = np.pad(audio[:48000], (0, max(0, 48000 - len(audio))))
    cases: dict[str, Callable[[], object]] = {
        "librosa mfcc n_mfcc=40": lambda: librosa.feature.mfcc(y=audio, sr=16000, n_mfcc=40),
        "speech_embedding mel": lambda: model.mel(audio),
        "speech_embedding mel + embeddings": lambda: model.embed(audio),
    }
    results, cpu = interleaved_medians(cases, dict.fromkeys(cases, repeats))
    windows = model.embed(audio).shape[0]
    say(f"3 s clip, medians of {repeats} ({windows} embedding windows):")
    ref, ref_cpu = results["librosa mfcc n_mfcc=40"], cpu["librosa mfcc n_mfcc=40"]
    for name, ms in results.items():
        say(
            f"  {name:36s} wall {ms:7.2f} ms {ms / ref:5.2f} x MFCC, "
            f"cpu {cpu[name]:7.2f} ms {cpu[name] / ref_cpu:5.2f} x MFCC"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    licence(args.wheel)
    model = SpeechEmbedding(args.wheel)
    cost(model, args.data, args.repeats)
    paths, y, actors = ravdess(args.data)
    cache = args.out / "ravdess_pooled_speech_embedding.npz"
    if cache.exists():
        with np.load(cache) as stored:
            pooled = stored["pooled"]
    else:
        rows = []
        for path in paths:
            emb = model.embed(load_audio(path))
            rows.append(np.concatenate([emb.mean(axis=0), emb.std(axis=0)]))
        pooled = np.stack(rows).astype(np.float32)
        np.savez(cache, pooled=pooled)
    say("RAVDESS, 6 actor folds, standardised LogisticRegression C=1:")
    say(f"  speech_embedding mean+std   {probe(pooled, y, actors, 6, 1.0)}")
    say(f"  speech_embedding mean       {probe(pooled[:, :96], y, actors, 6, 1.0)}")


if __name__ == "__main__":
    main()
