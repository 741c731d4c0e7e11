"""The field's standard reference: openSMILE's eGeMAPS v02 functionals with a linear SVM.

A reference row in the accuracy benchmark only, never served: openSMILE's licence allows
research use, not products. Needs the ``opensmile`` wheel (it bundles its native library) and
scikit-learn, both in the ``bench`` extra (``pip install -e '.[bench]'``; ``make bench-accuracy``
installs it). The accuracy
benchmark runs it beside the recipes when both import (``--reference egemaps``).

    .venv/bin/python -m bench.egemaps [--data-root ../shared/data] [--seeds 42 43]

Prints leave-one-corpus-out UA per held-out corpus (scored over that corpus's own labels).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from trainer.corpora import CORPORA, Clip, default_data_root, load_corpora
from trainer.evaluate import classification_metrics, corpus_folds
from trainer.extract import augmented_samples, default_cache_dir

log = logging.getLogger("bench.egemaps")

#: The rate the corpora are stored at: noisy copies are mixed at it, as the clean file is read.
SAMPLE_RATE = 16_000

_smile: Any = None


def _smile_extractor() -> Any:
    global _smile
    if _smile is None:
        import opensmile  # noqa: PLC0415 - bench-only dependency

        _smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02,
            feature_level=opensmile.FeatureLevel.Functionals,
        )
    return _smile


def available() -> str | None:
    """Why the reference cannot run here (``None``: it can): openSMILE and scikit-learn."""
    for module, package in (("opensmile", "opensmile"), ("sklearn", "scikit-learn")):
        if importlib.util.find_spec(module) is None:
            return f"{package} is not installed (pip install {package})"
    return None


def _egemaps_of(job: tuple[str, str | None, tuple[str, ...]]) -> np.ndarray:
    path, augmentation, babble = job
    if augmentation is None:
        frame = _smile_extractor().process_file(path)
    else:
        # The audio the networks' noisy test sets are made of: the same decode, the same
        # seeded mix (decoded files give the same functionals as process_file).
        samples = augmented_samples(
            Path(path), sample_rate=SAMPLE_RATE, augmentation=augmentation, babble_sources=babble
        )
        frame = _smile_extractor().process_signal(samples, SAMPLE_RATE)
    return frame.to_numpy(dtype=np.float32).ravel()


def egemaps_matrix(
    clips: Sequence[Clip],
    *,
    cache_dir: Path | None = None,
    workers: int = 2,
    augmentation: str | None = None,
    babble_sources: tuple[str, ...] = (),
) -> np.ndarray:
    """eGeMAPS v02 functionals, shape ``(len(clips), 88)``, float32, cached per file (and per
    augmentation, as ``trainer.extract`` caches the networks' features)."""
    folder = "egemaps-v02"
    if augmentation:
        extra = f"{augmentation}:{','.join(sorted(Path(p).name for p in babble_sources))}"
        folder += "-" + hashlib.sha256(extra.encode()).hexdigest()[:8]
    root = (cache_dir or default_cache_dir()) / folder
    root.mkdir(parents=True, exist_ok=True)

    def cache_file(clip: Clip) -> Path:
        return root / f"{hashlib.sha256(clip.path.read_bytes()).hexdigest()[:24]}.npy"

    files = [cache_file(clip) for clip in clips]
    todo = [i for i, f in enumerate(files) if not f.exists()]
    if todo:
        jobs = [(str(clips[i].path), augmentation, babble_sources) for i in todo]
        desc = f"eGeMAPS {augmentation or ''}".strip()
        # Spawned: openSMILE's native library in a child forked from a process with other
        # threads running (TensorFlow's, in the accuracy benchmark) can corrupt the heap.
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=spawn) as pool:
            results = pool.map(_egemaps_of, jobs, chunksize=16)
            for i, vector in tqdm(zip(todo, results, strict=True), total=len(todo), desc=desc):
                np.save(files[i], vector)
    return np.stack([np.load(f) for f in files])


def svm_scores(
    features: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    tests: dict[str, np.ndarray],
    n_labels: int,
    *,
    seed: int,
    c: float = 0.1,
) -> dict[str, np.ndarray]:
    """Fit a standardised linear SVM (balanced class weights) on ``features[train]``; its
    decision values for each test matrix, shape ``(clips, n_labels)``.

    ``y`` holds label indices; a label without training clips gets ``-inf`` (never chosen).
    """
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415
    from sklearn.svm import LinearSVC  # noqa: PLC0415

    scaler = StandardScaler().fit(features[train])
    svm = LinearSVC(C=c, class_weight="balanced", random_state=seed, max_iter=20_000)
    svm.fit(scaler.transform(features[train]), y[train])
    out = {}
    for name, x in tests.items():
        decision = svm.decision_function(scaler.transform(x))
        if decision.ndim == 1:  # two classes: one signed margin
            decision = np.stack([-decision, decision], axis=1)
        scores = np.full((len(x), n_labels), -np.inf)
        scores[:, svm.classes_] = decision
        out[name] = scores
    return out


def leave_one_corpus_out_svm(
    clips: Sequence[Clip], features: np.ndarray, *, seed: int, c: float = 0.1
) -> dict[str, dict[str, Any]]:
    """Train a standardised linear SVM (balanced class weights) on four corpora, score the
    fifth over its own labels (argmax of the decision values restricted to them)."""
    labels = sorted({clip.label for clip in clips})
    y = np.array([labels.index(clip.label) for clip in clips])
    out = {}
    for fold in corpus_folds(clips):
        scores = svm_scores(
            features, y, fold.train, {"test": features[fold.test]}, len(labels), seed=seed, c=c
        )
        own = sorted({labels[k] for k in y[fold.test]})
        columns = [labels.index(label) for label in own]
        predicted = [own[i] for i in np.argmax(scores["test"][:, columns], axis=1)]
        out[fold.name] = classification_metrics([labels[k] for k in y[fold.test]], predicted, own)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-root", type=Path, default=default_data_root())
    parser.add_argument("--seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    clips = load_corpora(CORPORA, data_root=args.data_root)
    features = egemaps_matrix(clips)
    results = {seed: leave_one_corpus_out_svm(clips, features, seed=seed) for seed in args.seeds}
    for seed, per_corpus in results.items():
        uas = {corpus: 100 * m["unweighted_accuracy"] for corpus, m in per_corpus.items()}
        row = " ".join(f"{k} {v:.1f}" for k, v in uas.items())
        print(f"seed {seed}: {row}; mean {np.mean(list(uas.values())):.1f}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main()
