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

step "cargo test (unit + end-to-end against moto on loopback)"
cargo test --workspace
