from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import encode, tone
from trainer.augment import AugmentError, apply, mix_at_snr, parse
from trainer.calibrate import apply_temperature, fit_temperature


@pytest.mark.parametrize("snr", [20.0, 10.0, 5.0, 0.0])
def test_mix_at_snr_hits_the_requested_ratio(snr: float) -> None:
    rng = np.random.default_rng(0)
    signal = tone(seconds=1.0)
    noise = rng.standard_normal(signal.size).astype(np.float32)
    mixed = mix_at_snr(signal, noise, snr_db=snr)
    added = mixed - signal
    measured = 10 * np.log10(np.mean(signal**2) / np.mean(added**2))
    assert measured == pytest.approx(snr, abs=0.01)


def test_speed_changes_duration_and_pitch() -> None:
    y = tone(freq=200.0, seconds=1.0, noise=0.0)
    fast = apply(y, "speed1.25", sample_rate=16_000, seed=0)
    assert fast.size == pytest.approx(y.size / 1.25, abs=2)
    peak = np.argmax(np.abs(np.fft.rfft(fast))) * 16_000 / fast.size
    assert peak == pytest.approx(250.0, abs=3.0)


def test_babble_and_reverb_keep_length_and_are_deterministic(tmp_path) -> None:
    sources = []
    for i, f in enumerate((150.0, 260.0, 330.0)):
        path = tmp_path / f"talker{i}.wav"
        path.write_bytes(encode(tone(freq=f, seconds=0.7, seed=i)))
        sources.append(path)
    y = tone(seconds=1.0)
    a = apply(y, "babble@10", sample_rate=16_000, seed=3, babble_sources=sources)
    b = apply(y, "babble@10", sample_rate=16_000, seed=3, babble_sources=sources)
    assert a.shape == y.shape and np.array_equal(a, b) and not np.allclose(a, y)
    wet = apply(y, "reverb0.3", sample_rate=16_000, seed=1)
    assert wet.shape == y.shape and np.isfinite(wet).all()


def test_channel_eq_reshapes_the_spectrum_within_its_bound_and_keeps_level() -> None:
    from trainer.augment import channel_response_db

    rng = np.random.default_rng(5)
    y = rng.standard_normal(32_000).astype(np.float32) * 0.1
    out = apply(y, "eq@9", sample_rate=16_000, seed=7)
    again = apply(y, "eq@9", sample_rate=16_000, seed=7)
    assert out.shape == y.shape and np.array_equal(out, again)
    assert np.mean(out**2) == pytest.approx(np.mean(y**2), rel=1e-4)
    # The applied response is the drawn one (level aside), and it peaks at the bound.
    freqs = np.fft.rfftfreq(y.size, 1 / 16_000)
    measured = 20 * np.log10(np.abs(np.fft.rfft(out)) / np.abs(np.fft.rfft(y)))
    for max_db in (3.0, 9.0):
        drawn = channel_response_db(freqs, max_db=max_db, rng=np.random.default_rng(1))
        assert np.abs(drawn).max() == pytest.approx(max_db)
    drawn = channel_response_db(freqs, max_db=9.0, rng=np.random.default_rng(7))
    offset = np.median(measured - drawn)
    assert np.allclose(measured[1:], drawn[1:] + offset, atol=0.05)
    assert np.ptp(drawn) > 3.0  # not flat: the clip's colour really changes


def test_bad_specs_are_rejected() -> None:
    for spec in ("fast", "speed", "white@", "echo@3"):
        with pytest.raises(AugmentError):
            parse(spec)
    with pytest.raises(AugmentError):
        apply(tone(seconds=0.2), "babble@5", sample_rate=16_000, seed=0)


def test_temperature_scaling_recovers_a_known_temperature() -> None:
    rng = np.random.default_rng(0)
    n, k = 4000, 5
    logits = rng.standard_normal((n, k)) * 2.0
    true_probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = np.array([rng.choice(k, p=p) for p in true_probs])
    overconfident = apply_temperature(true_probs, 1 / 3.0)  # logits tripled
    fitted = fit_temperature(overconfident, y)
    assert fitted == pytest.approx(3.0, rel=0.1)
    np.testing.assert_allclose(apply_temperature(overconfident, fitted), true_probs, atol=0.05)
    assert np.array_equal(
        apply_temperature(overconfident, fitted).argmax(1), overconfident.argmax(1)
    )


def _snr_db(clean: np.ndarray, mixed: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(clean**2) / np.mean((mixed - clean) ** 2)))


def test_snr_range_draws_per_seed_within_bounds() -> None:
    y = tone(seconds=1.0)
    snrs = [_snr_db(y, apply(y, "white@0:30", sample_rate=16_000, seed=s)) for s in range(40)]
    assert min(snrs) >= -0.01 and max(snrs) <= 30.01
    # Drawn, not fixed: the draws spread over most of the range.
    assert max(snrs) - min(snrs) > 20
    again = apply(y, "white@0:30", sample_rate=16_000, seed=7)
    np.testing.assert_array_equal(again, apply(y, "white@0:30", sample_rate=16_000, seed=7))


def test_chained_steps_apply_in_order() -> None:
    y = tone(freq=200.0, seconds=1.0, noise=0.0)
    out = apply(y, "speed1.25+white@20", sample_rate=16_000, seed=0)
    assert out.size == pytest.approx(y.size / 1.25, abs=2)
    sped = apply(y, "speed1.25", sample_rate=16_000, seed=0)
    assert _snr_db(sped, out) == pytest.approx(20.0, abs=0.05)


@pytest.mark.parametrize("spec", ["white@30:0", "white@", "speed1.1+", "echo@3"])
def test_bad_specs_are_refused(spec: str) -> None:
    with pytest.raises(AugmentError):
        apply(tone(seconds=0.5), spec, sample_rate=16_000, seed=0)


def test_parse_refuses_a_range_where_one_value_is_needed() -> None:
    assert parse("white@10") == ("white", 10.0)
    with pytest.raises(AugmentError, match="range"):
        parse("white@0:30")
