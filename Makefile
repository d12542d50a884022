# earmark: two commands on a fresh Debian machine (as root): `make demo`, `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python

.PHONY: demo test bench lint bootstrap clean screenshot

# Real VST3 plugins. The engine searches the standard VST3 folders
# (/usr/lib/vst3, /usr/local/lib/vst3, ~/.vst3) plus EARMARK_PLUGIN_PATH
# (colon-separated). On Debian 13 the plugins are system packages in
# /usr/lib/vst3; on Debian 12 scripts/install-plugins unpacks Debian 13's builds
# into this project-local folder, appended to whatever the caller set.
PLUGIN_DIR := $(CURDIR)/.cache/plugins/usr/lib/vst3
test demo bench: export EARMARK_PLUGIN_PATH := $(if $(EARMARK_PLUGIN_PATH),$(EARMARK_PLUGIN_PATH):)$(PLUGIN_DIR)

# bootstrap is idempotent and takes well under a second when nothing is missing.
bootstrap:
	scripts/bootstrap

# DEMO_SECONDS=0 streams until q / Ctrl-C.
DEMO_SECONDS ?= 20
demo: bootstrap
	$(VENV)/bin/earmark demo $(if $(filter 0,$(DEMO_SECONDS)),,--seconds $(DEMO_SECONDS))

test: bootstrap
	$(PY) -m pytest -q tests

# bench/realtime.py soaks 10 minutes at 64 frames (and 2 at 32), engine alone and with
# the session services: about 27 minutes; bench/gil.py adds 2.
bench: bootstrap
	scripts/bootstrap --extra bench
	$(PY) bench/meters.py
	$(PY) bench/realtime.py --services
	$(PY) bench/gil.py

# docs/dashboard.png: the dashboard during the demo, on a private Xvfb (about 30 s).
screenshot: bootstrap
	scripts/screenshot docs/dashboard.png 20

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -prune -exec rm -rf {} +
