# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-tools protocol-servers lint types unit bench mutate compile demo clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,demo]'
	touch $(STAMP)

# Byte-compiled once, as a wheel install would be: with PYTHONDONTWRITEBYTECODE set
# (common in containers) every start would compile the agent's sources again
# (~0.15 s of each start, bench/README.md). Stale .pyc files are simply ignored.
compile: $(STAMP)
	@$(BIN)/python -m compileall -q agent

run: compile
	@echo "wsprobe: status page at http://127.0.0.1:9470/ (metrics at /metrics) once started"
	$(BIN)/wsprobe run --demo -c config.example.yaml

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy --strict agent/

unit: $(STAMP)
	$(BIN)/python -m pytest

test: test-tools lint types unit

# Real tools for the tests that use them: promtool and Prometheus (rules, dashboard
# queries), Alertmanager, systemd-analyze (the unit file), libfaketime (a wall-clock step
# under a running agent), chromium (the status page), Mosquitto and RabbitMQ (the
# protocol tests). Installed with apt-get as root
# (~1 min once, then free). Outside CI their tests skip when this cannot install them; in
# CI (CI=true) a missing tool fails here and in the tests. kubectl (kustomize) has no
# Debian package: it comes with the machine image, and its test fails in CI without it.
# On a machine with systemd, Debian starts the packages' services (ports 9090/9093).
# The browser test's npm module (playwright-core, pinned by tests/browser/package-lock.json)
# comes from npm ci.
test-tools:
	@if command -v npm >/dev/null && [ ! -d tests/browser/node_modules/playwright-core ]; then \
	  echo "test-tools: npm ci in tests/browser (playwright-core)"; \
	  (cd tests/browser && npm ci --no-audit --no-fund --silent) \
	  || { echo "test-tools: npm ci in tests/browser failed"; [ "$$CI" != true ] || exit 1; }; \
	fi
	@pkgs=""; \
	{ command -v promtool >/dev/null && command -v prometheus >/dev/null; } || pkgs="prometheus"; \
	command -v prometheus-alertmanager >/dev/null || pkgs="$${pkgs:+$$pkgs }prometheus-alertmanager"; \
	command -v prometheus-blackbox-exporter >/dev/null || pkgs="$${pkgs:+$$pkgs }prometheus-blackbox-exporter"; \
	command -v systemd-analyze >/dev/null || pkgs="$${pkgs:+$$pkgs }systemd"; \
	command -v faketime >/dev/null || pkgs="$${pkgs:+$$pkgs }faketime"; \
	command -v kubectl >/dev/null || echo "test-tools: kubectl not found; the Kubernetes manifest test needs it"; \
	[ -x /usr/bin/chromium ] || pkgs="$${pkgs:+$$pkgs }chromium"; \
	test -x /usr/sbin/mosquitto || pkgs="$${pkgs:+$$pkgs }mosquitto"; \
	test -x /usr/lib/rabbitmq/bin/rabbitmq-server || pkgs="$${pkgs:+$$pkgs }rabbitmq-server"; \
	if [ -z "$$pkgs" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "test-tools: installing $$pkgs with apt-get (~30 s, once)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends $$pkgs; } >/dev/null 2>&1 && exit 0; \
	  echo "test-tools: could not install $$pkgs"; \
	else echo "test-tools: $$pkgs not installed (needs root and apt-get)"; fi; \
	if [ "$$CI" = true ]; then echo "test-tools: CI=true: their tests cannot be skipped"; exit 1; fi; \
	echo "test-tools: their tests will be skipped"
	@$(MAKE) --no-print-directory protocol-servers

# The node GraphQL servers the protocol tests run (npm, pinned by the lockfile; ~5 s).
# Mosquitto and RabbitMQ come from test-tools above. In CI a missing server fails.
PROTOCOL_NODE := tests/protocol_servers/node
protocol-servers:
	@if [ -d $(PROTOCOL_NODE)/node_modules/graphql-ws ]; then exit 0; fi; \
	if command -v npm >/dev/null; then \
	  echo "test-tools: npm ci in $(PROTOCOL_NODE)"; \
	  (cd $(PROTOCOL_NODE) && npm ci --no-audit --no-fund --silent) && exit 0; \
	  echo "test-tools: npm ci failed in $(PROTOCOL_NODE)"; \
	else echo "test-tools: npm not found"; fi; \
	if [ "$$CI" = true ]; then echo "test-tools: CI=true: the GraphQL protocol tests cannot be skipped"; exit 1; fi; \
	echo "test-tools: the GraphQL protocol tests will be skipped"

# The blackbox scenario compares with Prometheus blackbox_exporter: best effort, as
# root where apt-get exists; without it that scenario is skipped with a note. On a
# machine with systemd, Debian starts the package's service (port 9115); the bench
# runs its own instance on a free port.
bench: compile
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,bench]'
	@command -v prometheus-blackbox-exporter >/dev/null || command -v blackbox_exporter >/dev/null \
	|| if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "bench: installing prometheus-blackbox-exporter with apt-get (once)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends prometheus-blackbox-exporter; } >/dev/null 2>&1 \
	  || echo "bench: could not install prometheus-blackbox-exporter; its scenario will be skipped"; \
	else echo "bench: blackbox_exporter not installed (needs root and apt-get); its scenario will be skipped"; fi
	$(BIN)/python -m bench

# Mutation testing of the pure modules (not part of `make test`: minutes, not seconds).
# One module: `make mutate MODULES=liveness`; fails when a module scores below 95 %.
mutate: compile
	nice -n 10 $(BIN)/python tools/mutate.py $(MODULES)

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
