"""Speech emotion recognition service: audio decoding, features, ONNX model and HTTP API."""

__version__ = "0.2.0"
