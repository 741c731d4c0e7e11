# The trainer image: TensorFlow, tf2onnx and the feature module; reads a mounted corpus and
# writes a model (ONNX + card + metrics + config) to a mounted folder.
#   docker build -f docker/trainer.Dockerfile -t ser-trainer .
#   docker run --rm -v /path/to/data:/data:ro -v "$PWD/models:/models" ser-trainer

FROM python:3.11-slim
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 SER_CACHE_DIR=/cache PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv && useradd --system --uid 10001 --create-home ser \
 && mkdir -p /cache /models && chown ser /cache /models
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY trainer ./trainer
RUN pip install ".[trainer]"
USER 10001
VOLUME ["/data", "/models", "/cache"]
ENTRYPOINT ["ser-train", "--data-root", "/data", "--cache-dir", "/cache"]
CMD ["--out", "/models/ser-default.onnx"]
