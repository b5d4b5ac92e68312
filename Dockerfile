# wsprobe production image.
#   docker build -t wsprobe .
#   docker run -d --name wsprobe -p 9470:9470 \
#     -v "$PWD/config.yaml:/etc/wsprobe/config.yaml:ro" -v "$PWD/checks:/etc/wsprobe/checks:ro" \
#     -v wsprobe-state:/var/lib/wsprobe wsprobe
# See docs/docker.md.
ARG PYTHON_VERSION=3.11

# ---- builder: build the wheel and install it, with its dependencies, into a venv ----
FROM python:${PYTHON_VERSION}-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY agent ./agent
RUN python -m pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/wsprobe \
 && WHEEL="$(ls /wheels/wsprobe-*.whl)" \
 && /opt/wsprobe/bin/pip install "${WHEEL}[fast]" \
 && /opt/wsprobe/bin/pip uninstall --yes pip

# ---- final: slim Python plus the venv; no compiler, no pip, no source tree ----
FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="wsprobe" \
      org.opencontainers.image.description="WebSocket monitoring and synthetic-probe agent" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 wsprobe \
 && useradd --system --uid 10001 --gid wsprobe --home-dir /var/lib/wsprobe \
      --shell /usr/sbin/nologin wsprobe \
 && mkdir -p /etc/wsprobe/checks /var/lib/wsprobe \
 && chown wsprobe:wsprobe /var/lib/wsprobe

COPY --from=builder /opt/wsprobe /opt/wsprobe
# Defaults so `docker run wsprobe --demo` works out of the box; mount your own over them.
COPY config.example.yaml /etc/wsprobe/config.yaml
COPY checks/ /etc/wsprobe/checks/

# config.example.yaml reads these: listen on all interfaces inside the container (publish
# with -p to choose who can reach it) and keep state in the volume.
ENV PATH=/opt/wsprobe/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WSPROBE_LISTEN=0.0.0.0:9470 \
    WSPROBE_STATE_DIR=/var/lib/wsprobe \
    WSPROBE_HEALTHCHECK_URL=http://127.0.0.1:9470/healthz

WORKDIR /var/lib/wsprobe
VOLUME ["/var/lib/wsprobe"]
USER 10001:10001
EXPOSE 9470

# slim has no curl: ask /healthz with the image's own Python.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; r = u.urlopen(os.environ['WSPROBE_HEALTHCHECK_URL'], timeout=4); sys.exit(0 if r.status == 200 else 1)"]

# Exec form: wsprobe is PID 1 and gets SIGTERM from `docker stop` (graceful stop).
ENTRYPOINT ["wsprobe", "run", "-c", "/etc/wsprobe/config.yaml"]
CMD []
