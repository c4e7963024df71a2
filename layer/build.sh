#!/usr/bin/env bash
# Builds the sidekey Lambda layer for one architecture:
# target/layer/sidekey-layer-ARCH.zip with extensions/sidekey (0755) at the
# zip root, which Lambda unpacks to /opt/extensions/sidekey and starts as an
# external extension.
#
#   layer/build.sh [x86_64|arm64] [--into DIR]
#       ARCH        x86_64 (default) or arm64
#       --into DIR  also copy extensions/sidekey under DIR (what `sam build`
#                   uses, via layer/Makefile)
#
# Both binaries are linked by `cargo lambda` (zig) against glibc 2.26, the
# target suffix `.2.26`: zig links against stubs of that glibc version, so
# no symbol can bind to a newer version (std's `gettid` and `statx` stay weak
# and unversioned). glibc 2.26 is Amazon Linux 2's, so the layer works on the
# AL2 and the AL2023 runtimes. The build fails if any symbol needs a newer
# glibc.
#
# arm64 without a rustup target: Debian's rustc (`rustc-web`, with
# `libstd-rust-web-dev:arm64`, installed by scripts/tools.sh) compiles, zig
# links. Where the active toolchain already has the aarch64 std (a rustup
# target), that one is used instead.
set -euo pipefail

GLIBC_CEILING="2.26" # Amazon Linux 2 (AL2023 has 2.34)

arch="x86_64"
into=""
while [ $# -gt 0 ]; do
  case "$1" in
    x86_64 | arm64) arch="$1"; shift ;;
    --into) into="${2:?--into needs a directory}"; shift 2 ;;
    *) echo "usage: $0 [x86_64|arm64] [--into DIR]" >&2; exit 2 ;;
  esac
done
# Resolve --into before changing directory.
if [ -n "$into" ]; then
  mkdir -p "$into"
  into="$(cd "$into" && pwd)"
fi

cd "$(dirname "$0")/.."
# The test group's tools (the arm64 toolchain among them), or, for x86_64
# under bench/run.sh, the bench group's: cargo-lambda is all it needs.
if [ "$arch" = x86_64 ] && [ "${SIDEKEY_TOOLS_GROUP:-}" = bench ]; then
  source scripts/tools.sh bench
else
  source scripts/tools.sh test
fi

case "$arch" in
  x86_64)
    triple="x86_64-unknown-linux-gnu"
    # The default lambda dir: scripts/hot-text.sh trains on this build (the
    # benchmarks run its stripped copy under target/layer/stage-x86_64).
    lambda_dir="target/lambda"
    strip_tool="strip"
    ;;
  arm64)
    triple="aarch64-unknown-linux-gnu"
    lambda_dir="target/lambda/arm64"
    strip_tool="aarch64-linux-gnu-strip"
    if [ ! -d "$(rustc --print sysroot)/lib/rustlib/$triple/lib" ]; then
      # Debian's compiler, which has the aarch64 std; rustup's stays first
      # on PATH for everything else. --skip-target-check below keeps cargo
      # lambda from trying `rustup target add` (a download).
      [ -d "/usr/lib/rustlib/$triple/lib" ] && [ -x /usr/bin/cargo ] \
        || { echo "error: no aarch64 Rust std: run scripts/tools.sh (installs rustc-web, libstd-rust-web-dev:arm64)" >&2; exit 1; }
      export RUSTC=/usr/bin/rustc CARGO=/usr/bin/cargo
    fi
    ;;
esac
bin="$lambda_dir/extensions/sidekey"
out="target/layer"
zip_name="sidekey-layer-$arch.zip"
zip_path="$out/$zip_name"

# The hot functions first (extension/build.rs): fewer resident pages.
# Their list names functions by v0 symbol names, which spell out a generic
# function's type arguments where the legacy names carry a hash of the
# build's settings instead (scripts/hot-text.sh).
export SIDEKEY_HOT_TEXT="$PWD/extension/hot-text.ld"
export RUSTFLAGS="${RUSTFLAGS:+$RUSTFLAGS }-C symbol-mangling-version=v0"

step "cargo lambda build --release --extension ($arch, $triple.$GLIBC_CEILING, rustc $("${RUSTC:-rustc}" --version | cut -d' ' -f2))"
started=$(date +%s)
cargo lambda build --release --extension --skip-target-check \
  --target "$triple.$GLIBC_CEILING" --lambda-dir "$lambda_dir" \
  --bin sidekey -p sidekey-extension
build_secs=$(( $(date +%s) - started ))

[ -x "$bin" ] || { echo "error: cargo lambda did not produce $bin" >&2; exit 1; }

step "glibc floor"
floor="$(layer/check.sh --glibc-floor "$bin")"
echo "GLIBC_$floor"

# The build keeps its symbols (Cargo.toml): say how much of the hot-text
# list still names functions of this build. A list gone stale costs
# resident pages, not behaviour: scripts/hot-text.sh writes a new one.
step "hot text"
hot_found="$(scripts/hot-text.sh --count "$bin")"
echo "$hot_found"
read -r hot_n _ hot_total _ <<< "$hot_found"
if [ $(( hot_n * 10 )) -lt $(( hot_total * 9 )) ]; then
  echo "warning: under 90% of the hot-text list is in this build: run scripts/hot-text.sh" >&2
fi

step "packaging $zip_path"
stage="$out/stage-$arch"
rm -rf "$stage" "$zip_path"
mkdir -p "$stage/extensions"
install -m 0755 "$bin" "$stage/extensions/sidekey"
"$strip_tool" --strip-all "$stage/extensions/sidekey"
# A fixed timestamp and no extra attributes (-X) keep the zip reproducible
# for a given binary, so SAM/CloudFormation see no change when nothing changed.
touch -d '2000-01-01T00:00:00Z' "$stage/extensions" "$stage/extensions/sidekey"
(cd "$stage" && zip -q -X -9 -r "../$zip_name" extensions)

if [ -n "$into" ]; then
  mkdir -p "$into/extensions"
  install -m 0755 "$stage/extensions/sidekey" "$into/extensions/sidekey"
  echo "copied extensions/sidekey into $into"
fi

bin_bytes=$(stat -c %s "$stage/extensions/sidekey")
zip_bytes=$(stat -c %s "$zip_path")
step "layer figures ($arch)"
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
printf 'binary size   %s bytes (%s MiB, stripped) %s\n' "$bin_bytes" "$(mib "$bin_bytes")" "$stage/extensions/sidekey"
printf 'hot text      %s\n' "$hot_found"
printf 'zip size      %s bytes (%s MiB) %s\n' "$zip_bytes" "$(mib "$zip_bytes")" "$zip_path"
printf 'glibc floor   GLIBC_%s (ceiling %s)\n' "$floor" "$GLIBC_CEILING"
printf 'build time    %s s\n' "$build_secs"
