"""Per-frame tracks of the speech statistics and the reductions that pool them.

Tracks: spectral shape (centroid, bandwidth, flatness), frame energy, roll-off, zero-crossing
rate and regression deltas, one value per STFT frame. Pooling: mean and spread, percentiles,
slope. Each is a pure numpy function written for speed at the sizes of one clip (a few hundred
frames), where numpy's per-call overhead, not arithmetic, dominates; each is checked against
its plain numpy or librosa definition in ``tests/test_features.py``.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from service.features.frontend import DB_PER_NEPER, zero_padded

#: Added to denominators and logarithms' arguments so silent frames give finite tracks.
_EPS = 1e-10


def spectral_shape(
    power: np.ndarray, total: np.ndarray, mel_power: np.ndarray, freqs_khz: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spectral centroid and bandwidth (kHz) and flatness of each frame.

    Parameters
    ----------
    power : numpy.ndarray
        Power spectra, shape ``(frames, bins)``.
    total : numpy.ndarray
        Each frame's total power, shape ``(frames,)`` (the last column of
        :func:`cumulative_block_power`).
    mel_power : numpy.ndarray
        The same frames' mel power, shape ``(frames, n_mels)``.
    freqs_khz : numpy.ndarray
        The bins' frequencies in kHz, shape ``(bins,)``.

    Returns
    -------
    centroid, bandwidth, flatness : numpy.ndarray
        Shape ``(frames,)`` each. Centroid and bandwidth (the spread around it) weight the
        bins by power; flatness is the geometric over the arithmetic mean of the mel bands.
    """
    total = total + _EPS
    centroid = power @ freqs_khz / total
    bandwidth = np.sqrt(np.maximum(power @ freqs_khz**2 / total - centroid**2, 0.0))
    # Row means as products with a vector of 1 / columns (numpy's mean costs ~3x more).
    by_column = np.full(mel_power.shape[1], 1.0 / mel_power.shape[1], dtype=np.float32)
    flatness = np.exp(np.log(mel_power + _EPS) @ by_column) / (mel_power @ by_column + _EPS)
    return centroid, bandwidth, flatness


def energy_db(total: np.ndarray, *, amin: float) -> np.ndarray:
    """Frame energy in dB, ``10 * log10(max(total, amin))`` for total powers ``(frames,)``."""
    return DB_PER_NEPER * np.log(np.maximum(total, amin))


