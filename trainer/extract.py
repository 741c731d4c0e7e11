"""Feature extraction over a corpus: parallel, with a progress bar, cached on disk.

The cache key is the file's content hash and the feature configuration, so renaming or
moving a corpus keeps the cache, and changing the features never reuses stale values.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from service.allocator import tune_allocator
from service.audio import AudioError, decode_audio
from service.features import FeatureSet, config_fingerprint
from trainer.corpora import Clip

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("SER_CACHE_DIR", Path.home() / ".cache" / "ser" / "features"))


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def features_for_file(
    path: Path,
    feature_set: FeatureSet,
    *,
    augmentation: str | None = None,
    babble_sources: tuple[str, ...] = (),
) -> np.ndarray:
    """The features the service would compute for this file (same decode, same features),
    optionally after an augmentation (see :mod:`trainer.augment`); shape ``(dim,)``."""
    samples = augmented_samples(
        path,
        sample_rate=feature_set.sample_rate,
        augmentation=augmentation,
        babble_sources=babble_sources,
    )
    return feature_set.extract(samples)


def augmented_samples(
    path: Path,
    *,
    sample_rate: int,
    augmentation: str | None = None,
    babble_sources: tuple[str, ...] = (),
) -> np.ndarray:
    """The file decoded as the service decodes it, then augmented; shape ``(n,)``.

    The augmentation's seed derives from the file name and the spec, so every run (and every
    feature set) sees the same augmented audio.
    """
    samples = decode_audio(path, target_rate=sample_rate).samples
    if augmentation:
        from trainer.augment import apply

        seed = int(hashlib.sha256(f"{path.name}:{augmentation}".encode()).hexdigest()[:8], 16)
        samples = apply(
            samples,
            augmentation,
            sample_rate=sample_rate,
            seed=seed,
            babble_sources=[Path(p) for p in babble_sources],
        )
    return samples


#: One clip's work: path, cache file (or None), augmentation (or None), babble talkers.
_Job = tuple[str, str | None, str | None, tuple[str, ...]]

#: The feature set an extraction worker computes, set once per process by its initializer.
_worker_feature_set: FeatureSet | None = None


def init_worker() -> None:
    """Per-process settings of the serving workers (see ``service.allocator``): one BLAS
    thread each, since the parallelism is the pool's, and heap-kept frame buffers."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    tune_allocator()


def _init_extraction_worker(feature_set: FeatureSet) -> None:
    global _worker_feature_set
    init_worker()
    _worker_feature_set = feature_set


def _work(
    job: _Job, feature_set: FeatureSet | None = None
) -> tuple[str, np.ndarray | None, str | None]:
    """Features of one clip, cached; the feature set is the worker's unless given."""
    path, cache_file, augmentation, babble = job
    feature_set = feature_set if feature_set is not None else _worker_feature_set
    if feature_set is None:
        raise RuntimeError("extraction workers start with _init_extraction_worker")
    try:
        vector = features_for_file(
            Path(path), feature_set, augmentation=augmentation, babble_sources=babble
        )
    except AudioError as exc:
        return path, None, str(exc)
    if cache_file is not None:
        tmp = f"{cache_file}.{os.getpid()}.tmp.npy"
        np.save(tmp, vector)
        os.replace(tmp, cache_file)
    return path, vector, None


def extract_corpus(
    clips: Sequence[Clip],
    *,
    feature_set: FeatureSet,
    cache_dir: Path | None = None,
    workers: int | None = None,
    progress: bool = True,
    augmentation: str | None = None,
    babble_sources: tuple[str, ...] = (),
) -> tuple[np.ndarray, list[Clip]]:
    """Features of shape ``(n, dim)`` for the clips that decode, and those clips.

    ``feature_set`` may be any feature set object, registered or not (an experiment's
    variant): the cache is keyed by its configuration, and worker processes inherit it.
    Clips that fail to decode are logged and skipped, never silently mislabelled.
    """
    cache_root = None
    if cache_dir is not None:
        key = hashlib.sha256(config_fingerprint(feature_set.to_dict()).encode()).hexdigest()[:16]
        if augmentation:
            extra = f"{augmentation}:{','.join(sorted(Path(p).name for p in babble_sources))}"
            key += "-" + hashlib.sha256(extra.encode()).hexdigest()[:8]
        cache_root = Path(cache_dir) / f"{feature_set.name}-{key}"
        cache_root.mkdir(parents=True, exist_ok=True)
    results: dict[str, np.ndarray] = {}
    todo: list[_Job] = []
    for clip in clips:
        cache_file = None
        if cache_root is not None:
            cache_file = str(cache_root / f"{_file_digest(clip.path)}.npy")
            if os.path.exists(cache_file):
                results[str(clip.path)] = np.load(cache_file)
                continue
        todo.append((str(clip.path), cache_file, augmentation, babble_sources))
    workers = workers or min(len(todo), os.cpu_count() or 1) or 1
    failed = 0
    if todo:
        bar = tqdm(
            total=len(todo),
            desc=f"features {feature_set.name} {augmentation or ''}",
            unit="clip",
            disable=not progress,
        )
        if workers > 1 and len(todo) > 32:
            # Forked, not spawned: the workers inherit the feature set object instead of
            # receiving it pickled (an encoder's onnxruntime session and lock do not pickle,
            # and an unregistered variant could not be looked up by name).
            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_init_extraction_worker,
                initargs=(feature_set,),
            ) as pool:
                for path, vector, error in pool.map(_work, todo, chunksize=16):
                    failed += _collect(results, path, vector, error)
                    bar.update()
        else:
            for item in todo:
                failed += _collect(results, *_work(item, feature_set))
                bar.update()
        bar.close()
    if failed:
        log.warning("%d of %d clips could not be decoded and were skipped", failed, len(clips))
    kept = [clip for clip in clips if str(clip.path) in results]
    matrix = np.stack([results[str(clip.path)] for clip in kept]).astype(np.float32)
    return matrix, kept


def _collect(
    results: dict[str, np.ndarray], path: str, vector: np.ndarray | None, error: str | None
) -> int:
    if vector is None:
        log.warning("skipping %s: %s", path, error)
        return 1
    results[path] = vector
    return 0
