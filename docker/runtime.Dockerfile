# scalezero/runtime: the scalezero function runtime ("watchdog") that
# template/scalezero-python builds on, as OpenFaaS templates build on of-watchdog.
# The build context is the repository root (the runtime lives in src/):
#   docker build -f docker/runtime.Dockerfile -t scalezero/runtime:0.1.0 .
# BASE_IMAGE: any image with python3 >= 3.11 and its venv module. CI, which
# cannot pull, passes an offline Debian one built by docker/ci-base.sh.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH PYTHONPATH=/opt/scalezero
# pip stays: images built from the template install the function's requirements with it.
COPY docker/runtime-requirements.txt /tmp/runtime-requirements.txt
RUN python3 -m venv /opt/venv \
    && useradd --uid 10001 --user-group --create-home --home-dir /home/app app \
    && pip install -q -r /tmp/runtime-requirements.txt && rm /tmp/runtime-requirements.txt
COPY src/scalezero /opt/scalezero/scalezero
RUN python3 -m compileall -q /opt/scalezero

USER 10001:10001
WORKDIR /home/app
EXPOSE 8080
# Exec form: the runtime is PID 1 and handles SIGTERM itself (drains, exits 0).
CMD ["python3", "-m", "scalezero.runtime.serve", "/home/app/function", \
     "--host", "0.0.0.0", "--port", "8080"]
