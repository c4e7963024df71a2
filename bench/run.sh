#!/usr/bin/env bash
# The benchmark command: builds what it measures, installs what it needs,
# runs the suite against moto on loopback and writes bench/REPORT.md,
# bench/chart.png and bench/results.json.
#
#   bench/run.sh           full run (about 3 minutes after the builds)
#   bench/run.sh --quick   short run: checks the harness, rough figures
#   bench/run.sh --fleet   the fleet simulation only (issues 13 and 30; virtual time, no moto;
#                          8 scenarios x 9 policies x 3 seeds, 210 runs: most of an hour on
#                          2 busy cores): merges its section and bench/fleet.png into
#                          REPORT.md and "fleet" into results.json, leaving the other figures
#                          as they are. After it: --seeds 13,14,15, --threads N, --quick (the
#                          test's reduced fleet), --report-only (the section and chart again
#                          from results.json, e.g. after editing bench/src/fleet/notes.rs)
#
# Benchmarks print figures; nothing here fails on a timing.
set -euo pipefail
cd "$(dirname "$0")/.."
# The bench group: moto, cargo-lambda, maturin, aws-lambda-powertools, wrk,
# valgrind, perf, a font for the charts.
source scripts/tools.sh bench

if [ "${1:-}" = "--fleet" ]; then
  shift
  step "building the benchmark harness (profile bench-harness)"
  cargo build --profile bench-harness -p sidekey-bench
  # The chart's labels need a TrueType font (the bench group installs
  # one); without it the section is written without its chart.
  step "running the fleet simulation"
  exec target/bench-harness/sidekey-bench fleet "$@"
fi

# The Python baselines (aws-lambda-powertools, boto3) run on the tools'
# venv (the bench group of scripts/tools.sh).
export SIDEKEY_BENCH_PYTHON="$SIDEKEY_PYTHON"

# What is measured is what ships: the layer's binary and the edge zip.
if [ ! -x target/layer/stage-x86_64/extensions/sidekey ] || [ ! -f target/layer/sidekey-layer-x86_64.zip ] \
   || [ -n "$(find extension cache aws Cargo.toml Cargo.lock -newer target/layer/sidekey-layer-x86_64.zip -type f | head -n 1)" ]; then
  layer/build.sh x86_64
fi
if [ ! -f target/edge/sidekey-edge.zip ] \
   || [ -n "$(find edge cache aws -newer target/edge/sidekey-edge.zip -type f | head -n 1)" ]; then
  edge/build.sh
fi

step "building the benchmark harness (profile bench-harness)"
cargo build --profile bench-harness -p sidekey-bench

# The stripped binary the zip holds (layer/build.sh).
step "running the benchmarks (sidekey: target/layer/stage-x86_64/extensions/sidekey)"
SIDEKEY_BIN_DIR="$PWD/target/layer/stage-x86_64/extensions" target/bench-harness/sidekey-bench "$@"
