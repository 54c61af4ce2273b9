# syntax=docker/dockerfile:1
# The OC event gateway's container image.
#
#   docker build -t oc-event-gateway:0.1.0 .
#   docker run --read-only --tmpfs /tmp -v gateway-data:/data -p 8080:8080 -p 9090:9090 \
#     --env-file gateway.env oc-event-gateway:0.1.0
#
# Both stages start from the same Python image, so the virtual environment built in the
# first stage finds its interpreter at the same path in the second. Pin the image by digest
# in your registry mirror (PYTHON_IMAGE=python:3.11-slim@sha256:...) for reproducible builds.
ARG PYTHON_IMAGE=python:3.11-slim

# --- build: resolve nothing, install exactly uv.lock ----------------------------------------
FROM ${PYTHON_IMAGE} AS build

# The same uv release the Makefile pins; it comes from PyPI like every other dependency.
ARG UV_VERSION=0.13.8
RUN python -m pip install --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"

# Compile bytecode now: the runtime file system is read-only, so Python cannot write it later.
# Copy files out of uv's cache rather than hard-linking them, since the cache stays behind.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /src

# Dependencies first, in their own layer: it is rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-editable --no-install-project

# Then the project itself, installed as a regular (non-editable) wheel into the venv, so
# the runtime stage needs nothing from /src. README.md is the package's readme metadata.
COPY README.md ./
COPY gateway ./gateway
COPY schemas ./schemas
RUN uv sync --frozen --no-dev --no-editable

# --- runtime: the interpreter, the venv, nothing else ------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="oc-event-gateway" \
      org.opencontainers.image.description="Receives Orange Connex callbacks, stores them durably and publishes typed events to Kafka."

# A numeric user with a passwd entry (some libraries look the user up); its home is the data
# volume, the only place it may write. Kubernetes runs it with runAsUser 10001 as well.
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
      --shell /usr/sbin/nologin gateway \
 && mkdir /data \
 && chown 10001:10001 /data

COPY --from=build /app/.venv /app/.venv

# The venv is owned by root and read-only to the gateway user.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_HTTP_HOST=0.0.0.0 \
    GATEWAY_HTTP_PORT=8080 \
    GATEWAY_METRICS_PORT=9090 \
    GATEWAY_DATA_DIR=/data

WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080 9090
USER 10001:10001

# Exec form: the gateway's Python process is PID 1 and receives SIGTERM directly. It spawns
# no child processes, so there are no zombies to reap and no need for an init such as tini;
# uvicorn installs the SIGTERM handler that drains requests and flushes the producer.
# `docker run IMAGE replay ...` runs another sub-command of the same CLI.
STOPSIGNAL SIGTERM
ENTRYPOINT ["gateway"]
CMD ["serve"]
