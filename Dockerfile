# The adaptive-rag API/CLI image (used by compose.yaml).
FROM python:3.11-slim
WORKDIR /app
ENV PIP_NO_CACHE_DIR=1 ARAG_DATA_DIR=/data
# torch is pinned to the CPU wheel index so the image does not pull a multi-GB CUDA build.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0
COPY pyproject.toml README.md ./
COPY adaptive_rag ./adaptive_rag
COPY ingest ./ingest
COPY gatekeeper ./gatekeeper
COPY eval ./eval
COPY corpora ./corpora
RUN pip install .
# run as an unprivileged user; /data (the volume) belongs to it
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin arag \
    && mkdir -p /data && chown arag /data
USER arag
EXPOSE 8000
# No API key is baked in: pass ARAG_API_KEYS ("name:role:key,...") or mount a keys file and set
# ARAG_API_KEYS_FILE at run time. Without keys the server refuses to listen on 0.0.0.0.
CMD ["arag", "serve", "--host", "0.0.0.0", "--port", "8000"]
