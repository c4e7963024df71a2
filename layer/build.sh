#!/usr/bin/env bash
# Builds the sidekey Lambda layer: target/layer/sidekey-layer.zip with
# extensions/sidekey (0755) at the zip root, which Lambda unpacks to
# /opt/extensions/sidekey and starts as an external extension.
#
#   layer/build.sh                 build the binary and the zip
#   layer/build.sh --into DIR      also copy extensions/sidekey under DIR
#                                  (what `sam build` uses, via layer/Makefile)
#
# The binary is cross-linked by `cargo lambda` (zig) for x86_64-unknown-linux-gnu
# against an old glibc, so it runs on provided.al2023 (glibc 2.34) whatever the
# build host's glibc is. The build fails if any symbol needs a newer glibc.
set -euo pipefail

GLIBC_CEILING="2.34" # Amazon Linux 2023, the provided.al2023 runtime

into=""
while [ $# -gt 0 ]; do
  case "$1" in
    --into) into="${2:?--into needs a directory}"; shift 2 ;;
    *) echo "usage: $0 [--into DIR]" >&2; exit 2 ;;
  esac
done
# Resolve --into before changing directory.
if [ -n "$into" ]; then
  mkdir -p "$into"
  into="$(cd "$into" && pwd)"
fi

cd "$(dirname "$0")/.."
source scripts/tools.sh

bin="target/lambda/extensions/sidekey"
out="target/layer"
zip_path="$out/sidekey-layer.zip"

step "cargo lambda build --release --extension (x86_64, sidekey)"
started=$(date +%s)
cargo lambda build --release --extension --x86-64 --bin sidekey -p sidekey-extension
build_secs=$(( $(date +%s) - started ))

[ -x "$bin" ] || { echo "error: cargo lambda did not produce $bin" >&2; exit 1; }

# Highest GLIBC_x.y symbol version the binary needs (dynamic symbol versions).
glibc_floor() {
  readelf --version-info --wide "$1" | grep -o 'GLIBC_[0-9][0-9.]*' \
    | sed 's/^GLIBC_//' | sort -uV | tail -n 1
}
# version_le A B: true when A <= B.
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$1" ]; }

step "glibc floor"
floor="$(glibc_floor "$bin")"
[ -n "$floor" ] || { echo "error: no GLIBC symbol versions found in $bin" >&2; exit 1; }
if ! version_le "$floor" "$GLIBC_CEILING"; then
  echo "error: $bin needs GLIBC_$floor, above $GLIBC_CEILING (provided.al2023)" >&2
  exit 1
fi

step "packaging $zip_path"
stage="$out/stage"
rm -rf "$stage" "$zip_path"
mkdir -p "$stage/extensions"
install -m 0755 "$bin" "$stage/extensions/sidekey"
# A fixed timestamp and no extra attributes (-X) keep the zip reproducible
# for a given binary, so SAM/CloudFormation see no change when nothing changed.
touch -d '2000-01-01T00:00:00Z' "$stage/extensions" "$stage/extensions/sidekey"
(cd "$stage" && zip -q -X -9 -r "../sidekey-layer.zip" extensions)

if [ -n "$into" ]; then
  mkdir -p "$into/extensions"
  install -m 0755 "$bin" "$into/extensions/sidekey"
  echo "copied extensions/sidekey into $into"
fi

bin_bytes=$(stat -c %s "$bin")
zip_bytes=$(stat -c %s "$zip_path")
step "layer figures"
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
printf 'binary size   %s bytes (%s MiB, stripped)\n' "$bin_bytes" "$(mib "$bin_bytes")"
printf 'zip size      %s bytes (%s MiB) %s\n' "$zip_bytes" "$(mib "$zip_bytes")" "$zip_path"
printf 'glibc floor   GLIBC_%s (ceiling %s)\n' "$floor" "$GLIBC_CEILING"
printf 'build time    %s s\n' "$build_secs"
