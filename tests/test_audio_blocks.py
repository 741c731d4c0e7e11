"""The block decoder gives decode_audio's samples, and refuses what it refuses, the same way."""

from __future__ import annotations

import io

import numpy as np
import pytest

from service.audio import (
    CANONICAL_RATE,
    AudioError,
    AudioTooLongError,
    decode_audio,
    iter_audio_blocks,
    open_audio_blocks,
)
from tests.helpers import encode, tone
from tests.test_audio import INVALID, _float_wav, _wav_header
from tests.test_audio_av import CASES, encode_av

# soxr's stream resampler gives exactly its one-shot output here (measured difference 0.0);
# the tolerance only leaves room for another soxr build.
ATOL = 1e-6


def _blocks(data: bytes | str, **options: float) -> np.ndarray:
    blocks = list(iter_audio_blocks(data, **options))
    assert blocks and all(b.ndim == 1 and b.dtype == np.float32 and b.size for b in blocks)
    return np.concatenate(blocks)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("rate", [16_000, 44_100, 48_000])
def test_blocks_equal_whole_decoding(rate: int, channels: int, fmt: str) -> None:
    # 3.37 s: no block size below divides it into whole blocks.
    data = encode(tone(seconds=3.37, rate=rate, channels=channels), rate=rate, format=fmt)
    whole = decode_audio(data).samples
    for block_s in (0.013, 0.37, 1.0, 10.0):
        blocks = _blocks(data, block_s=block_s)
        assert blocks.shape == whole.shape
        np.testing.assert_allclose(blocks, whole, rtol=0, atol=ATOL)


def test_blocks_stay_near_the_block_size() -> None:
    data = encode(tone(seconds=5.5, rate=48_000, channels=2), rate=48_000)
    sizes = [b.size for b in iter_audio_blocks(data, block_s=0.5)]
    # The resampler hands out what it has (its delay shifts a few hundred samples between
    # blocks), so blocks are about, not exactly, 0.5 s at 16 kHz.
    assert max(sizes) <= 1.1 * 0.5 * CANONICAL_RATE
    assert sum(sizes) == decode_audio(data).samples.size


def test_path_bytes_and_file_object_give_the_same_blocks(tmp_path) -> None:
    data = encode(tone(seconds=2.2, rate=44_100, channels=2), rate=44_100, format="FLAC")
    path = tmp_path / "clip.flac"
    path.write_bytes(data)
    reference = _blocks(data, block_s=0.3)
    np.testing.assert_array_equal(_blocks(str(path), block_s=0.3), reference)
    np.testing.assert_array_equal(
        np.concatenate(list(iter_audio_blocks(io.BytesIO(data)))), reference
    )


def test_header_is_known_on_opening() -> None:
    data = encode(tone(seconds=1.0, rate=44_100, channels=2), rate=44_100, format="FLAC")
    with open_audio_blocks(data) as stream:
        assert (stream.source_rate, stream.source_channels) == (44_100, 2)
        assert stream.sample_rate == CANONICAL_RATE and stream.source_format == "FLAC"
        assert sum(b.size for b in stream.blocks) == CANONICAL_RATE


@pytest.mark.parametrize("case", sorted(CASES))
def test_browser_and_phone_formats_decode_in_blocks(case: str) -> None:
    container, codec, rate = CASES[case]
    data = encode_av(tone(seconds=2.3, rate=rate), rate=rate, container=container, codec=codec)
    whole = decode_audio(data).samples
    blocks = _blocks(data, block_s=0.3)
    assert blocks.shape == whole.shape
    np.testing.assert_allclose(blocks, whole, rtol=0, atol=ATOL)


def _failure(call) -> tuple[str, str, str]:
    with pytest.raises(AudioError) as info:
        call()
    return type(info.value).__name__, info.value.reason, str(info.value)


def _corrupt_flac() -> bytes:
    data = bytearray(encode(tone(seconds=4.0, rate=44_100, channels=2), rate=44_100, format="FLAC"))
    middle = len(data) // 2
    data[middle : middle + 2000] = (
        np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes()
    )
    return bytes(data)


def _nan_after_a_while() -> bytes:
    # Past the first blocks, so the fault is met part-way.
    y = tone(seconds=3.0)
    y[int(2.5 * 16_000)] = np.nan
    return _float_wav(y)


FAULTS = {
    **{name: data for name, (data, _) in INVALID.items()},
    "corrupt_flac": _corrupt_flac(),
    "truncated_flac": _corrupt_flac()[:20_000],
    "nan_late": _nan_after_a_while(),
    "webm_garbage": b"\x1a\x45\xdf\xa3" + b"\0" * 100,
}


@pytest.mark.parametrize("case", sorted(FAULTS))
def test_faults_are_reported_as_decode_audio_reports_them(case: str) -> None:
    data = FAULTS[case]
    expected = _failure(lambda: decode_audio(data))
    assert _failure(lambda: list(iter_audio_blocks(data, block_s=0.25))) == expected


@pytest.mark.parametrize(
    "data",
    [
        encode(tone(seconds=3.0, rate=8_000), rate=8_000),
        encode(tone(seconds=3.0, rate=44_100, channels=2), rate=44_100, format="FLAC"),
        encode_av(tone(seconds=3.0, rate=48_000), rate=48_000, container="webm", codec="libopus"),
    ],
    ids=["wav", "flac", "webm"],
)
def test_duration_limit_is_the_same(data: bytes) -> None:
    expected = _failure(lambda: decode_audio(data, max_duration_s=1.0))
    assert expected[0] == AudioTooLongError.__name__
    assert _failure(lambda: list(iter_audio_blocks(data, max_duration_s=1.0))) == expected
    # Just over the length passes in both.
    assert _blocks(data, max_duration_s=3.1).size == decode_audio(data).samples.size


def test_header_claiming_a_huge_length_is_read_only_as_far_as_it_goes() -> None:
    data = _wav_header(channels=1, rate=16_000, frames=2**31 // 2 - 100) + b"\1" * 3200
    whole = decode_audio(data, max_duration_s=60.0).samples
    assert _blocks(data, max_duration_s=60.0).size == whole.size == 1600


def test_bad_arguments_are_programming_errors() -> None:
    data = encode(tone(seconds=0.5))
    with pytest.raises(ValueError, match="block_s"):
        list(iter_audio_blocks(data, block_s=0))
    with pytest.raises(ValueError, match="target_rate"):
        list(iter_audio_blocks(data, target_rate=10))
