# Two commands do all the set-up on a fresh clone:
#   make run    create .venv, install the app's requirements, start the app
#   make test   create .venv, install test tools (+ Debian chromium for the browser test), run every test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# requirements.txt asks PyTorch's CPU page first (--find-links); where it is unreachable, pip's 5 retries
# cost ~8 s before it falls back to PyPI: one retry is enough to ride out a blip.
export PIP_RETRIES ?= 1

.PHONY: run test test-fast lint format bench chromium services clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# (glibc's malloc is tuned by the app itself at start-up: server/memory.py)
run: $(VENV)/.runtime
	$(PY) -m streamlit run streamlit_app.py --server.port $(PORT)

chromium:
	command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

# Debian's PostgreSQL 15 for the room's tests (harness/services.py starts a throwaway cluster on a local port)
services:
	test -x /usr/lib/postgresql/15/bin/initdb || { apt-get update -qq && apt-get install -y -qq postgresql; }

# ruff and the layers first: they take seconds, and a slip should not wait for ten minutes of tests
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -p no:cacheprovider tests/unit/test_layers.py

format: $(VENV)/.dev
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Two pytest processes side by side on the 2 cores: the browser tests (a server and chromium each,
# mostly waiting) and everything else; the browser log is printed after the rest's.
test: lint chromium services
	@mkdir -p artifacts
	$(PY) -m pytest -m browser -p no:cacheprovider > artifacts/test-browser.log 2>&1 & browser=$$!; \
	$(PY) -m pytest -m "not browser"; rest=$$?; \
	wait $$browser; browser=$$?; echo "--- the browser tests (artifacts/test-browser.log) ---"; \
	cat artifacts/test-browser.log; exit $$(( rest || browser ))

test-fast: lint
	$(PY) -m pytest -m "not browser"

bench: $(VENV)/.dev
	$(PY) bench/train_speed.py

clean:
	rm -rf $(VENV) .pytest_cache artifacts
