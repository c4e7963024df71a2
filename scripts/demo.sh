#!/usr/bin/env bash
# The one command that runs the demo on a fresh machine: installs what the
# demo runs (scripts/tools.sh's demo group: moto's server), builds the three
# binaries it runs, runs sidekey + the weather function under a Lambda
# emulator against moto and a loopback OpenWeather stand-in, reads the
# secret once more with boto3 through sidekey's SDK-compatible endpoint,
# prints what happened, and stops everything it started.
#   scripts/demo.sh          everything on loopback
#   scripts/demo.sh --real   real AWS (credentials and region from the
#                            environment, OPENWEATHER_SECRET_ID set) and the
#                            real OpenWeather API
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh demo
# Only what the demo runs, in the demo profile (Cargo.toml: the dev
# profile without debug info), into target/demo: the test command's
# target/debug is left as it is, and the other way round. Without the
# harness's `sdk` feature: the demo seeds moto with sidekey's own signed
# call, and the AWS SDK for Rust is most of a fresh build.
step "building the demo (sidekey, weather, demo)"
cargo build --quiet --profile demo --no-default-features \
  -p sidekey-extension --bin sidekey \
  -p sidekey-function --bin weather \
  -p sidekey-tests --bin demo
step "running the demo"
exec target/demo/demo "$@"
