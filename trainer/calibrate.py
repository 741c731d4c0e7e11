"""Temperature scaling (Guo et al., 2017): one scalar that makes confidences honest."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / T)`` for ``probs`` of shape ``(n, k)``."""
    logits = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature in [0.05, 20] that minimises validation negative log-likelihood."""

    def nll(log_t: float) -> float:
        p = apply_temperature(probs, float(np.exp(log_t)))
        return float(-np.mean(np.log(np.clip(p[np.arange(y_true.size), y_true], 1e-12, 1.0))))

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))
