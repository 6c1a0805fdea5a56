# syntax=docker/dockerfile:1
# storyloom images, two targets (docs/deployment.md):
#
#   docker build --target bot    -t storyloom-bot .     # Discord/Slack bot, no torch: it
#                                                       # sends jobs to workers (queue=redis)
#   docker build --target worker -t storyloom-worker .  # GPU worker: CUDA torch, diffusers;
#                                                       # also runs a bot in embedded mode
#
# Both run as the unprivileged user `storyloom` and keep their state in volumes: /data
# (SQLite database, identity stores, rendered files) and, for the worker, /models (the
# Hugging Face cache, HF_HOME, and the built-in tiny models).

ARG PYTHON_VERSION=3.12
# A CUDA *runtime* base (no compiler): torch's CUDA wheels bring their own CUDA libraries,
# the base brings the user-space pieces the NVIDIA container toolkit expects.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
ARG TORCH_SPEC="torch>=2.6,<3"

# ---------------------------------------------------------------------- bot: build
FROM python:${PYTHON_VERSION}-slim AS bot-build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/storyloom
WORKDIR /src
COPY pyproject.toml README.md LICENSE THIRD_PARTY.md ./
COPY storyloom ./storyloom
# No `render` extra: no torch, diffusers or transformers in this image.
RUN /opt/storyloom/bin/pip install ".[discord,slack,distributed,postgres]"

# ---------------------------------------------------------------------- bot
FROM python:${PYTHON_VERSION}-slim AS bot
# Lettering in every script (generation/pages/lettering.py): Devanagari, Thai, CJK and more
# beyond the bundled DejaVu Sans
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-core fonts-noto-cjk fonts-symbola \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --create-home storyloom \
    && mkdir -p /data /models \
    && chown storyloom:storyloom /data /models
COPY --from=bot-build /opt/storyloom /opt/storyloom
ENV PATH=/opt/storyloom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/models/huggingface \
    STORYLOOM_DATABASE_URL=sqlite+aiosqlite:////data/storyloom.db \
    STORYLOOM_STORE_DIR=/data/stores \
    STORYLOOM_OUTPUT_DIR=/data/out \
    STORYLOOM_CHARACTER_DIR=/data/characters \
    STORYLOOM_MODEL_CACHE_DIR=/models/storyloom \
    STORYLOOM_QUEUE=redis \
    STORYLOOM_OPS_HOST=0.0.0.0 \
    STORYLOOM_OPS_PORT=9100
VOLUME ["/data"]
WORKDIR /data
USER storyloom
EXPOSE 9100
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["storyloom", "health"]
ENTRYPOINT ["storyloom"]
CMD ["discord"]

# ---------------------------------------------------------------------- worker: build
FROM ${CUDA_IMAGE} AS worker-build
ARG TORCH_INDEX_URL
ARG TORCH_SPEC
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/storyloom
# The CUDA build of torch first, from PyTorch's index: the `render` extra asks only for
# `torch>=2.6,<3`, so this torch is kept (from PyPI it could be another build).
RUN /opt/storyloom/bin/pip install --index-url "${TORCH_INDEX_URL}" "${TORCH_SPEC}"
WORKDIR /src
COPY pyproject.toml README.md LICENSE THIRD_PARTY.md ./
COPY storyloom ./storyloom
# `safety`: the image check runs on the worker, beside the renderer (the bot image needs
# none of it in the distributed mode)
RUN /opt/storyloom/bin/pip install ".[render,safety,discord,slack,distributed,postgres]"

# ---------------------------------------------------------------------- worker
FROM ${CUDA_IMAGE} AS worker
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 fonts-noto-core fonts-noto-cjk fonts-symbola \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --create-home storyloom \
    && mkdir -p /data /models \
    && chown storyloom:storyloom /data /models
COPY --from=worker-build /opt/storyloom /opt/storyloom
ENV PATH=/opt/storyloom/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/models/huggingface \
    STORYLOOM_DATABASE_URL=sqlite+aiosqlite:////data/storyloom.db \
    STORYLOOM_STORE_DIR=/data/stores \
    STORYLOOM_OUTPUT_DIR=/data/out \
    STORYLOOM_CHARACTER_DIR=/data/characters \
    STORYLOOM_MODEL_CACHE_DIR=/models/storyloom \
    STORYLOOM_DEVICE=cuda \
    STORYLOOM_OPS_HOST=0.0.0.0 \
    STORYLOOM_OPS_PORT=9100
VOLUME ["/data", "/models"]
WORKDIR /data
USER storyloom
EXPOSE 9100
# The first start downloads the model into /models (many GB): a long start period.
HEALTHCHECK --interval=30s --timeout=10s --start-period=20m --retries=3 \
    CMD ["storyloom", "health"]
ENTRYPOINT ["storyloom"]
CMD ["worker"]
