# The two commands of the README (`make run`, `make test`) and their helpers.
# Only Python 3.11+, pip and make are assumed: uv is installed with pip when absent, and uv
# always uses this machine's Python (never downloads an interpreter).

PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
# Processes that talk gRPC and then start others (the launcher, tests) must not run grpc's
# fork handlers: they can deadlock subprocess.Popen (grpc/grpc#37259); every child execs.
export GRPC_ENABLE_FORK_SUPPORT := 0
# The interpreter itself (not a shim in front of it), so uv never recreates the venv.
export UV_PYTHON := $(shell $(PYTHON) -c 'import sys; print(sys.executable)')
UV := $(PYTHON) -m uv
PIP_INSTALL := $(PYTHON) -m pip install --quiet --disable-pip-version-check
RUN := $(UV) run --locked --all-packages
# mypy: every lib and app, and the pure domain package of every service
MYPY_PACKAGES := $(foreach d,$(patsubst %/py.typed,%,$(wildcard libs/*/src/contactcenter/*/py.typed apps/*/src/contactcenter/*/py.typed)),contactcenter.$(notdir $(d))) \
	$(foreach d,$(wildcard services/*/src/contactcenter/*/domain),contactcenter.$(notdir $(patsubst %/domain,%,$(d))).domain)

.PHONY: help uv system-packages sync run test test-e2e lint format proto proto-check bench clean

help:
	@echo "make run    start infra, every service and the traffic simulator; print where to look (Ctrl-C stops all)"
	@echo "make test   run every test suite against real PostgreSQL and the Kafka-compatible broker"
	@echo "make lint   ruff + mypy (libs and domain code) + buf lint"
	@echo "make proto  regenerate gRPC/protobuf code from proto/"
	@echo "make bench  run every benchmark under bench/"

uv:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PIP_INSTALL) "uv==0.13.9" || $(PIP_INSTALL) --user "uv==0.13.9" || $(PIP_INSTALL) --user --break-system-packages "uv==0.13.9"

sync: uv system-packages
	@$(UV) sync --locked --all-packages --quiet

# Debian packages that services and tests list in their system-packages.txt
system-packages:
	@tools/install-system-packages

# SIM_ARGS: flags of the traffic simulator, e.g. make run SIM_ARGS="--agents 60 --speed 30"
run: sync
	$(RUN) python -m contactcenter.infra.launcher --simulate --sim-args "$(SIM_ARGS)"

test: sync
	$(RUN) python -m contactcenter.contracts.codegen --check
	$(RUN) pytest

lint: sync
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy $(foreach p,$(MYPY_PACKAGES),-p $(p))
	$(RUN) buf lint

format: sync
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

proto: sync
	$(RUN) python -m contactcenter.contracts.codegen

proto-check: sync
	$(RUN) python -m contactcenter.contracts.codegen --check

bench: sync
	@set -e; for b in $(filter-out bench/benchkit.py,$(wildcard bench/*.py)); do echo "== $$b"; $(RUN) python $$b; done

clean:
	rm -rf .state .pytest_cache .mypy_cache .ruff_cache
