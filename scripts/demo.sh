#!/usr/bin/env bash
# The one command that runs the demo on a fresh machine: installs the tools,
# builds, runs sidekey + the weather function under a Lambda emulator
# against moto and a loopback OpenWeather stand-in, prints what happened,
# and stops everything it started.
#   scripts/demo.sh          everything on loopback
#   scripts/demo.sh --real   real AWS (credentials and region from the
#                            environment, OPENWEATHER_SECRET_ID set) and the
#                            real OpenWeather API
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh
step "building"
cargo build --quiet --workspace --bins
step "running the demo"
exec target/debug/demo "$@"
