#!/usr/bin/env bash
# The one command that runs every test on a fresh machine.
# It installs what it needs (moto's server and the Python tools into a
# virtualenv under target/), then: format check, clippy, the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build --bins (the end-to-end tests run the real binaries)"
cargo build --workspace --bins

step "cargo test (unit + end-to-end: moto, the Lambda simulator, loopback stand-ins)"
cargo test --workspace

step "packaging (layer zip, layer checks, cfn-lint)"
scripts/check-packaging.sh

step "Lambda@Edge zip: build (<= 1 MB) and test the artifact under python3"
edge/test.sh
