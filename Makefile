# The two commands a newcomer needs: `make demo` and `make test`. Both install what is missing
# (the wasm32-wasip2 target; ministack into target/ministack-venv on first use).

WASM := target/wasm32-wasip2/release/s3_election.wasm

# Runtimes and tools this project did not write, installed once under target/tools (a cold
# build of each: wasmtime ~6 min, wac ~2 min on 2 cores). `serve` needs component-model-async
# to compile in wasmtime-cli 48.
TOOLS := target/tools
WASMTIME_CLI := $(TOOLS)/bin/wasmtime
WAC := $(TOOLS)/bin/wac
EDGE_WORKER := target/edge-worker/edge-worker-composed.wasm

.PHONY: demo test test-ceph sim fuzz fuzz-ci mutants component edge-worker serve-edge-worker tools target lint fmt clean-venv

demo: component
	cargo run --quiet -p host-test -- demo

test: component edge-worker $(WASMTIME_CLI)
	cargo build -p host-test
	cargo test --workspace

# Every integration suite again, on Ceph radosgw: a single-host cluster (one monitor, one
# memstore OSD) started and stopped by .ci/ceph.sh. Installing the packages needs root.
CEPH_DIR ?= target/ceph
test-ceph: component edge-worker $(WASMTIME_CLI)
	cargo build -p host-test
	.ci/ceph.sh install
	.ci/ceph.sh start $(CEPH_DIR) || { .ci/ceph.sh stop $(CEPH_DIR); exit 1; }
	. $(CEPH_DIR)/env && cargo test -p s3-election --tests; \
	status=$$?; .ci/ceph.sh stop $(CEPH_DIR); exit $$status

# The example worker (examples/edge-worker) with its election import filled by the component.
edge-worker: component $(WAC)
	cargo build --release --target wasm32-wasip2 --manifest-path examples/edge-worker/Cargo.toml \
		--target-dir target/edge-worker
	$(WAC) plug target/edge-worker/wasm32-wasip2/release/edge_worker.wasm --plug $(WASM) -o $(EDGE_WORKER)
	@ls -l $(EDGE_WORKER) | awk '{printf "edge worker: %s (%d KiB)\n", $$9, $$5/1024}'

# Serve it: set AWS_ENDPOINT_URL_S3, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, S3E_BUCKET and
# S3E_NODE_ID first, then `curl -X POST localhost:8080/tick` and `curl localhost:8080/`.
serve-edge-worker: edge-worker $(WASMTIME_CLI)
	$(WASMTIME_CLI) serve -S cli --addr 127.0.0.1:8080 \
		$(foreach v,AWS_ENDPOINT_URL_S3 AWS_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY S3E_BUCKET S3E_NODE_ID S3E_ELECTION S3E_PREFIX S3E_LEASE_MS S3E_UNQUOTED_ETAGS,$(if $($(v)),--env $(v))) \
		$(EDGE_WORKER)

tools: $(WASMTIME_CLI) $(WAC)

$(WASMTIME_CLI):
	cargo install --locked --quiet --root $(TOOLS) wasmtime-cli@48.0.8 --no-default-features \
		--features run,serve,cranelift,component-model,component-model-async,wasi-http,pooling-allocator,parallel-compilation,clap/default

$(WAC):
	cargo install --locked --quiet --root $(TOOLS) wac-cli@0.12.0 --no-default-features

# A long simulation campaign (CI runs 10,000 schedules in `make test`).
SIM_SEEDS ?= 100000
sim:
	cargo run --quiet -p host-test -- sim --seeds $(SIM_SEEDS)

# Each protocol bug the simulator knows, compiled into the real component and run against the
# real store by the integration test that guards the matching README claim: each must fail.
mutants: component
	cargo build -p host-test
	.ci/mutants.sh

# Coverage-guided fuzzing of the store-facing parsers (tests/fuzz; needs nightly Rust, installs
# cargo-fuzz if missing): a long campaign, and the short one CI runs.
FUZZ_SECONDS ?= 600
fuzz:
	.ci/fuzz.sh $(FUZZ_SECONDS)

fuzz-ci:
	.ci/fuzz.sh 30

# `cargo rustc --crate-type cdylib`, not `cargo build`: with crate-type = ["cdylib", "rlib"],
# cargo silently drops `lto = true` (rust-lang/cargo#9672), and the component grows by ~25 %.
component: target
	cargo rustc --release --target wasm32-wasip2 -p s3-election --lib --crate-type cdylib
	@ls -l $(WASM) | awk '{printf "component: %s (%d KiB)\n", $$9, $$5/1024}'

target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

lint: target
	cargo fmt --all -- --check
	cargo fmt --manifest-path examples/edge-worker/Cargo.toml -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target wasm32-wasip2 -p s3-election --lib -- -D warnings
	cargo clippy --release --target wasm32-wasip2 --manifest-path examples/edge-worker/Cargo.toml \
		--target-dir target/edge-worker -- -D warnings
	node --check examples/jco-node/elector.mjs

fmt:
	cargo fmt --all
	cargo fmt --manifest-path examples/edge-worker/Cargo.toml

clean-venv:
	rm -rf target/ministack-venv
