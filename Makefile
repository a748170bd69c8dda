# scalezero — run `make help` for the targets.

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= stack.yml
MODELS ?= models
IMGSZ ?= 640
PYTEST_ARGS ?=
# Kubernetes (kind) targets: need docker, kind, kubectl, helm and internet.
CLUSTER ?= scalezero
NAMESPACE ?= functions
REGISTRY ?= dev.local
K8S := scripts/k8s
K8S_ENV = CLUSTER=$(CLUSTER) NAMESPACE=$(NAMESPACE) REGISTRY=$(REGISTRY) PY=$(abspath $(PY))

.PHONY: help venv model model-int8 test demo bench clean runtime-image dockerfiles \
        cluster images images-all deploy load dashboard e2e-kind down toolchain cluster-smoke ingress-conformance

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -e '.[ml,test]'
	touch $@

venv: $(VENV)/.installed ## create the virtual environment and install everything

$(MODELS)/yolo26n.onnx: $(VENV)/.installed
	$(PY) -m scalezero model export --out $(MODELS) --imgsz $(IMGSZ)

$(MODELS)/yolo26n.int8.onnx: $(MODELS)/yolo26n.onnx
	$(PY) -m scalezero model export --out $(MODELS) --imgsz $(IMGSZ) --int8

model: $(MODELS)/yolo26n.onnx ## export YOLO26n to ONNX (untrained when offline)

model-int8: $(MODELS)/yolo26n.int8.onnx ## also the static INT8 (QDQ) variant, calibrated offline

test: venv model ## create the venv, export the model, run every test
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: venv model ## the main job: scale from zero under synthetic traffic, with a report
	$(PY) scripts/demo.py

bench: venv model model-int8 ## run the benchmarks: bench/results.{json,md,png} and the README table
	$(PY) bench/run_all.py

dockerfiles: ## write functions/*/Dockerfile from docker/function.Dockerfile.in + docker/functions.yml
	python3 scripts/dockerfiles.py

clean: ## remove the venv, models and run outputs
	rm -rf $(VENV) $(MODELS) runs out

BASE_IMAGE ?= python:3.11-slim
runtime-image: ## scalezero/runtime:0.1.0, the image template/scalezero-python builds on
	docker build --build-arg BASE_IMAGE=$(BASE_IMAGE) -f docker/runtime.Dockerfile \
	  -t scalezero/runtime:0.1.0 .

cluster: ## kind cluster + Knative Serving + Kourier + Prometheus/Grafana (docker, kind, kubectl, helm)
	$(K8S_ENV) $(K8S)/cluster.sh

images: model ## build the images (not yolo-ultralytics) and kind-load them
	$(K8S_ENV) $(K8S)/images.sh

images-all: model ## build every image, yolo-ultralytics (PyTorch, GB) too, and kind-load them
	$(K8S_ENV) ALL=1 $(K8S)/images.sh

deploy: venv ## helm upgrade --install the chart with values from stack.yml
	$(K8S_ENV) STACK=$(abspath $(STACK)) $(K8S)/deploy.sh

load: venv ## synthetic traffic through the cluster's gateway, with a report
	$(K8S_ENV) $(K8S)/load.sh

dashboard: ## port-forward Grafana to http://127.0.0.1:3000
	$(K8S_ENV) $(K8S)/dashboard.sh

e2e-kind: venv model ## kind cluster (offline with make toolchain), chart via helm, OpenFaaS steps, Prometheus, load 0 -> N -> 0, local vs cluster
	$(K8S_ENV) $(K8S)/e2e.sh

toolchain: ## offline: build kind, Kubernetes, Knative, helm and the kind node image (Go proxy + Debian) into ~/.cache/scalezero/k8s
	scripts/k8s/toolchain.sh

cluster-smoke: ## offline kind cluster (1+2 nodes), Knative + scalezero ingress, a function 0 -> 1 -> 0, then deleted
	scripts/k8s/cluster-smoke.sh

ingress-conformance: ## offline kind cluster, Knative's ingress conformance suite against the scalezero ingress, then deleted
	scripts/k8s/ingress-conformance.sh

down: ## delete the kind cluster
	$(K8S_ENV) $(K8S)/down.sh
