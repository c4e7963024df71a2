#!/usr/bin/env bash
# Packaging checks: build the layer zip, check it (layout, mode, x86-64 ELF,
# glibc <= 2.34, init error on a bad port), and lint template.yaml with
# cfn-lint (errors and warnings both fail). Prints the layer's figures.
# Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh

log="target/layer/build.log"
mkdir -p target/layer

step "layer/build.sh (log: $log)"
if ! layer/build.sh >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "packaging: layer/build.sh failed (full log: $log)" >&2
  exit 1
fi

step "layer/check.sh"
layer/check.sh

step "cfn-lint template.yaml"
cfn-lint --version
# cfn-lint exits non-zero on errors (2), warnings (4) and informational
# findings (8) if any are reported; fail on errors and warnings.
set +e
cfn-lint --format parseable -- template.yaml
lint_rc=$?
set -e
if [ $(( lint_rc & 6 )) -ne 0 ]; then
  echo "packaging: cfn-lint reported errors or warnings (exit $lint_rc)" >&2
  exit 1
fi
if [ "$lint_rc" -ne 0 ] && [ "$lint_rc" -ne 8 ]; then
  echo "packaging: cfn-lint failed (exit $lint_rc)" >&2
  exit 1
fi
echo "cfn-lint: no errors, no warnings"

step "packaging figures"
sed -n '/==> layer figures/,$p' "$log" | tail -n +2
