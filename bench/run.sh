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
source scripts/tools.sh

if [ "${1:-}" = "--fleet" ]; then
  shift
  step "building the benchmark harness (profile bench-harness)"
  cargo build --profile bench-harness -p sidekey-bench
  # The chart's labels need a TrueType font (see below); without it the
  # section is written without its chart.
  step "running the fleet simulation"
  exec target/bench-harness/sidekey-bench fleet "$@"
fi

BENCH_TOOLS="$PWD/target/bench-tools"
if [ ! -x "$BENCH_TOOLS/bin/python" ] || ! "$BENCH_TOOLS/bin/python" -c 'import aws_lambda_powertools, boto3' 2>/dev/null; then
  step "installing the Python baselines (aws-lambda-powertools, boto3) into $BENCH_TOOLS"
  python3 -m venv "$BENCH_TOOLS"
  "$BENCH_TOOLS/bin/pip" install --quiet --disable-pip-version-check 'aws-lambda-powertools>=3' 'boto3>=1.34'
fi
export SIDEKEY_BENCH_PYTHON="$BENCH_TOOLS/bin/python"

# wrk: the load client lighter per request than the servers it measures.
if ! command -v wrk >/dev/null; then
  step "installing wrk (Debian's package)"
  apt_install wrk
fi

# perf: counts the allocator calls per request (uprobes on libc; needs root).
# Optional: without it the report lists that figure as not measured.
if ! command -v perf >/dev/null; then
  step "installing linux-perf (Debian's package), for the allocation counts"
  apt_install linux-perf 2>/dev/null \
    || echo "linux-perf not installed: the allocation counts will be skipped"
fi

# The chart's labels need a TrueType font (plotters renders with ab_glyph).
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] && [ -z "${SIDEKEY_BENCH_FONT:-}" ]; then
  step "installing fonts-dejavu-core (for the chart's labels)"
  apt_install fonts-dejavu-core
fi

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
