# The scalezero gateway for Kubernetes (Helm chart, knative backend).
# Build from the repository root:
#   docker build -f docker/gateway.Dockerfile -t dev.local/scalezero-gateway:0.1.0 .
# BASE_IMAGE: any image with python3 >= 3.11 and its venv module.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH PYTHONPATH=/opt/scalezero
COPY docker/gateway-requirements.txt /tmp/gateway-requirements.txt
# pip goes in the same layer it came in: 25 MB the gateway never uses.
RUN python3 -m venv /opt/venv \
    && useradd --uid 10001 --user-group --create-home --home-dir /home/app app \
    && pip install -q -r /tmp/gateway-requirements.txt \
    && pip uninstall -q -y pip setuptools && rm /tmp/*.txt

COPY src/scalezero /opt/scalezero/scalezero
RUN python3 -m compileall -q /opt/scalezero

USER 10001:10001
WORKDIR /home/app
EXPOSE 8080
# The gateway is PID 1 and stops on SIGTERM (drains held requests first).
ENTRYPOINT ["python3", "-m", "scalezero"]
CMD ["up", "--file", "/etc/scalezero/stack.yml", "--host", "0.0.0.0", "--port", "8080"]
