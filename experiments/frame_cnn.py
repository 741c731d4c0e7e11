"""Probe: a frame-level 1-D CNN over log-mel frames, on the protocols that decide recipes.

    .venv/bin/python -m experiments.frame_cnn [--protocols ablation cross-corpus] [--epochs 40]

Does a frame-level model (log-mel sequences, a small 1-D CNN, attention pooling) beat
utterance statistics + MLP on voices it has never heard? This trains one on
the folds of ``experiments/ablation.py`` (RAVDESS actor-independent 8 classes, clean and with
white and babble noise at 10 dB in the test audio; TESS cross-speaker), with the bundled
recipe's augmentations, speaker-disjoint early stopping and class weights, seed 42. On the
same folds it trains the bundled (``default``) recipe too, and scores the two networks'
averaged probabilities (late fusion). ``--protocols cross-corpus`` does the same for training on TESS and testing on
RAVDESS and back (the shared seven labels), the closest proxy here for unseen corpora. Each
fold's scores go to ``docs/frame-cnn-folds.jsonl`` as soon as it finishes (a stopped run keeps
them); at the end, three rows of per-protocol means go to ``docs/ablation.jsonl``, beside the
recipes there.

The log-mel frames are the serving front end's (``service.features``, the 25 ms / 10 ms,
64-band front end of ``speech-stats-v2``); the network is a probe, not exported: it would be
served only if it won here.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from bench.accuracy_report import DOCS
from bench.scoring import Features, babble_talkers, pooled, ravdess_folds
from bench.scoring import score as accuracy_score
from bench.scoring import train_predict as stats_train_predict
from service.features import get_feature_set
from trainer.corpora import Clip, default_data_root, read_ravdess, read_tess
from trainer.evaluate import speaker_disjoint_validation
from trainer.extract import augmented_samples, default_cache_dir, init_worker
from trainer.recipes import DEFAULT

log = logging.getLogger("experiments.frame_cnn")
FRONT_END = "speech-stats-v2"
#: Frames more than this many dB below the loudest frame are trimmed from both ends.
TRIM_DB = 40.0
CROP_FRAMES = 250  # 2.5 s training crops; evaluation sees the whole trimmed clip
#: The noisy test sets of experiments/ablation.py.
NOISES = ("white@10", "babble@10")


def log_mel_frames(
    path: str, augmentation: str | None, babble: tuple[str, ...]
) -> np.ndarray | None:
    """Trimmed log-mel frames of shape ``(frames, n_mels)``, float16 (memory), or None."""
    fs = get_feature_set(FRONT_END)
    try:
        y = augmented_samples(
            Path(path),
            sample_rate=fs.sample_rate,
            augmentation=augmentation,
            babble_sources=babble,
        )
        frames = fs.frontend.log_mel(fs.frontend.power(y))
    except ValueError:  # AudioError and FeatureError both derive from it
        return None
    energy = frames.max(axis=1)
    keep = np.flatnonzero(energy > energy.max() - TRIM_DB)
    return frames[keep[0] : keep[-1] + 1].astype(np.float16)


def _job(args: tuple[str, str | None, tuple[str, ...]]) -> np.ndarray | None:
    return log_mel_frames(*args)


def extract(
    clips: list[Clip], augmentation: str | None, babble: tuple[str, ...], workers: int
) -> list[np.ndarray]:
    jobs = [(str(c.path), augmentation, babble if augmentation else ()) for c in clips]
    with ProcessPoolExecutor(max_workers=workers, initializer=init_worker) as pool:
        out = list(
            tqdm(
                pool.map(_job, jobs, chunksize=16),
                total=len(jobs),
                desc=f"log-mel {augmentation or 'clean'}",
                unit="clip",
            )
        )
    missing = [c.path for c, f in zip(clips, out, strict=True) if f is None]
    if missing:
        raise SystemExit(f"{len(missing)} clips did not decode, e.g. {missing[0]}")
    return out  # type: ignore[return-value]


def build_cnn(n_mels: int, n_labels: int, mean: np.ndarray, std: np.ndarray) -> Any:
    """Conv1D 64-128-128 with batch norm over time, attention pooling plus std pooling."""
    import keras

    from trainer.network import Standardise

    inputs = keras.Input(shape=(None, n_mels), name="log_mel")
    x = Standardise(mean, std, name="standardise")(inputs)
    for i, (units, width) in enumerate(((64, 5), (128, 5), (128, 3))):
        x = keras.layers.Conv1D(units, width, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i}")(x)
        x = keras.layers.Activation("relu")(x)
        if i < 2:
            x = keras.layers.MaxPooling1D(2, name=f"pool{i}")(x)
    scores = keras.layers.Dense(1, name="attention")(x)
    weights = keras.layers.Softmax(axis=1)(scores)
    attended = keras.ops.sum(weights * x, axis=1)
    # sqrt(var + eps): a channel that stays at zero would make std's gradient NaN.
    spread = keras.ops.sqrt(keras.ops.var(x, axis=1) + 1e-5)
    z = keras.layers.Concatenate()([attended, spread])
    z = keras.layers.Dropout(0.3)(z)
    outputs = keras.layers.Dense(n_labels, activation="softmax", name="probabilities")(z)
    model = keras.Model(inputs, outputs, name="frame-cnn")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    return model


def crop(frames: np.ndarray, rng: np.random.Generator, length: int) -> np.ndarray:
    """A random ``length``-frame window; shorter clips are tiled (no padding to learn)."""
    if frames.shape[0] < length:
        frames = np.resize(frames, (length, frames.shape[1]))
    start = int(rng.integers(0, frames.shape[0] - length + 1))
    return frames[start : start + length]


def spec_augment(batch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One band mask (up to 8 mels) and one time mask (up to 25 frames) per example, set
    to the example's mean so the masks carry no level of their own."""
    out = batch.copy()
    for example in out:
        fill = example.mean()
        f0, fw = int(rng.integers(0, example.shape[1])), int(rng.integers(0, 9))
        t0, tw = int(rng.integers(0, example.shape[0])), int(rng.integers(0, 26))
        example[:, f0 : f0 + fw] = fill
        example[t0 : t0 + tw] = fill
    return out


