"""The field's standard reference: openSMILE's eGeMAPS v02 functionals with a linear SVM.

A reference row in the accuracy benchmark only, never served: openSMILE's licence allows
research use, not products. Needs the ``opensmile`` wheel (it bundles its native library) and
scikit-learn (the ``bench`` extra).

    .venv/bin/python -m bench.egemaps [--data-root ../shared/data] [--seeds 42 43]

Prints leave-one-corpus-out UA per held-out corpus (scored over that corpus's own labels).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from trainer.corpora import CORPORA, Clip, default_data_root, load_corpora
from trainer.evaluate import classification_metrics
from trainer.extract import default_cache_dir

log = logging.getLogger("bench.egemaps")

_smile: Any = None


def _egemaps_of(path: str) -> np.ndarray:
    global _smile
    if _smile is None:
        import opensmile  # noqa: PLC0415 - bench-only dependency

        _smile = opensmile.Smile(
            feature_set=opensmile.FeatureSet.eGeMAPSv02,
            feature_level=opensmile.FeatureLevel.Functionals,
        )
    return _smile.process_file(path).to_numpy(dtype=np.float32).ravel()


def egemaps_matrix(
    clips: Sequence[Clip], *, cache_dir: Path | None = None, workers: int = 2
) -> np.ndarray:
    """eGeMAPS v02 functionals, shape ``(len(clips), 88)``, float32, cached per file."""
    root = (cache_dir or default_cache_dir()) / "egemaps-v02"
    root.mkdir(parents=True, exist_ok=True)

    def cache_file(clip: Clip) -> Path:
        return root / f"{hashlib.sha256(clip.path.read_bytes()).hexdigest()[:24]}.npy"

    files = [cache_file(clip) for clip in clips]
    todo = [i for i, f in enumerate(files) if not f.exists()]
    if todo:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            paths = [str(clips[i].path) for i in todo]
            results = pool.map(_egemaps_of, paths, chunksize=16)
            for i, vector in tqdm(zip(todo, results, strict=True), total=len(todo), desc="eGeMAPS"):
                np.save(files[i], vector)
    return np.stack([np.load(f) for f in files])


def corpus_folds(clips: Sequence[Clip]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Leave one corpus out: ``(held-out corpus, train indices, test indices)`` per corpus."""
    corpora = np.array([c.corpus for c in clips])
    return [
        (name, np.flatnonzero(corpora != name), np.flatnonzero(corpora == name))
        for name in sorted(set(corpora))
    ]


def leave_one_corpus_out_svm(
    clips: Sequence[Clip], features: np.ndarray, *, seed: int, c: float = 0.1
) -> dict[str, dict[str, Any]]:
    """Train a standardised linear SVM (balanced class weights) on four corpora, score the
    fifth over its own labels (argmax of the decision values restricted to them)."""
    from sklearn.preprocessing import StandardScaler  # noqa: PLC0415
    from sklearn.svm import LinearSVC  # noqa: PLC0415

    labels = np.array([clip.label for clip in clips])
    out = {}
    for corpus, train, test in corpus_folds(clips):
        scaler = StandardScaler().fit(features[train])
        svm = LinearSVC(C=c, class_weight="balanced", random_state=seed, max_iter=20_000)
        svm.fit(scaler.transform(features[train]), labels[train])
        own = sorted(set(labels[test]))
        columns = [list(svm.classes_).index(label) for label in own]
        scores = svm.decision_function(scaler.transform(features[test]))[:, columns]
        predicted = [own[i] for i in np.argmax(scores, axis=1)]
        out[corpus] = classification_metrics(list(labels[test]), predicted, own)
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
