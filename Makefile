# One command sets up and runs the demo (`make demo`), one sets up and runs the tests (`make test`).
# Both create .venv when missing and install the project into it (a ~6 s no-op when nothing changed).
PY      ?= python3
VENV    ?= .venv
PIP     := $(VENV)/bin/pip
PYTHON  := $(VENV)/bin/python
APT_RUNTIME := libportaudio2 libegl1 libgles2 libgl1 libglib2.0-0
APT_TEST    := espeak-ng sox chromium

.PHONY: setup demo test test-fast system-deps bench clean

system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_RUNTIME) $(if $(filter test,$(MAKECMDGOALS)),$(APT_TEST)); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi; \
	else echo "Not root: if anything is missing, run: sudo apt-get install -y $(APT_RUNTIME) $(APT_TEST)"; fi

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)

setup: system-deps $(VENV)/bin/python
	$(PIP) install -q -e ".[dev]"

demo: setup
	$(PYTHON) run_demo.py

test: setup
	HF_HUB_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False $(PYTHON) -m pytest -q -rs

test-fast: setup
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q -rs -m "not slow"

bench: setup
	$(PYTHON) -m benchmarks.scorer_latency

clean:
	rm -rf $(VENV) build *.egg-info
