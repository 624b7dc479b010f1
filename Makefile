# scope-wasm: build, run and test. `make run` and `make test` install what they need.
SHELL := /bin/bash
CARGO ?= cargo
TARGET_DIR ?= $(CURDIR)/target
# Plugins shipped by default, built into target/plugins/<id>.wasm, with the
# conformance plugin in Rust and in every other SDK language (guest-sdk/build.sh).
GUESTS := counter iowait volume-count traffic-control http-statistics conformance-rust
SDK_LANGS := python js c go
# Hostile guests for tests only, built into target/zoo/<id>.wasm; never shipped.
ZOO := loop-forever panic-on-second memory-bomb deep-recursion lying-report host-call-loop wasi-sleep huge-report slow-report fail-after-first stack-hungry escape-artist chatty report-bomb host-abuse slow-start same-report slow-control

# The private Docker Engine that tests and benchmarks start and stop.
DOCKER_ROOT ?= /tmp/scope-wasm-dockerd
WASM_OUT := $(TARGET_DIR)/wasm32-wasip2/guest
RUN_SOCKET_DIR ?= $(if $(filter 0,$(shell id -u)),/var/run/scope/plugins,$(CURDIR)/scope-plugins)

.PHONY: all setup build plugins guests go-bindings zoo run test test-tools test-plugins bench fuzz clean

all: build guests

