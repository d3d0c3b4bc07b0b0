# syntax=docker/dockerfile:1
# Podrun's API and worker in one image (`podrun api`, `podrun worker`, `podrun migrate`), with the
# web client the API serves at /. Build from the repository root:
#   docker build -f infra/docker/backend.Dockerfile -t podrun-backend:dev .

# The web client: a static build (SvelteKit adapter-static).
FROM node:20.19.4-bookworm-slim AS web
WORKDIR /web
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY frontend/ ./
RUN npm run build --silent

# The Python environment, built with uv from the committed lock file.
FROM python:3.12.11-slim-bookworm AS builder
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (a layer that changes only with the lock), then the project itself.
COPY backend/pyproject.toml backend/uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY backend/README.md ./
COPY backend/src ./src
RUN uv sync --frozen --no-dev --no-editable

# What runs: the interpreter, the venv, bubblewrap for the local runner; no compilers, no uv, no npm.
# The worker runs unprivileged (uid 10001); its sandboxes run as its subordinate uids, which uidmap's
# setuid newuidmap/newgidmap map into each sandbox's user namespace (runners/sandbox_users.py).
FROM python:3.12.11-slim-bookworm AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends bubblewrap uidmap libseccomp2 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 podrun \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin podrun \
    && usermod --add-subuids 1700000000-1700065535 --add-subgids 1700000000-1700065535 podrun \
    && install -d -m 1777 /run/podrun/sandbox-uids
COPY --from=builder /app/.venv /app/.venv
COPY --from=web /web/build /app/web
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PODRUN_WEB_DIR=/app/web
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["podrun"]
CMD ["api", "--host", "0.0.0.0", "--port", "8000"]
