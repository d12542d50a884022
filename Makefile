# earmark: two commands on a fresh Debian machine (as root): `make demo`, `make test`.
SHELL := /bin/bash
VENV  := .venv
PY    := $(VENV)/bin/python

.PHONY: demo test bench judgement lint bootstrap clean screenshot

# Real VST3 plugins. On Debian 13 they are system packages in /usr/lib/vst3; on
# Debian 12 scripts/install-plugins unpacks Debian 13's builds into
# .cache/plugins/usr/lib/vst3, a folder earmark searches by itself after
# EARMARK_PLUGIN_PATH and the standard VST3 folders (engine/plugins.py), so no
# target needs to set anything: `earmark` typed by hand finds the same plugins.

# bootstrap is idempotent and takes well under a second when nothing is missing.
bootstrap:
	scripts/bootstrap

# DEMO_SECONDS=0 streams until q / Ctrl-C. Before it streams, the demo's
# material goes into demo/ as files (mix.wav, master.wav, ai-master.wav,
# my-chain.toml): the README's examples use them, as typed, from this folder.
DEMO_SECONDS ?= 20
demo: bootstrap demo/.stamp
	$(VENV)/bin/earmark demo $(if $(filter 0,$(DEMO_SECONDS)),,--seconds $(DEMO_SECONDS))

demo/.stamp: scripts/demo-files engine/demo.py presets/chains/gentle-master.toml | bootstrap
	$(PY) scripts/demo-files demo
	touch $@

test: bootstrap
	$(PY) -m pytest -q tests

# bench/realtime.py soaks 10 minutes at 64 frames (and 2 at 32), engine alone and with
# the session services: about 27 minutes; bench/gil.py adds 2.
bench: bootstrap
	scripts/bootstrap --extra bench
	$(PY) bench/meters.py
	$(PY) bench/realtime.py --services
	$(PY) bench/gil.py

# Judgement on real music (bench/judgement.py): builds .cache/corpus from Debian's free
# game music (apt-get download, no root) on first use, then 132 processed cases judged
# five ways; about 10 minutes on 2 cores. JUDGEMENT_ARGS=--quick: 28 cases.
judgement: bootstrap
	$(PY) bench/judgement.py $(JUDGEMENT_ARGS)

# docs/dashboard.png: the dashboard during the demo, on a private Xvfb (about 30 s).
screenshot: bootstrap
	scripts/screenshot docs/dashboard.png 20

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache demo
	find . -name __pycache__ -prune -exec rm -rf {} +
