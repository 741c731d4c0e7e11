"""Response models: they document the API in OpenAPI and pin its shape."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class PredictResponse(BaseModel):
    label: str = Field(description="The most probable emotion.")
    confidence: float = Field(ge=0.0, le=1.0, description="Probability of `label`.")
    probabilities: dict[str, float] = Field(description="Probability of every label.")
    duration_s: float = Field(description="Duration of the decoded audio in seconds.")
    speech_s: float = Field(
        ge=0.0,
        description="Seconds of speech the speech detector found (its segments' total length; "
        "with timeline=true, the summary's `speech_s`). A clip without speech is not "
        "answered: 422 `no_speech`.",
    )
    model: str = Field(description="Version of the model that answered.")
    timing_ms: dict[str, float] = Field(description="Time spent per stage, in milliseconds.")
    timeline: dict[str, Any] | None = Field(
        default=None, description="With timeline=true: speech segments and a summary."
    )


class ModelInfo(BaseModel):
    name: str
    version: str
    labels: list[str]
    feature_set: str
    feature_config: dict[str, Any]
    created_utc: str | None
    training_data: dict[str, Any]
    metrics: dict[str, Any]
    card: str | None = None


class BatchItem(BaseModel):
    filename: str | None
    status: int = Field(description="HTTP status this file alone would have had.")
    label: str | None = None
    confidence: float | None = None
    probabilities: dict[str, float] | None = None
    duration_s: float | None = None
    speech_s: float | None = None
    model: str | None = None
    timing_ms: dict[str, float] | None = None
    error: str | None = None
    detail: str | None = None


class BatchResponse(BaseModel):
    results: list[BatchItem]
