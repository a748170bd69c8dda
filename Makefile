# scalezero — run `make help` for the targets.

PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
STACK ?= stack.yml
MODELS ?= models
IMGSZ ?= 640
PYTEST_ARGS ?=

.PHONY: help venv model test demo bench clean \
        cluster images images-all deploy load dashboard e2e-kind down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -e '.[ml,test]'
	touch $@

venv: $(VENV)/.installed ## create the virtual environment and install everything

$(MODELS)/yolo26n.onnx: $(VENV)/.installed
	$(PY) -m scalezero model export --out $(MODELS) --imgsz $(IMGSZ)

model: $(MODELS)/yolo26n.onnx ## export YOLO26n to ONNX (untrained when offline)

test: venv model ## create the venv, export the model, run every test
	$(PY) -m pytest -q $(PYTEST_ARGS)

demo: venv model ## the main job: scale from zero under synthetic traffic, with a report
	$(PY) scripts/demo.py

bench: venv model ## run the benchmarks and write bench/results.md
	$(PY) bench/run_all.py

clean: ## remove the venv, models and run outputs
	rm -rf $(VENV) $(MODELS) runs out
