"""A pretrained voice encoder beside ``speech-stats-v2`` (bench only: the service never sees it).

Every network here so far learnt from the 26 voices of TESS and RAVDESS. Does a network that
has heard thousands of voices help on unseen ones? The one pretrained speech network that the
package registries reachable here carry with its weights is Resemblyzer's speaker encoder
(``resemblyzer==0.1.4`` on PyPI, Apache-2.0): GE2E, a 3-layer LSTM of 256 over 40 mel bands,
trained for speaker verification. Its utterance embedding (256), and the mean and standard
deviation over frames of its last layer (256 + 256), go beside the 118 statistics; training is
the bundled recipe's. Results and reading: docs/accuracy-notes.md, rows in docs/ablation.jsonl.

Export the encoder to ONNX once, with torch and resemblyzer in a venv of their own (they stay
out of the project's)::

    python3.11 -m venv /tmp/encoder-venv
    /tmp/encoder-venv/bin/pip install torch==2.13.0 onnx onnxruntime scipy librosa
    /tmp/encoder-venv/bin/pip install --no-deps resemblyzer==0.1.4
    /tmp/encoder-venv/bin/python bench/export_voice_encoder.py

then, in the project's venv::

    .venv/bin/python bench/voice_encoder.py ablate [VARIANT ...] [bench/ablation.py's options]
    .venv/bin/python bench/voice_encoder.py accuracy [bench/accuracy.py's options]
    .venv/bin/python bench/voice_encoder.py cost
    .venv/bin/python bench/voice_encoder.py fidelity [--every 20]

The encoder file is ``$SER_VOICE_ENCODER`` or ``~/.cache/ser/voice-encoder/resemblyzer-ge2e.onnx``;
its SHA-256 is part of the feature configuration, so the feature cache never mixes encoders.
The ``-int8`` variant runs onnxruntime's dynamic int8 quantisation of it, written beside it as
``*-int8.onnx`` on first use.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import ablation, accuracy  # noqa: E402
from bench.export_voice_encoder import encoder_path  # noqa: E402
from service.features import FEATURE_SETS, SpeechStats  # noqa: E402
from trainer.corpora import default_data_root, read_ravdess, read_tess  # noqa: E402
from trainer.recipes import RECIPES  # noqa: E402

#: Resemblyzer's own front end (``resemblyzer/hparams.py``, ``audio.py``): power mel of
#: 25 ms windows every 10 ms at 16 kHz, volume raised (never lowered) to -30 dBFS.
ENCODER_RATE = 16000
ENCODER_N_FFT = 400
ENCODER_HOP = 160
ENCODER_MELS = 40
ENCODER_TARGET_DBFS = -30.0
#: The LSTM needs a few frames to say anything; shorter clips are zero-padded to this.
ENCODER_MIN_FRAMES = 20
#: Output groups, in order: utterance embedding, frame mean, frame standard deviation.
PARTS = ("embedding", "mean", "std")
HIDDEN = 256


def int8_encoder_path() -> Path:
    """The encoder under onnxruntime's dynamic int8 quantisation, made from the float one on
    first use (about 3x faster on the LSTM)."""
    source = encoder_path()
    target = source.with_name(f"{source.stem}-int8.onnx")
    if source.exists() and not target.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
    return target


class StatsWithVoiceEncoder(SpeechStats):
    """``speech-stats-v2``'s statistics, then the chosen parts of the voice encoder's output."""

    def __init__(self, name: str, parts: tuple[str, ...], *, int8: bool = False) -> None:
        super().__init__(replace(ablation._V2_CONFIG, name=name))
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown encoder parts {sorted(unknown)}; known: {PARTS}")
        self.parts = parts
        self.int8 = int8
        self._session: Any = None

    def encoder_file(self) -> Path:
        return int8_encoder_path() if self.int8 else encoder_path()

    # The file's hash tells the float and int8 encoders apart in the feature configuration.
    @cached_property
    def encoder_sha256(self) -> str:
        path = self.encoder_file()
        if not path.exists():
            sys.exit(f"no voice encoder at {path}: run bench/export_voice_encoder.py first")
        return hashlib.sha256(path.read_bytes()).hexdigest()

    def names(self) -> list[str]:
        encoded = [f"encoder_{part}{i}" for part in self.parts for i in range(HIDDEN)]
        return super().names() + encoded

    def encoder_features(self, samples: np.ndarray) -> np.ndarray:
        """Encoder output of shape ``(256 * len(parts),)`` for 16 kHz mono ``samples``."""
        import librosa

        if self._session is None:
            # Created on first use in each extraction worker, one thread each: the workers
            # are the parallelism.
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = options.inter_op_num_threads = 1
            self._session = ort.InferenceSession(
                str(self.encoder_file()), options, providers=["CPUExecutionProvider"]
            )
        y = samples.astype(np.float32)
        dbfs = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) + 1e-12)
        if dbfs < ENCODER_TARGET_DBFS:
            y = y * np.float32(10 ** ((ENCODER_TARGET_DBFS - dbfs) / 20))
        mels = librosa.feature.melspectrogram(
            y=y, sr=ENCODER_RATE, n_fft=ENCODER_N_FFT, hop_length=ENCODER_HOP, n_mels=ENCODER_MELS
        ).T
        if len(mels) < ENCODER_MIN_FRAMES:
            mels = np.pad(mels, ((0, ENCODER_MIN_FRAMES - len(mels)), (0, 0)))
        frames, embedding = self._session.run(None, {"mels": mels[None].astype(np.float32)})
        outputs = {"embedding": embedding[0], "mean": frames[0].mean(0), "std": frames[0].std(0)}
        return np.concatenate([outputs[part] for part in self.parts]).astype(np.float32)

    def extract(self, samples: np.ndarray) -> np.ndarray:
        return np.concatenate([super().extract(samples), self.encoder_features(samples)])

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "voice_encoder": {"source": "resemblyzer==0.1.4", "sha256": self.encoder_sha256},
            "encoder_parts": list(self.parts),
        }


def register() -> None:
    """Add the encoder variants to bench/ablation.py's and to the recipes bench/accuracy.py can
    run. Called by main() before any extraction worker is forked, so the workers know them
    too; not at import, so that importing this module (the tests do) changes no registry."""
    for name, parts, int8 in (
        ("v2-voices+encoder", PARTS, False),
        # Without the d-vector, which is trained to be the speaker's identity.
        ("v2-voices+encoder-mean-std", ("mean", "std"), False),
        # The frame spread alone: the least of the speaker's identity, if any part avoids it.
        ("v2-voices+encoder-std", ("std",), False),
        # What serving it at a third of the cost would give.
        ("v2-voices+encoder-int8", PARTS, True),
    ):
        feature_set = f"v2+encoder-{'-'.join(parts)}{'-int8' if int8 else ''}"
        FEATURE_SETS[feature_set] = StatsWithVoiceEncoder(feature_set, parts, int8=int8)
        description = (
            f"speech-stats-v2 plus Resemblyzer's pretrained speaker encoder"
            f"{' (int8)' if int8 else ''} ({', '.join(parts)} "
            f"of its last layer; bench/voice_encoder.py), with the bundled recipe's training"
        )
        recipe = ablation._bundled_training(name, feature_set, description)
        ablation.VARIANTS[name] = RECIPES[name] = recipe


def cost(seconds: float, repeats: int) -> None:
    """Median time of the encoder's features for one clip, one thread."""
    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal(int(seconds * ENCODER_RATE))).astype(np.float32)
    float32, int8 = (
        FEATURE_SETS[f"v2+encoder-embedding-mean-std{suffix}"] for suffix in ("", "-int8")
    )
    assert isinstance(float32, StatsWithVoiceEncoder) and isinstance(int8, StatsWithVoiceEncoder)
    for name, run in {
        "speech-stats-v2": lambda: SpeechStats.extract(float32, clip),
        "voice encoder (mel + LSTM)": lambda: float32.encoder_features(clip),
        "voice encoder, int8 (mel + LSTM)": lambda: int8.encoder_features(clip),
    }.items():
        run()
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        print(f"{name}: {1000 * statistics.median(times):.2f} ms median, {seconds:g} s clip")


