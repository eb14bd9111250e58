# syntax=docker/dockerfile:1
# signoff's container image. Build and push (replace the placeholder registry with yours, and use
# the same name in deploy/deployment.yaml, or set it with `kustomize edit set image`):
#   docker build -t registry.example.com/signoff:0.1.0 . && docker push registry.example.com/signoff:0.1.0
# The install step is the quick start's (README.md): a virtual environment in .venv and pip.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY core ./core
COPY adapters ./adapters
COPY bot ./bot
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -q .

FROM python:3.11-slim
# The numeric, non-root user deploy/deployment.yaml runs as (runAsUser/runAsGroup 10001).
RUN groupadd --gid 10001 signoff \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin signoff
# Same path as in the build stage: the venv's scripts name /app/.venv/bin/python.
COPY --from=build /app/.venv /app/.venv
# SIGNOFF_HTTP_PORT is left unset so that a PaaS's $PORT applies; otherwise signoff listens on 3000.
ENV PATH=/app/.venv/bin:$PATH HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 SIGNOFF_LOG_FORMAT=json
WORKDIR /tmp
USER 10001:10001
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('SIGNOFF_HTTP_PORT') or os.environ.get('PORT') or '3000'; urllib.request.urlopen('http://127.0.0.1:' + port + '/healthz', timeout=2)"]
CMD ["signoff", "run"]