def zero_crossing_rate(
    y: np.ndarray, *, frame_length: int, hop_length: int, n_frames: int
) -> np.ndarray:
    """Sign changes per sample pair in centred frames, shape ``(n_frames,)``.

    Counts changes in blocks of ``gcd(frame_length, hop_length)`` samples, so every frame is a
    difference of two running block counts: the same integers as a frames-by-window matrix,
    linear in the signal length, and without a per-sample running sum (numpy's cumsum is
    scalar code: ~30 us of a 3 s clip).
    """
    padded = zero_padded(y, frame_length // 2)
    negative = np.signbit(padded)
    block = math.gcd(frame_length, hop_length)
    n_blocks = padded.shape[0] // block + 1
    # changes[i]: sign change between samples i and i + 1; zeros past the end.
    changes = np.zeros(n_blocks * block, dtype=np.uint8)
    np.not_equal(negative[1:], negative[:-1], out=changes[: padded.shape[0] - 1].view(np.bool_))
    # Block sums as a float32 product with ones: exact for these small integers, and ~3x
    # faster than numpy's integer row sums.
    block_counts = changes.reshape(n_blocks, block).astype(np.float32) @ np.ones(block, np.float32)
    before_block = np.zeros(n_blocks + 1, dtype=np.float64)
    np.cumsum(block_counts, out=before_block[1:])
    starts = np.arange(n_frames) * hop_length
    starts = starts[starts + frame_length <= padded.shape[0]]
    # A frame of L samples has L - 1 pairs: its L block-aligned changes minus the last one.
    ends = starts + frame_length
    counts = before_block[ends // block] - before_block[starts // block] - changes[ends - 1]
    rate = counts / (frame_length - 1)
    if rate.shape[0] < n_frames:  # frames past the padded end (never with centred framing)
        rate = np.concatenate([rate, np.zeros(n_frames - rate.shape[0])])
    return rate


def delta(frames: np.ndarray, *, width: int) -> np.ndarray:
    """Regression deltas over time (librosa.feature.delta's formula) for ``(frames, dims)``.

    ``sum_k k * (x[t + k] - x[t - k]) / (2 * sum_k k**2)`` with edge padding; the output has
    the input's shape, float32.
    """
    half = width // 2
    if half < 1:
        return np.zeros(frames.shape, dtype=np.float32)
    # Edge padding by hand: np.pad's argument handling (~15 us) outweighs the arithmetic here.
    padded = np.concatenate(
        [np.repeat(frames[:1], half, axis=0), frames, np.repeat(frames[-1:], half, axis=0)]
    )
    n = frames.shape[0]
    # Starting from the k = 1 term (not from zeros) gives the same float32 sums in fewer calls.
    out = (padded[half + 1 : half + 1 + n] - padded[half - 1 : half - 1 + n]).astype(np.float32)
    for k in range(2, half + 1):
        out += k * (padded[half + k : half + k + n] - padded[half - k : half - k + n])
    return out / float(2 * sum(k * k for k in range(1, half + 1)))


#: Bins per block in :func:`rolloff_bins`.
_ROLLOFF_BLOCK = 16


@functools.lru_cache(maxsize=8)
def _rolloff_tables(n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Matrices for :func:`rolloff_bins`: block-cumulative sums, in-block cumulative sums."""
    n_blocks = -(-n_bins // _ROLLOFF_BLOCK)
    block_of = np.arange(n_bins) // _ROLLOFF_BLOCK
    up_to_block = (block_of[:, None] <= np.arange(n_blocks)[None, :]).astype(np.float32)
    within = np.triu(np.ones((_ROLLOFF_BLOCK, _ROLLOFF_BLOCK), dtype=np.float32))
    return up_to_block, within


def cumulative_block_power(power: np.ndarray) -> np.ndarray:
    """Cumulative power up to the end of each 16-bin block, ``(frames, blocks)`` for ``power``
    of shape ``(frames, bins)``; the last column is each frame's total power."""
    return power @ _rolloff_tables(power.shape[1])[0]


def rolloff_bins(
    power: np.ndarray, *, fraction: float, block_sums: np.ndarray | None = None
) -> np.ndarray:
    """First bin where the cumulative power reaches ``fraction`` of the frame's total.

    ``argmax(cumsum(power, axis=1) >= fraction * total, axis=1)`` for ``power`` of shape
    ``(frames, bins)``, output ``(frames,)`` ints, without the row-by-row cumulative sum
    (numpy's cumsum took 0.25 ms of a 3 s clip's 1.9 ms here): two small matrix products
    find the 16-bin block where the sum crosses, then the bin inside it. Sums differ from a
    running sum by float32 round-off only, so the bin can move only where the running sum
    lies within round-off of the threshold. ``block_sums`` (:func:`cumulative_block_power` of
    ``power``) may be passed when the caller already has it.
    """
    frames, n_bins = power.shape
    within = _rolloff_tables(n_bins)[1]
    sums = cumulative_block_power(power) if block_sums is None else block_sums
    threshold = fraction * sums[:, -1:]
    block = np.argmax(sums >= threshold, axis=1)
    rows = np.arange(frames)
    before = np.where(block > 0, sums[rows, block - 1], 0.0)
    bins = np.minimum(block[:, None] * _ROLLOFF_BLOCK + np.arange(_ROLLOFF_BLOCK), n_bins - 1)
    running = before[:, None] + power.ravel()[(rows * n_bins)[:, None] + bins] @ within
    reached = running >= threshold
    # Round-off can leave the block's last running sum a hair under the threshold.
    inside = np.where(reached.any(axis=1), np.argmax(reached, axis=1), _ROLLOFF_BLOCK - 1)
    return np.asarray(np.minimum(block * _ROLLOFF_BLOCK + inside, n_bins - 1))


def mean_std(x: np.ndarray) -> tuple[float, float]:
    """Mean and (population) standard deviation of 1-D ``x`` in float64: ``x.mean(), x.std()``
    up to round-off, at a quarter of their call overhead (~10 us together)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    mean = float(np.add.reduce(x)) / n
    centred = x - mean
    return mean, math.sqrt(float(centred @ centred) / n)


def column_mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``x.mean(axis=0), x.std(axis=0)`` of a ``(rows, columns)`` float64 matrix as two
    products with a vector of 1 / rows: half the time of numpy's reductions here."""
    weights = np.full(x.shape[0], 1.0 / x.shape[0])
    means = weights @ x
    centred = x - means
    return means, np.sqrt(weights @ (centred * centred))


def percentiles(x: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """``np.percentile(x, qs)`` (linear method) from one sort; numpy's costs ~30 us a call."""
    ordered = np.sort(x, kind="stable").astype(np.float64)
    last = ordered.shape[0] - 1
    out = []
    for q in qs:
        position = q / 100.0 * last
        lo = int(np.floor(position))
        hi = min(lo + 1, last)
        out.append(float(ordered[lo] + (ordered[hi] - ordered[lo]) * (position - lo)))
    return out


def slope(t: np.ndarray, v: np.ndarray) -> float:
    """Least-squares slope of ``v`` against ``t`` (``np.polyfit(t, v, 1)[0]``); 0 if flat."""
    t = t.astype(np.float64)
    dt = t - t.mean()
    denom = float(dt @ dt)
    return float(dt @ (v - v.mean()) / denom) if denom > 0 else 0.0
