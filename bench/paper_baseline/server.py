"""The paper's serving path, re-implemented faithfully for comparison (benchmark only).

A synchronous Flask server: ``librosa.load`` at 22,050 Hz, 40 MFCCs averaged over time,
Keras ``model.predict`` on every request. Run: ``python -m bench.paper_baseline.server PORT``.
"""

from __future__ import annotations

import io
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import librosa  # noqa: E402
import numpy as np  # noqa: E402
from flask import Flask, jsonify, request  # noqa: E402

LABELS = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]


def build_model() -> keras.Model:
    # The paper's network; its weights do not matter for speed.
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(40,)),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(200, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(100, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(len(LABELS), activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


app = Flask(__name__)
MODEL = build_model()


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.post("/predict")
def predict():
    data = request.files["file"].read()
    y, sr = librosa.load(io.BytesIO(data), sr=22050)
    mfcc = np.mean(librosa.feature.mfcc(y=y, sr=sr, n_mfcc=40).T, axis=0)
    probs = MODEL.predict(mfcc[None, :], verbose=0)[0]
    best = int(np.argmax(probs))
    return jsonify(label=LABELS[best], confidence=float(probs[best]))


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=False)
