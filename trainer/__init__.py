"""Offline trainer: corpora, cached features, the Keras model, evaluation and ONNX export."""