## setup: install the wasm32-wasip2 Rust target, and clang for the daemon's eBPF program (once).
setup:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	@command -v clang-19 >/dev/null || { echo "installing clang-19 (builds the http-traffic eBPF program)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang-19 >/dev/null; }

build: setup
	$(CARGO) build -p scope-wasm

## plugins: the Rust plugins into target/plugins/<id>.wasm (all the container image needs)
plugins: setup
	$(CARGO) build --profile guest --target wasm32-wasip2 $(addprefix -p ,$(GUESTS))
	@mkdir -p $(TARGET_DIR)/plugins
	@for g in $(GUESTS); do cp $(WASM_OUT)/$$(echo $$g | tr - _).wasm $(TARGET_DIR)/plugins/$$g.wasm; done

## guests: those, and the conformance plugin in every other SDK language
guests: plugins
	@for l in $(SDK_LANGS); do guest-sdk/build.sh $$l guests/conformance-$$l $(TARGET_DIR)/plugins/conformance-$$l.wasm || exit 1; done
	guest-sdk/build.sh python-shared guests/conformance-python $(TARGET_DIR)/plugins/conformance-python-shared.wasm
	@ls -l $(TARGET_DIR)/plugins

## go-bindings: regenerate the Go SDK module's bindings (guest-sdk/go/imports, exports/wit_exports) from wit/;
## they are committed, as a Go module must hold them (make test checks they match)
go-bindings:
	$(CARGO) build -q -p scope-guest-build
	rm -rf guest-sdk/go/imports guest-sdk/go/exports/wit_exports
	$(TARGET_DIR)/debug/scope-guest-build bindings --lang go --pkg-name scope-wasm/guest-sdk/go --wit wit --out guest-sdk/go

## zoo: the fault zoo into target/zoo/<id>.wasm
zoo: setup
	$(CARGO) build --profile guest --target wasm32-wasip2 $(addprefix -p ,$(ZOO))
	@mkdir -p $(TARGET_DIR)/zoo
	@for g in $(ZOO); do cp $(WASM_OUT)/$$(echo $$g | tr - _).wasm $(TARGET_DIR)/zoo/$$g.wasm; done

## run: serve the bundled plugins (sockets in /var/run/scope/plugins as root, ./scope-plugins otherwise)
run: build guests
	$(TARGET_DIR)/debug/scope-wasm run --plugin-dir $(TARGET_DIR)/plugins --socket-dir $(RUN_SOCKET_DIR) --config config/bundled.toml

## test-tools: Debian's chromium, which draws `scope-wasm dev`'s preview page in its test, stress-ng, which keeps every core busy in the busy-host load test,
## prometheus, whose promtool checks the admin endpoint's /metrics, and docker-registry
## (the CNCF distribution server) for the registry tests, nginx for the HTTP statistics tests
test-tools:
	@command -v chromium >/dev/null || { echo "installing chromium (draws the preview page of scope-wasm dev in its test)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }
	@test -x /usr/sbin/nginx || { echo "installing nginx (a real server for the HTTP statistics tests)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx >/dev/null; }
	@command -v stress-ng >/dev/null || { echo "installing stress-ng (the busy-host load test)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends stress-ng >/dev/null; }
	@command -v promtool >/dev/null || { echo "installing prometheus (promtool checks /metrics)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }
	@test -x /usr/bin/docker-registry || { echo "installing docker-registry (a real OCI registry for the registry tests)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null; }

## test: every test: SDK and daemon unit tests, end-to-end tests against the real binary
## and a private Docker Engine (installed from Debian if missing, started and stopped here)
test: guests zoo test-tools
	$(CARGO) build -p scope-wasm --tests --benches
	SCOPE_WASM_DOCKER_ROOT=$(DOCKER_ROOT) tests/docker/dockerd.sh start
	export SCOPE_WASM_GUESTS=$(TARGET_DIR) SCOPE_WASM_TEST_DOCKER=$(DOCKER_ROOT)/docker.sock; \
	$(CARGO) test && SCOPE_WASM_BENCH_SMOKE=1 $(CARGO) test -p scope-wasm --benches; \
	status=$$?; SCOPE_WASM_DOCKER_ROOT=$(DOCKER_ROOT) tests/docker/dockerd.sh stop; exit $$status

## test-plugins: each bundled plugin against its own fixture and script (guests/<id>/test/),
## with `scope-wasm test` (`make test` runs them too, in tests/plugin_tests.rs)
PLUGIN_TESTS := counter iowait volume-count traffic-control http-statistics
test-plugins: build plugins
	@for g in $(PLUGIN_TESTS); do $(TARGET_DIR)/debug/scope-wasm test $(TARGET_DIR)/plugins/$$g.wasm guests/$$g/test/$$g.test.toml || exit 1; done

## bench: benchmarks (release build), printed as ratios measured in the same run, into docs/benchmarks.md
## (SCOPE_WASM_BENCH_SMOKE=1 for tiny counts; `make test` runs them so)
BENCHES := versus zoo_neighbour hot_plug registry_pull host_calls http_overhead languages compile_options busy_host dev_loop
bench: guests zoo test-tools
	$(CARGO) build --release -p scope-wasm --benches
	SCOPE_WASM_DOCKER_ROOT=$(DOCKER_ROOT) tests/docker/dockerd.sh start
	set -o pipefail; { tests/bench/header.sh; \
	  SCOPE_WASM_GUESTS=$(TARGET_DIR) SCOPE_WASM_TEST_DOCKER=$(DOCKER_ROOT)/docker.sock \
	  $(CARGO) bench -q -p scope-wasm $(addprefix --bench ,$(BENCHES)); } | tee docs/benchmarks.md; \
	status=$$?; SCOPE_WASM_DOCKER_ROOT=$(DOCKER_ROOT) tests/docker/dockerd.sh stop; exit $$status

## fuzz: each cargo-fuzz target in runtime/fuzz for FUZZ_SECONDS (default 60; FUZZ_TARGETS picks some),
## installing the nightly toolchain and cargo-fuzz if missing; a failing input goes to runtime/fuzz/artifacts/
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= report control_response procfs_path docker_path docker_inspect_env traffic_args http_traffic_filter guest_log server_query config_toml
FUZZ_FLAGS ?= --sanitizer none --codegen-units 16 --target-dir fuzz/target
fuzz:
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked
	cd runtime && $(CARGO) +nightly fuzz build $(FUZZ_FLAGS)
	@cd runtime && for t in $(FUZZ_TARGETS); do \
	  log=fuzz/target/$$t.log; echo "fuzz $$t: $(FUZZ_SECONDS) s (log in runtime/$$log)"; \
	  $(CARGO) +nightly fuzz run $(FUZZ_FLAGS) $$t -- -max_total_time=$(FUZZ_SECONDS) -timeout=30 -print_final_stats=1 >$$log 2>&1 \
	    || { tail -40 $$log; exit 1; }; \
	  grep -E 'stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' $$log | sed 's/^/  /'; \
	done

clean:
	$(CARGO) clean
