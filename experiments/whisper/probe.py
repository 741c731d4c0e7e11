"""Task 5: how much emotion a linear probe finds in each layer of Whisper tiny.en's encoder.

RAVDESS speech (1440 clips, 24 actors, 8 classes), actor-independent: 6 folds of 4 actors
(1-4, 5-8, ...; two men and two women each). Features per clip: mean and standard deviation
over time of an encoder stage's frames (each clip encoded at its own length, no 30 s
padding). Classifier: standardise, then scikit-learn's LogisticRegression (lbfgs, C=1).
Score: UA (mean per-class recall) of the pooled out-of-fold predictions (every actor has the
same clips per class, so it equals the mean of the folds' UA), its spread over folds, and
for a few stages the fold-by-fold gain over the final output. MFCC-40 mean+std with the same classifier is the yardstick.

Encoder outputs are pooled once and cached in ``/tmp/whisper/ravdess_pooled_<kind>.npz``;
reruns only fit probes. Run::

    OMP_NUM_THREADS=1 taskset -c 1 /tmp/wvenv/bin/python -m experiments.whisper.probe
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from experiments.whisper.common import DATA, OUT, load_audio, say
from experiments.whisper.export_onnx import FLOAT_NAME, INT8_NAME
from experiments.whisper.frontend import WINDOW_SAMPLES, even_frames, log_mel
from experiments.whisper.parity import session

# hidden[0] is the convolutions + positions (layer 0's input), hidden[i] layer i's output
# (before the final norm); "final" is layer 4 after the final layer norm (ctranslate2's output).
STAGES = ("conv+pos", "layer 1", "layer 2", "layer 3", "layer 4", "final")


def ravdess(data: Path) -> tuple[list[Path], np.ndarray, np.ndarray]:
    """Clips, emotion codes 1-8 and actor numbers, from ``MM-VC-EE-II-SS-RR-AA`` names."""
    paths = sorted((data / "ravdess").glob("Actor_*/*.*"))
    paths = [p for p in paths if p.suffix in (".flac", ".wav")]
    parts = [p.stem.split("-") for p in paths]
    return paths, np.array([int(x[2]) for x in parts]), np.array([int(x[6]) for x in parts])


def pooled_features(
    paths: list[Path], model: Path, cache: Path, pad_30s: bool = False
) -> dict[str, np.ndarray]:
    """Mean and std over time of every stage, plus MFCC-40 mean and std, cached.

    With ``pad_30s`` each clip is encoded in Whisper's 30 s window (as Whisper was trained)
    and only the clip's own frames (the first F/2 outputs) are pooled.

    Returns
    -------
    dict of str to ndarray
        ``mean`` and ``std`` of shape (clips, 6, 384) in ``STAGES`` order, ``mfcc`` (clips, 80).
    """
    if cache.exists():
        with np.load(cache) as stored:
            return dict(stored)
    import librosa

    sess = session(model)
    means, stds, mfccs = [], [], []
    for i, path in enumerate(paths):
        audio = load_audio(path)
        mel = even_frames(log_mel(audio))[None]
        own = mel.shape[2] // 2
        if pad_30s:
            mel = log_mel(audio, pad_to=WINDOW_SAMPLES)[None]
        encoded, hidden = sess.run(["encoded", "hidden"], {"mel": mel})
        stages = np.concatenate([hidden[:, 0], encoded], axis=0)[:, :own]  # (6, T, 384)
        means.append(stages.mean(axis=1))
        stds.append(stages.std(axis=1))
        mfcc = librosa.feature.mfcc(y=audio, sr=16000, n_mfcc=40)
        mfccs.append(np.concatenate([mfcc.mean(axis=1), mfcc.std(axis=1)]))
        if (i + 1) % 200 == 0:
            say(f"  encoded {i + 1}/{len(paths)}")
    result = {
        "mean": np.stack(means).astype(np.float32),
        "std": np.stack(stds).astype(np.float32),
        "mfcc": np.stack(mfccs).astype(np.float32),
        "paths": np.array([str(p) for p in paths]),
    }
    np.savez(
        cache, mean=result["mean"], std=result["std"], mfcc=result["mfcc"], paths=result["paths"]
    )
    return result


def fold_uas(x: np.ndarray, y: np.ndarray, actors: np.ndarray, folds: int, c: float) -> np.ndarray:
    """Actor-independent UA of a standardised logistic regression, per fold.

    Parameters
    ----------
    x : ndarray, shape (clips, dims)
    y : ndarray, shape (clips,)
    actors : ndarray, shape (clips,)
        Actor numbers 1-24; fold ``k`` holds out actors ``4k+1 .. 4k+4`` (for 6 folds).

    Returns
    -------
    ndarray, shape (folds,)
        Every actor has the same number of clips per class, so the mean of these equals the
        UA of the pooled out-of-fold predictions.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    per_fold = 24 // folds
    scores = []
    for k in range(folds):
        test = (actors - 1) // per_fold == k
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
        clf.fit(x[~test], y[~test])
        scores.append(balanced_accuracy_score(y[test], clf.predict(x[test])))
    return np.array(scores)