def predictor(model: Any) -> Any:
    """Probabilities per clip, each clip whole (the network pools over any length); traced
    once for every length."""
    import tensorflow as tf

    n_mels = model.inputs[0].shape[-1]

    @tf.function(input_signature=[tf.TensorSpec([1, None, n_mels], tf.float32)])
    def run(x: Any) -> Any:
        return model(x, training=False)

    def predict(clips: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([run(f[None].astype(np.float32)).numpy() for f in clips])

    return predict


def train_predict(
    copies: list[list[np.ndarray]],
    y: np.ndarray,
    clips: list[Clip],
    train_idx: np.ndarray,
    tests: dict[str, list[np.ndarray]],
    n_labels: int,
    *,
    epochs: int,
    seed: int,
) -> dict[str, np.ndarray]:
    """Fit on ``train_idx`` (one random augmented copy per clip per epoch), early-stopped on
    speaker-disjoint validation UA; probabilities for each test set."""
    import keras

    from trainer.network import seed_everything

    seed_everything(seed)
    rng = np.random.default_rng(seed)
    fit_idx, val_idx = speaker_disjoint_validation(clips, train_idx, fraction=0.15, seed=seed)
    stacked = np.concatenate([copies[0][i] for i in fit_idx]).astype(np.float32)
    model = build_cnn(
        stacked.shape[1], n_labels, stacked.mean(axis=0), np.maximum(stacked.std(axis=0), 1e-3)
    )
    counts = np.bincount(y[fit_idx], minlength=n_labels).astype(float)
    class_weight = counts.sum() / np.maximum(counts, 1) / n_labels
    val_clips = [copies[0][i] for i in val_idx]
    predict = predictor(model)
    best_ua, best_weights, patience = -1.0, model.get_weights(), 0
    for _ in range(epochs):
        order = rng.permutation(fit_idx)
        for start in range(0, len(order), 64):
            batch_idx = order[start : start + 64]
            which = rng.integers(0, len(copies), size=len(batch_idx))
            batch = np.stack(
                [
                    crop(copies[w][i], rng, CROP_FRAMES)
                    for w, i in zip(which, batch_idx, strict=True)
                ]
            ).astype(np.float32)
            targets = keras.utils.to_categorical(y[batch_idx], n_labels)
            model.train_on_batch(
                spec_augment(batch, rng), targets, sample_weight=class_weight[y[batch_idx]]
            )
        val_pred = predict(val_clips).argmax(1)
        recalls = [np.mean(val_pred[y[val_idx] == k] == k) for k in np.unique(y[val_idx])]
        ua = float(np.mean(recalls))
        if ua > best_ua:
            best_ua, best_weights, patience = ua, model.get_weights(), 0
        else:
            patience += 1
            if patience >= 10:
                break
    model.set_weights(best_weights)
    return {name: predict(frames) for name, frames in tests.items()}


def score(probs: np.ndarray, y_true: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """bench.accuracy's metrics; the probabilities are scored as returned (no temperature)."""
    return accuracy_score({"raw": probs, "calibrated": probs}, y_true, labels)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--protocols",
        nargs="+",
        choices=("ablation", "cross-corpus"),
        default=["ablation"],
        help="ablation: experiments/ablation.py's folds; cross-corpus: TESS -> RAVDESS and back",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    started = time.time()
    tess = read_tess(args.data_root / "tess")
    rav8 = read_ravdess(args.data_root / "ravdess", native_labels=True)
    # The babble talkers of bench.accuracy and experiments/ablation.py.
    babble_train, babble_test = babble_talkers(tess)
    recipe = replace(DEFAULT, name="speech-stats-v2-voices")  # the name its rows were logged as
    common = {
        "cache_dir": default_cache_dir(),
        "workers": args.workers,
        "babble_train": babble_train,
        "babble_test": babble_test,
    }
    systems = ("frame-cnn", recipe.name, "fused")
    runs: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)

    def evaluate(
        clips: list[Clip],
        folds: list[tuple[str, np.ndarray, np.ndarray]],
        noises: tuple[str, ...] = (),
    ) -> None:
        """Train and test every ``(task, train, test)`` fold; folds of one task pool."""
        labels = sorted({c.label for c in clips})
        y = np.array([labels.index(c.label) for c in clips])
        copies = [extract(clips, None, (), args.workers)] + [
            extract(clips, aug, babble_train, args.workers) for aug in recipe.config.augmentations
        ]
        noisy = {noise: extract(clips, noise, babble_test, args.workers) for noise in noises}
        stats = Features(clips, **common)
        for task, train, test in folds:
            cnn_tests = {task: [copies[0][i] for i in test]}
            mlp_tests = {task: stats.get(recipe.feature_set)[test]}
            for noise, frames in noisy.items():
                cnn_tests[f"{task}+{noise}"] = [frames[i] for i in test]
                mlp_tests[f"{task}+{noise}"] = stats.get(recipe.feature_set, noise, "test")[test]
            cnn = train_predict(
                copies, y, clips, train, cnn_tests, len(labels), epochs=args.epochs, seed=args.seed
            )
            mlp = stats_train_predict(recipe, stats, train, mlp_tests, labels, y, seed=args.seed)
            for key in cnn_tests:
                probs = {
                    "frame-cnn": cnn[key],
                    recipe.name: mlp[key]["raw"],
                    "fused": (cnn[key] + mlp[key]["raw"]) / 2,
                }
                for system, p in probs.items():
                    runs[(key, system)].append(score(p, y[test], labels))
            with (DOCS / "frame-cnn-folds.jsonl").open("a") as folds_file:
                for key in cnn_tests:
                    fold_ua = {
                        s: round(100 * runs[(key, s)][-1]["unweighted_accuracy"], 1)
                        for s in systems
                    }
                    log.info("%s fold: %s", key, fold_ua)
                    row = {"protocol": key, "seed": args.seed, "test_clips": len(test)}
                    folds_file.write(json.dumps(row | fold_ua) + "\n")

    if "cross-corpus" in args.protocols:
        # As bench.accuracy's protocol 4: the shared seven labels, RAVDESS "calm" left out.
        rav7 = read_ravdess(args.data_root / "ravdess")
        calm = {c.path for c in rav8 if c.label == "calm"}
        both = tess + [c for c in rav7 if c.path not in calm]
        is_tess = np.array([c.corpus == "tess" for c in both])
        evaluate(
            both,
            [
                ("tess->rav", np.flatnonzero(is_tess), np.flatnonzero(~is_tess)),
                ("rav->tess", np.flatnonzero(~is_tess), np.flatnonzero(is_tess)),
            ],
        )
    if "ablation" in args.protocols:
        evaluate(rav8, [("rav8", tr, te) for _, tr, te in ravdess_folds(rav8)], NOISES)
        speakers = np.array([c.speaker for c in tess])
        evaluate(
            tess,
            [
                ("tess-x", np.flatnonzero(speakers == a), np.flatnonzero(speakers == b))
                for a, b in (("tess:OAF", "tess:YAF"), ("tess:YAF", "tess:OAF"))
            ],
        )
    seconds = round(time.time() - started)
    names = {
        "frame-cnn": f"frame-cnn ({FRONT_END} log-mel frames, {recipe.name} augmentation)",
        recipe.name: f"{recipe.name} (same run)",
        "fused": f"frame-cnn + {recipe.name}, probabilities averaged",
    }
    with (DOCS / "ablation.jsonl").open("a") as out_file:
        for system in systems:
            row: dict[str, Any] = {"variant": names[system]}
            for (key, s), items in runs.items():
                if s == system:
                    row[key] = round(100 * pooled(items)["unweighted_accuracy"], 1)
            row["seed"] = args.seed
            row["seconds"] = seconds
            print(json.dumps(row), flush=True)
            out_file.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
