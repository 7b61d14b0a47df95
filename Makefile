# jupyterlab-bigmaac: `make lab` sets everything up and starts JupyterLab;
# `make test` sets up whatever is missing and runs every test layer.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
JLPM := $(BIN)/jlpm
# package.json scripts call `jlpm` and `jupyter` by name.
export PATH := $(BIN):$(PATH)
STAMPS := .make
BUNDLE := python/jupyterlab_bigmaac/_bundled
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Jupyter refuses to run as root unless told; these machines run as root.
LAB_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)
say = @printf '\033[1m==> %s\033[0m\n' "$(1)"

TS_SOURCES := $(shell find src -name '*.ts' -o -name '*.tsx' 2>/dev/null)
ADDON_SOURCES := $(wildcard native/addon/*.cc native/addon/*.h native/addon/*.gyp native/include/*.h native/src/*.c native/src/*.h) scripts/build-addon.mjs
LAB_SOURCES := $(TS_SOURCES) $(wildcard style/* schema/*) package.json tsconfig.json

.PHONY: help setup lab test test-c test-ts test-py test-ui native addon agent labextension \
        python-env js-env ui-env hub-env chromium bench screenshots clean distclean

help:
	@echo "make lab    set up everything and start JupyterLab with BigMaac"
	@echo "make test   set up whatever is missing and run every test layer"
	@echo "make setup  only set up (.venv, dependencies, native library, addon, agent, extension)"

# ---------------------------------------------------------------- set-up
setup: python-env js-env native addon agent labextension

python-env: $(STAMPS)/python
$(STAMPS)/python: pyproject.toml
	$(call say,Creating $(VENV) and installing Python dependencies)
	@mkdir -p $(STAMPS)
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	@touch $@

js-env: $(STAMPS)/js
$(STAMPS)/js: package.json $(STAMPS)/python $(wildcard yarn.lock)
	$(call say,Installing JavaScript dependencies with jlpm)
	$(JLPM) install
	@touch $@

native:
	$(call say,Building the native library)
	@$(MAKE) --no-print-directory -C native
	@mkdir -p $(BUNDLE)
	@cp -p native/build/libbigmaac.so $(BUNDLE)/libbigmaac.so

addon: $(BUNDLE)/bigmaac.node
$(BUNDLE)/bigmaac.node: $(ADDON_SOURCES) $(STAMPS)/js
	$(call say,Building the Node addon)
	$(JLPM) build:addon
	@mkdir -p $(BUNDLE)
	@cp -p native/build/bigmaac.node $@

agent: $(BUNDLE)/bigmaac.js
$(BUNDLE)/bigmaac.js: $(TS_SOURCES) scripts/build-agent.mjs tsconfig.agent.json \
                      tsconfig.addon-types.json native/addon/bigmaac.node.d.ts $(STAMPS)/js
	$(call say,Bundling the agent and CLI)
	$(JLPM) typecheck:agent
	$(JLPM) build:agent
	$(JLPM) build:addon-types

labextension: $(STAMPS)/labextension
$(STAMPS)/labextension: $(LAB_SOURCES) $(STAMPS)/js
	$(call say,Building the JupyterLab extension)
	$(JLPM) build
	@rm -f python/jupyterlab_bigmaac/labextension/install.json
	$(BIN)/jupyter labextension develop --overwrite . >/dev/null
	@touch $@

chromium:
	@command -v chromium >/dev/null || { \
	  printf '\033[1m==> Installing Debian'"'"'s chromium\033[0m\n'; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

ui-env: $(STAMPS)/ui
$(STAMPS)/ui: ui-tests/package.json $(STAMPS)/js
	$(call say,Installing the browser-test dependencies)
	cd ui-tests && $(JLPM) install
	@touch $@

# JupyterHub's proxy (configurable-http-proxy, from npm) for test_jupyterhub.py.
hub-env: $(STAMPS)/hub
$(STAMPS)/hub: python/tests/jupyterhub/package.json $(STAMPS)/js
	$(call say,Installing JupyterHub's proxy for the hub test)
	cd python/tests/jupyterhub && $(JLPM) install
	@touch $@

# ---------------------------------------------------------------- run
lab: setup
	$(call say,Starting JupyterLab with BigMaac on for new kernels)
	$(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 $(LAB_ROOT) $(LAB_ARGS)

# ---------------------------------------------------------------- tests
# Every layer runs even when an earlier one fails; the exit status reports all.
test: setup
	@failed=""; \
	for layer in test-c test-ts test-py test-ui; do \
	  $(MAKE) --no-print-directory $$layer || failed="$$failed $$layer"; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi; \
	echo "All test layers passed."

test-c:
	$(call say,C tests)
	-@$(MAKE) --no-print-directory -C native other-allocators # a C test loads them; skips without
	-@$(MAKE) --no-print-directory -C native test-tools # strace: a C test counts syscalls; skips without
	@$(MAKE) --no-print-directory -C native test
	$(call say,The C tests under ASan+UBSan and the allocator core under ThreadSanitizer)
	@$(MAKE) --no-print-directory -C native test-sanitizers test-tsan

test-ts: addon agent
	$(call say,TypeScript tests (jest))
	$(JLPM) jest --ci --forceExit # a test that leaves a process behind must not hang CI

test-py: native addon agent hub-env
	$(call say,Python tests (pytest))
	$(BIN)/python -m pytest

test-ui: setup chromium ui-env
	$(call say,Browser tests (Galata in Debian's Chromium))
	cd ui-tests && $(JLPM) playwright test

# The README's panel screenshots, light and dark, taken in Debian's Chromium.
screenshots: setup chromium ui-env
	$(call say,Regenerating docs/screenshots)
	cd ui-tests && BIGMAAC_SCREENSHOTS=1 $(JLPM) playwright test tests/screenshots.spec.ts

bench: setup
	$(call say,Benchmarks)
	@$(MAKE) --no-print-directory -C bench

# ---------------------------------------------------------------- clean
clean:
	@$(MAKE) --no-print-directory -C native clean
	rm -rf lib $(BUNDLE) python/jupyterlab_bigmaac/labextension tsconfig.tsbuildinfo $(STAMPS)

distclean: clean
	rm -rf $(VENV) node_modules ui-tests/node_modules python/tests/jupyterhub/node_modules