def fidelity(data_root: Path, every: int) -> None:
    """How closely the int8 encoder's outputs follow the float one's on corpus clips: the
    correlation over each part's 256 values, per clip."""
    import soundfile as sf

    float32, int8 = (StatsWithVoiceEncoder(f"fidelity{i}", PARTS, int8=i == 1) for i in (0, 1))
    clips = read_tess(data_root / "tess")[::every] + read_ravdess(data_root / "ravdess")[::every]
    correlations: dict[str, list[float]] = {part: [] for part in PARTS}
    for clip in clips:
        samples, _ = sf.read(clip.path, dtype="float32")
        exact, quantised = float32.encoder_features(samples), int8.encoder_features(samples)
        for i, part in enumerate(PARTS):
            span = slice(i * HIDDEN, (i + 1) * HIDDEN)
            correlations[part].append(float(np.corrcoef(exact[span], quantised[span])[0, 1]))
    for part, values in correlations.items():
        low, median, high = np.percentile(values, [0, 50, 100])
        print(
            f"{part}: correlation int8 vs float over {len(values)} clips: "
            f"min {low:.2f}, median {median:.2f}, max {high:.2f}"
        )


def main() -> None:
    register()
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command in ("ablate", "accuracy"):
        # The reports quote sys.argv as their command: keep the subcommand in it.
        sys.argv = [f"{sys.argv[0]} {command}", *sys.argv[2:]]
        (ablation if command == "ablate" else accuracy).main()
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("ablate", help="bench/ablation.py with the encoder variants")
    sub.add_parser("accuracy", help="bench/accuracy.py with the encoder variants")
    cost_parser = sub.add_parser("cost", help="time the encoder's features on one thread")
    cost_parser.add_argument("--seconds", type=float, default=3.0)
    cost_parser.add_argument("--repeats", type=int, default=50)
    fidelity_parser = sub.add_parser("fidelity", help="int8 encoder against the float one")
    fidelity_parser.add_argument("--data-root", type=Path, default=default_data_root())
    fidelity_parser.add_argument("--every", type=int, default=20, help="every Nth clip")
    args = parser.parse_args()
    if args.command == "fidelity":
        fidelity(args.data_root, args.every)
    else:
        cost(args.seconds, args.repeats)


if __name__ == "__main__":
    main()
