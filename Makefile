# The two commands a newcomer needs: `make demo` and `make test`. Both install what is missing
# (the wasm32-wasip2 target; ministack into target/ministack-venv on first use).

WASM := target/wasm32-wasip2/release/s3_election.wasm

.PHONY: demo test test-ceph sim component target lint fmt clean-venv

demo: component
	cargo run --quiet -p host-test -- demo

test: component
	cargo build -p host-test
	cargo test --workspace

# Every integration suite again, on Ceph radosgw: a single-host cluster (one monitor, one
# memstore OSD) started and stopped by .ci/ceph.sh. Installing the packages needs root.
CEPH_DIR ?= target/ceph
test-ceph: component
	cargo build -p host-test
	.ci/ceph.sh install
	.ci/ceph.sh start $(CEPH_DIR)
	. $(CEPH_DIR)/env && cargo test -p s3-election --tests; \
	status=$$?; .ci/ceph.sh stop $(CEPH_DIR); exit $$status

# A long simulation campaign (CI runs 10,000 schedules in `make test`).
SIM_SEEDS ?= 100000
sim:
	cargo run --quiet -p host-test -- sim --seeds $(SIM_SEEDS)

# `cargo rustc --crate-type cdylib`, not `cargo build`: with crate-type = ["cdylib", "rlib"],
# cargo silently drops `lto = true` (rust-lang/cargo#9672), and the component grows by ~25 %.
component: target
	cargo rustc --release --target wasm32-wasip2 -p s3-election --lib --crate-type cdylib
	@ls -l $(WASM) | awk '{printf "component: %s (%d KiB)\n", $$9, $$5/1024}'

target:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2

lint: target
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy --release --target wasm32-wasip2 -p s3-election --lib -- -D warnings

fmt:
	cargo fmt --all

clean-venv:
	rm -rf target/ministack-venv
