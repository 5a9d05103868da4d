# Safewatch developer tasks. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
.DEFAULT_GOAL := test

VENV := .venv
STAMP := $(VENV)/.installed
# apt-get as root directly, otherwise through sudo (which drops the environment, hence env).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
APT := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get -y -q
# The first interpreter that is 3.11 or newer (pyproject's requires-python).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo $$p; break; }; done)
# `make stack-up DATA=dir` for another stack directory than ./var/stack.
DATA ?=

.PHONY: deps venv lint test demo stack-up stack-down bench

# The servers come from Debian; our launcher runs its own instances, so the system
# services these packages may try to start (and fail to, without systemd) do not matter.
# chromium is the browser the console tests drive (Playwright never downloads one); the font
# gives it Chinese glyphs for the console's screenshots. iproute2's `ip netns` gives the cluster
# test two hosts of their own; openssl makes the webhook TLS test's self-signed certificate.
deps:
	@missing=""; \
	{ command -v mosquitto || test -x /usr/sbin/mosquitto; } >/dev/null || missing="$$missing mosquitto"; \
	command -v mosquitto_pub >/dev/null || missing="$$missing mosquitto-clients"; \
	command -v influxd >/dev/null || missing="$$missing influxdb"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v ip >/dev/null || missing="$$missing iproute2"; \
	command -v openssl >/dev/null || missing="$$missing openssl"; \
	test -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || missing="$$missing fonts-wqy-microhei"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		$(APT) update && $(APT) install --no-install-recommends $$missing; \
	fi

venv: $(STAMP)

# Reinstalls only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
		echo "Python 3.11 or newer not found (Debian 12: apt-get install python3 python3-venv)" >&2; exit 1; fi
	@if [ ! -x $(VENV)/bin/pip ]; then \
		rm -rf $(VENV); \
		$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
			echo "$(PYTHON) -m venv failed: installing python3-venv"; rm -rf $(VENV); \
			$(APT) update && $(APT) install --no-install-recommends python3-venv && $(PYTHON) -m venv $(VENV); }; \
	fi
	$(VENV)/bin/pip install -q -e '.[dev]'
	@touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy .

test: deps lint
	$(VENV)/bin/pytest -q

demo: deps venv
	$(VENV)/bin/safewatch demo

stack-up: deps venv
	$(VENV)/bin/safewatch stack up $(if $(DATA),--data $(DATA))

stack-down: venv
	$(VENV)/bin/safewatch stack down $(if $(DATA),--data $(DATA))

bench: deps venv
	$(VENV)/bin/safewatch bench
