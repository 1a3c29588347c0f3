# lcgan: land cover <-> imagery CycleGAN, QGIS plugin and training package.
# Every target sets up what it needs (Debian packages, .venv, pinned requirements) and is idempotent.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.lcgan-setup
REQS    := requirements/constraints.txt requirements/runtime.txt requirements/train.txt requirements/optional.txt requirements/dev.txt
APT_PKGS := python3-qgis qgis qgis-providers python3-rasterio python3-shapely python3-venv xvfb x11-apps imagemagick
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DATA    ?= ../shared/data/zion
CONFIG  ?= training/configs/default.toml
ARGS    ?=
MODEL_DIR ?= resources/models
export QT_QPA_PLATFORM ?= offscreen
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup apt venv test test-fast lint demo train evaluate bench bench-train zip deepness screenshot docs-images clean

help:
	@echo "make demo      set up, then translate an embedded land-cover map to imagery and back (out/)"
	@echo "make test      set up, then run the whole test suite"
	@echo "make train     train the CycleGAN on $(DATA) (CONFIG=..., ARGS='key=value ...')"
	@echo "make evaluate  accuracy/mIoU and colour statistics of the models in MODEL_DIR on the Zion sample"
	@echo "make bench     engine speed, memory and seam benchmark -> docs/bench.json"
	@echo "make bench-train  training step speed, fp32 eager vs the default fast path -> docs/bench_train.json"
	@echo "make zip       Plugin Manager zip -> dist/lcgan_qgis.zip"
	@echo "make deepness  fixed-shape copy of the land-cover model for the Deepness plugin -> dist/"
	@echo "make lint      ruff"
	@echo "make screenshot  a new user's steps in a real QGIS window (Xvfb) -> docs/img/{install,dock_before,dock,legend,processing,adapt,scenario_dock}.png"
	@echo "make docs-images every picture in the README (demo quicklook, screenshot, evaluation plots)"

setup: apt venv
	@$(PY) -c 'import torch, onnxruntime, numpy; print("setup: ready:", "torch", torch.__version__, "| onnxruntime", onnxruntime.__version__, "| numpy", numpy.__version__)'

apt:
	@missing=""; for p in $(APT_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	else echo "setup: Debian packages present, nothing to install"; fi

# The stamp holds a digest of the requirement files: pip runs only when they changed (or the venv is new).
venv:
	@[ -x $(PY) ] || { echo "setup: creating $(VENV) (system site packages: QGIS, GDAL, rasterio, numpy)"; \
	  /usr/bin/python3 -m venv --system-site-packages $(VENV); }
	@want=$$(cat $(REQS) | sha256sum | cut -c1-16); \
	if [ "$$(cat $(STAMP) 2>/dev/null)" = "$$want" ]; then echo "setup: Python requirements up to date, nothing to install"; \
	else echo "setup: installing pinned Python requirements (requirements/*.txt)"; \
	  $(PY) -m pip install -q --disable-pip-version-check -c requirements/constraints.txt -r requirements/dev.txt && \
	  $(PY) -c "import numpy, osgeo.gdal, rasterio, qgis.core, onnxruntime, torch; import sys; sys.exit(0 if numpy.__version__.startswith('1.24') else 'numpy ' + numpy.__version__ + ' replaced Debian numpy 1.24')" && \
	  echo "$$want" > $(STAMP); fi

test: setup
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

lint: setup
	$(VENV)/bin/ruff check .

demo: setup
	$(PY) -m tools.demo --out out

train: setup
	$(PY) -m training train --config $(CONFIG) --data $(DATA) $(ARGS)

HELDOUT ?= training/configs/zion_areas/heldout_south.geojson

evaluate: setup
	$(PY) -m training evaluate --models $(MODEL_DIR) --data $(DATA) --out docs/evaluation --heldout $(HELDOUT) $(ARGS)

bench: setup
	$(PY) -m tools.bench --out docs/bench.json $(ARGS)

bench-train: setup
	$(PY) -m tools.bench_train --out docs/bench_train.json $(ARGS)

zip: setup
	$(PY) -m tools.make_zip --out dist/lcgan_qgis.zip
	-$(PY) -m tools.plugin_repo_check dist/lcgan_qgis.zip  # plugins.qgis.org's upload rules (a report, not a gate)

deepness: setup
	@mkdir -p dist
	$(PY) -m tools.deepness_export --model $(MODEL_DIR)/rgb_to_landcover.onnx --out dist/

screenshot: setup
	$(PY) -m tools.screenshot --out-dir docs/img

# Every picture the README shows, regenerated from the repo: demo quicklook, dock screenshot, evaluation plots.
docs-images: setup
	$(PY) -m tools.demo --out out --docs-png docs/img/demo.png
	$(PY) -m tools.screenshot --out-dir docs/img
	$(PY) -m training evaluate --models $(MODEL_DIR) --data $(DATA) --out docs/evaluation --heldout $(HELDOUT)

clean:
	rm -rf dist out .pytest_cache .ruff_cache