def probe(x: np.ndarray, y: np.ndarray, actors: np.ndarray, folds: int, c: float) -> str:
    """``fold_uas`` as a result line: UA, spread over folds, dimensions."""
    ua = fold_uas(x, y, actors, folds, c)
    return f"UA {100 * ua.mean():5.1f}%  (fold sd {100 * ua.std():4.1f}), {x.shape[1]} dims"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--kind", choices=("float32", "int8"), default="float32")
    parser.add_argument(
        "--window", choices=("own", "30s"), default="own", help="encode at own length or in 30 s"
    )
    parser.add_argument("--folds", type=int, default=6)
    parser.add_argument("--c", type=float, default=1.0, help="inverse L2 strength")
    args = parser.parse_args()
    paths, y, actors = ravdess(args.data)
    say(f"RAVDESS: {len(paths)} clips, {len(set(actors))} actors, classes {np.bincount(y)[1:]}")
    model = args.out / (FLOAT_NAME if args.kind == "float32" else INT8_NAME)
    suffix = "" if args.window == "own" else "_30s"
    cache = args.out / f"ravdess_pooled_{args.kind}{suffix}.npz"
    feats = pooled_features(paths, model, cache, pad_30s=args.window == "30s")
    mean, std = feats["mean"], feats["std"]
    say(
        f"encoder {args.kind} ({args.window} window), {args.folds} actor folds, LogisticRegression C={args.c}"
    )
    rows = {"MFCC-40 mean+std": feats["mfcc"]}
    for i, stage in enumerate(STAGES):
        rows[f"{stage} mean+std"] = np.concatenate([mean[:, i], std[:, i]], axis=1)
    for i, stage in enumerate(STAGES):
        rows[f"{stage} mean"] = mean[:, i]
    rows["layers 1-4 means (concat)"] = mean[:, 1:5].reshape(len(y), -1)
    rows["conv+pos..final means (concat)"] = mean.reshape(len(y), -1)
    rows["layers 1-4 mean+std (concat)"] = np.concatenate(
        [mean[:, 1:5].reshape(len(y), -1), std[:, 1:5].reshape(len(y), -1)], axis=1
    )
    rows["layers 2-3 mean+std (concat)"] = np.concatenate(
        [mean[:, 2:4].reshape(len(y), -1), std[:, 2:4].reshape(len(y), -1)], axis=1
    )
    scores = {name: fold_uas(x, y, actors, args.folds, args.c) for name, x in rows.items()}
    for name, ua in scores.items():
        say(
            f"  {name:34s} UA {100 * ua.mean():5.1f}%  (fold sd {100 * ua.std():4.1f}), "
            f"{rows[name].shape[1]} dims"
        )
    # Folds differ far more than stages do (the fold sd is 4-8 points), so compare stages
    # fold by fold against the encoder's own output.
    base = scores["final mean+std"]
    say("paired against final mean+std (same folds): mean gain, folds won")
    for name in (
        "layer 2 mean+std",
        "layer 3 mean+std",
        "layers 2-3 mean+std (concat)",
        "layers 1-4 mean+std (concat)",
    ):
        gain = scores[name] - base
        say(f"  {name:34s} {100 * gain.mean():+5.1f} points, {int((gain > 0).sum())}/{len(gain)}")


if __name__ == "__main__":
    main()
