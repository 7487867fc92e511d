# Rufweiche — the two commands a newcomer types are `make run` and `make test`.
# Both install whatever is missing first (Python packages into .venv, Debian peers via apt).

SHELL := /bin/bash
# pjsua2-python ships wheels for CPython 3.8-3.12: take the first interpreter that runs
# and is 3.11 or 3.12 (a pyenv shim may exist for a version that is not selected).
PYTHON ?= $(shell for p in python3 python3.12 python3.11; do \
	$$p -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 12))' \
	>/dev/null 2>&1 && { echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the switch uses at run time: the Kamailio edge (with several workers)
# and the tools that make spoken announcements.
APT_RUN := kamailio kamailio-sqlite-modules kamailio-presence-modules kamailio-tls-modules \
           kamailio-extra-modules kamailio-utils-modules kamailio-postgres-modules \
           rtpengine-daemon espeak-ng sox
# ... and the real peers the test suite talks to.
APT_PEERS := $(APT_RUN) sip-tester baresip-core sqlite3 mosquitto mosquitto-clients \
             chromium chromium-driver tshark iproute2 util-linux iptables sipvicious \
             postgresql-15 systemd openssl

SETTINGS ?=
RUN_ARGS ?= --dialplans dialplans/

.PHONY: run run-deps test lint bench peers install clean unit

run: run-deps $(STAMP)
	$(BIN)/rufweiche run $(RUN_ARGS) $(if $(SETTINGS),--settings $(SETTINGS))

test: peers $(STAMP) lint
	@set +e; $(BIN)/python -m pytest --cov --cov-report= -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest: no test selected (exit 5), not a failure"; rc=0; fi; \
	  [ $$rc -eq 0 ] || exit $$rc
	$(BIN)/coverage combine -q 2>/dev/null || true
	$(BIN)/coverage report --include='rules/*' --fail-under=100
	@echo "branch coverage of everything: $$($(BIN)/coverage report --format=total)%"

unit: $(STAMP)
	$(BIN)/python -m pytest -m "not peer and not netns" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: peers $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

install: $(STAMP)

$(STAMP): pyproject.toml
	@[ -n "$(PYTHON)" ] || { echo "No Python 3.11 or 3.12 found (pjsua2 has no wheel for others):" \
	  "apt-get install python3 python3-venv"; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y python3-venv
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

run-deps:
	@$(MAKE) --no-print-directory peers APT_PEERS="$(APT_RUN)"

# Installs only what is missing, so a second run costs a dpkg query.
peers:
	@missing=$$(for p in $(APT_PEERS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages: $$missing"; \
	  $(SUDO) apt-get update -q && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .coverage .coverage.* build *.egg-info
