#!/usr/bin/env bash
# The one command that runs every test on a fresh machine.
# It installs what it needs (scripts/tools.sh, the test group: Debian packages for arm64 and
# the runtime interface clients, moto's server, the SAM CLI and the Python
# tools into target/tools, aws-lambda-ric from npm), then: format check,
# clippy, the whole suite, the edge artifact, the packaging checks (both
# layers, cfn-lint, sam build), and the end-to-end HTTP API and lifecycle
# tests again with the arm64 layer binary under qemu-user.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh test

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
# The extension over the AWS SDK instead of its SigV4 fetcher (feature aws-sdk): kept building.
cargo clippy -p sidekey-extension --features aws-sdk --all-targets -- -D warnings

step "cargo build --bins (the end-to-end tests run the real binaries)"
cargo build --workspace --bins

step "cargo test (unit + end-to-end: moto, the Lambda simulator, loopback stand-ins)"
cargo test --workspace

step "Lambda@Edge zip: build (<= 1 MB) and test the artifact under python3"
edge/test.sh

step "packaging (x86_64 and arm64 layer zips and their checks, cfn-lint, sam build)"
scripts/check-packaging.sh

# The arm64 layer binary (built and checked above) through the same
# harness: SIDEKEY_BIN_DIR picks it, SIDEKEY_EXTENSION_RUNNER runs it under
# qemu-user (tests/src/lambda.rs). The HTTP API and lifecycle tests, the
# examples under the runtime interface clients, and a machine check that
# proves the binary really is AArch64. The reliability load tests stay
# native: emulation makes them measure qemu.
step "arm64: end-to-end HTTP API and lifecycle tests, the extension under qemu-aarch64"
started=$SECONDS
SIDEKEY_BIN_DIR="$PWD/target/lambda/arm64/extensions" SIDEKEY_EXTENSION_RUNNER=qemu-aarch64 \
  cargo test -p sidekey-tests --test e2e -- \
  extension:: platforms:: \
  reliability::hostile_requests_get_documented_statuses_and_the_process_stays_healthy \
  reliability::the_listener_is_bound_to_loopback_only
echo "arm64 e2e under qemu: $((SECONDS - started)) s"
