# Two commands do all the set-up on a fresh clone:
#   make run    create .venv, install the app's requirements, start the app
#   make test   create .venv, install test tools (+ Debian chromium for the browser test), run every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501

.PHONY: run test test-fast lint format bench chromium clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# glibc otherwise keeps the app's short-lived ~26-50 MB float buffers in the heap (bench/memory.py)
run: $(VENV)/.runtime
	MALLOC_MMAP_THRESHOLD_=4194304 $(PY) -m streamlit run streamlit_app.py --server.port $(PORT)

chromium:
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# ruff first: it takes a second, and a style slip should not wait for ten minutes of tests
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint chromium
	$(PY) -m pytest

test-fast: lint
	$(PY) -m pytest -m "not browser"

bench: $(VENV)/.dev
	$(PY) bench/train_speed.py

clean:
	rm -rf $(VENV) .pytest_cache artifacts
