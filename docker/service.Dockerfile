# The service image: slim, non-root, no compilers, no TensorFlow, bundled model, read-only-safe.
#   docker build -f docker/service.Dockerfile -t ser-service .
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp ser-service

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python3 -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
RUN /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall -y pip setuptools wheel

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    SER_HOST=0.0.0.0 \
    SER_PORT=8000 \
    SER_MODEL_PATH=/app/models/ser-default.onnx
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin ser
COPY --from=build /opt/venv /opt/venv
# The default model, the fast one (SER_MODEL_PATH=/app/models/ser-fast.onnx: a twentieth of the
# CPU per request, less accurate on unseen voices) and the earlier opt-in accurate one (README,
# "Bundled models").
COPY models/ser-default.onnx models/ser-default.card.md \
     models/ser-fast.onnx models/ser-fast.card.md \
     models/ser-accurate.onnx models/ser-accurate.card.md /app/models/
# Serving has no JIT step to warm: the features are numpy/scipy, and neither librosa nor numba
# is installed (numba would also need a writable cache on a read-only filesystem). Loading and
# running both models once here fails the build on a broken or mismatched model (or a missing
# encoder), and compiles the bytecode that start-up would otherwise have to
# (PYTHONDONTWRITEBYTECODE=0 for this step).
RUN PYTHONDONTWRITEBYTECODE=0 python -c "from service.model import load_model; \
from service.api.app import _warm_up; [_warm_up(load_model(f'/app/models/{name}.onnx')) \
for name in ('ser-default', 'ser-fast', 'ser-accurate')]" \
 && python -m compileall -q /opt/venv/lib \
 && chmod -R a+rX /app
WORKDIR /app
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('SER_PORT', '8000')}/readyz\", timeout=2)"]
CMD ["ser-serve"]
