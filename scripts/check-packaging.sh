#!/usr/bin/env bash
# Packaging checks: build the x86_64 and arm64 layer zips, check each
# (layout, mode, ELF machine, glibc <= 2.26, zip < 4 MB, init error on a bad
# port: arm64 under qemu-user), lint template.yaml with cfn-lint (errors and
# warnings both fail), then run the real `sam build` on it (both layers, the
# weather function, the edge function; offline) and check what it built.
# Prints the figures and the time of each step. Exits non-zero on the first
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/tools.sh test

mkdir -p target/layer
timings=""
timed() { # timed LABEL COMMAND...: run it, remember how long it took
  local label="$1" started=$SECONDS
  shift
  "$@"
  timings="$timings$(printf '%-28s %4d s' "$label" $((SECONDS - started)))"$'\n'
}

build_layer() {
  local arch="$1" log="target/layer/build-$1.log"
  step "layer/build.sh $arch (log: $log)"
  if ! layer/build.sh "$arch" >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "packaging: layer/build.sh $arch failed (full log: $log)" >&2
    exit 1
  fi
  sed -n '/==> layer figures/,$p' "$log"
}

for arch in x86_64 arm64; do
  timed "layer build $arch" build_layer "$arch"
  step "layer/check.sh $arch"
  timed "layer check $arch" layer/check.sh "$arch"
done

cfn_lint() {
  cfn-lint --version
  # cfn-lint exits non-zero on errors (2), warnings (4) and informational
  # findings (8) if any are reported; fail on errors and warnings.
  local lint_rc=0
  cfn-lint --format parseable -- template.yaml || lint_rc=$?
  if [ $(( lint_rc & 6 )) -ne 0 ]; then
    echo "packaging: cfn-lint reported errors or warnings (exit $lint_rc)" >&2
    exit 1
  fi
  if [ "$lint_rc" -ne 0 ] && [ "$lint_rc" -ne 8 ]; then
    echo "packaging: cfn-lint failed (exit $lint_rc)" >&2
    exit 1
  fi
  echo "cfn-lint: no errors, no warnings"
}
step "cfn-lint template.yaml"
timed "cfn-lint" cfn_lint

# The real SAM CLI: every resource is built by its own BuildMethod (the
# layers and the edge function by their Makefiles, the weather function by
# rust-cargolambda, a beta builder) with no manual pre-step. The layer and
# edge builds above/in the test command make their part incremental here.
# No telemetry. Offline: where the machine allows a network namespace of
# our own (root, or user namespaces), the build runs in one with no network
# at all, which proves it fetches nothing (SAM's weekly PyPI version check
# then fails quietly, as it is built to).
sam_build() {
  local out="target/sam-build" log="target/sam-build.log" offline=()
  if unshare -n true 2>/dev/null; then
    offline=(unshare -n)
  elif unshare -r -n true 2>/dev/null; then
    offline=(unshare -r -n)
  fi
  echo "network: ${offline[*]:-"the machine's (no network namespace available)"}"
  rm -rf "$out"
  if ! SAM_CLI_TELEMETRY=0 ${offline[@]+"${offline[@]}"} sam build --beta-features \
      --template template.yaml --build-dir "$out" --cache-dir target/sam-cache >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "packaging: sam build failed (full log: $log)" >&2
    exit 1
  fi
  grep -q 'Build Succeeded' "$log" || { echo "packaging: sam build did not report success ($log)" >&2; exit 1; }
  # What SAM built is what the template deploys: each layer's binary for its
  # machine, the weather bootstrap, the edge handler with its module.
  local want
  for want in SidekeyLayerX86/extensions/sidekey SidekeyLayerArm64/extensions/sidekey \
              WeatherFunction/bootstrap EdgeFunction/handler.py EdgeFunction/config.json; do
    [ -f "$out/$want" ] || { echo "packaging: sam build did not produce $want" >&2; exit 1; }
  done
  ls "$out"/EdgeFunction/sidekey_edge/sidekey_edge*.so >/dev/null \
    || { echo "packaging: sam build's EdgeFunction lacks the sidekey_edge module" >&2; exit 1; }
  cmp -s "$out/SidekeyLayerX86/extensions/sidekey" target/layer/stage-x86_64/extensions/sidekey \
    || { echo "packaging: SidekeyLayerX86 is not the checked x86_64 binary" >&2; exit 1; }
  cmp -s "$out/SidekeyLayerArm64/extensions/sidekey" target/layer/stage-arm64/extensions/sidekey \
    || { echo "packaging: SidekeyLayerArm64 is not the checked arm64 binary" >&2; exit 1; }
  echo "sam build: both layers, WeatherFunction and EdgeFunction built into $out"
}
step "sam build --beta-features (log: target/sam-build.log)"
timed "sam build" sam_build

step "packaging figures"
for arch in x86_64 arm64; do
  sed -n '/==> layer figures/,$p' "target/layer/build-$arch.log" | tail -n +2
done
step "packaging step times"
printf '%s' "$timings"
