"""Service settings, read from the environment with the ``SER_`` prefix."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The model that ships in the repository (and in the image), next to the package.
BUNDLED_MODEL = Path(__file__).resolve().parent.parent / "models" / "ser-default.onnx"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SER_", env_file=None, extra="ignore")

    model_path: Path = Field(default=BUNDLED_MODEL, description="ONNX model to serve.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    max_upload_mb: float = Field(default=20.0, gt=0, description="Largest accepted request body.")
    max_audio_seconds: float = Field(default=60.0, gt=0, description="Longest accepted clip.")
    max_timeline_seconds: float = Field(
        default=600.0, gt=0, description="Longest recording for /predict?timeline=true."
    )
    max_inflight: int = Field(
        default=8, ge=1, description="Concurrent inferences per worker before answering 503."
    )
    ort_threads: int = Field(default=1, ge=1, description="onnxruntime intra-op threads.")
    warmup: bool = Field(default=True, description="Run one inference before reporting ready.")
    max_batch_files: int = Field(default=16, ge=1, description="Files per /predict/batch request.")
    stream_config_timeout_s: float = Field(
        default=10.0, gt=0, description="Seconds a /v1/stream client has to send its config."
    )
    api_keys: str = Field(default="", description="Comma-separated API keys; empty = auth off.")
    api_keys_file: Path | None = Field(
        default=None, description="File of SHA-256 hex digests of API keys, one per line."
    )
    log_level: str = "INFO"
    json_logs: bool = Field(default=True, description="One JSON object per log line.")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)
