"""Browser (WebM/Opus) and phone (M4A/AAC) recordings, decoded through PyAV."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.audio import AudioError, AudioTooLongError, decode_audio, sniff_container
from tests.helpers import speech_like, tone


def encode_av(samples: np.ndarray, *, rate: int, container: str, codec: str) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        frame_size = 960 if codec == "libopus" else 1024
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        for start in range(0, pcm.size, frame_size):
            block = pcm[start : start + frame_size]
            if block.size < frame_size:
                block = np.pad(block, (0, frame_size - block.size))
            frame = av.AudioFrame.from_ndarray(block[None, :], format="s16", layout="mono")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


CASES = {"webm-opus": ("webm", "libopus", 48_000), "m4a-aac": ("mp4", "aac", 44_100)}


@pytest.mark.parametrize("case", sorted(CASES))
def test_browser_and_phone_formats_decode(case: str) -> None:
    container, codec, rate = CASES[case]
    data = encode_av(
        tone(freq=440.0, seconds=1.0, rate=rate, noise=0.0),
        rate=rate,
        container=container,
        codec=codec,
    )
    assert sniff_container(data) in ("WebM", "M4A")
    audio = decode_audio(data)
    assert audio.sample_rate == 16_000 and audio.source_rate == rate
    assert audio.duration_s == pytest.approx(1.0, abs=0.1)
    spectrum = np.abs(np.fft.rfft(audio.samples))
    assert np.argmax(spectrum) * 16_000 / audio.samples.size == pytest.approx(440.0, abs=5.0)


def test_limits_apply_to_av_decoding() -> None:
    data = encode_av(tone(seconds=3.0, rate=48_000), rate=48_000, container="webm", codec="libopus")
    with pytest.raises(AudioTooLongError):
        decode_audio(data, max_duration_s=1.0)


def test_corrupt_webm_is_a_clean_error() -> None:
    data = encode_av(tone(seconds=1.0, rate=48_000), rate=48_000, container="webm", codec="libopus")
    with pytest.raises(AudioError):
        decode_audio(data[:60])
    with pytest.raises(AudioError):
        decode_audio(b"\x1a\x45\xdf\xa3" + b"\0" * 100)


def test_sniffing_ignores_the_file_name(client: TestClient) -> None:
    clip = speech_like(seconds=1.0, rate=48_000)
    data = encode_av(clip, rate=48_000, container="webm", codec="libopus")
    response = client.post("/predict", files={"file": ("lies.wav", data, "audio/wav")})
    assert response.status_code == 200, response.text
