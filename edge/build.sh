#!/usr/bin/env bash
# Build the Lambda@Edge package: target/edge/sidekey-edge.zip with
# handler.py, config.json and the sidekey_edge extension module.
#
# The module is a manylinux2014 (glibc 2.17) x86_64 abi3 wheel built by
# maturin with zig as the linker, so it loads on every Python runtime
# Lambda@Edge offers (3.9+, Amazon Linux 2 and 2023). Fails if the zip
# exceeds Lambda@Edge's 1 MB limit for viewer-request functions.
#
#   CONFIG=path/to/config.json edge/build.sh   # bundle another config
set -euo pipefail
cd "$(dirname "$0")/.."

LIMIT=1048576
OUT="$PWD/target/edge"
CONFIG="${CONFIG:-edge/config.json}"

# maturin and ziglang from PyPI: the project's tool venv if the test
# command made one, else a venv of our own.
if [ -x target/tools/bin/maturin ] && target/tools/bin/python -c 'import ziglang' 2>/dev/null; then
  TOOLS="$PWD/target/tools"
else
  TOOLS="$PWD/target/edge-tools"
  if [ ! -x "$TOOLS/bin/maturin" ] || ! "$TOOLS/bin/python" -c 'import ziglang' 2>/dev/null; then
    echo "==> installing maturin and ziglang into $TOOLS"
    python3 -m venv "$TOOLS"
    "$TOOLS/bin/pip" install --quiet --disable-pip-version-check 'maturin>=1.8,<2' ziglang
  fi
fi
export PATH="$TOOLS/bin:$PATH"

echo "==> maturin build (profile edge, manylinux2014 via zig)"
rm -rf "$OUT/wheels"
maturin build --quiet -m edge/python/Cargo.toml --profile edge \
  --target x86_64-unknown-linux-gnu --zig --compatibility manylinux2014 \
  -o "$OUT/wheels"
WHEEL=$(ls "$OUT"/wheels/sidekey_edge-*.whl)

echo "==> packaging $OUT/sidekey-edge.zip"
STAGE="$OUT/package"
rm -rf "$STAGE" "$OUT/sidekey-edge.zip"
mkdir -p "$STAGE"
python3 -m zipfile -e "$WHEEL" "$STAGE/wheel"
mv "$STAGE/wheel/sidekey_edge" "$STAGE/sidekey_edge"
rm -rf "$STAGE/wheel"
cp edge/python/handler.py "$STAGE/handler.py"
cp "$CONFIG" "$STAGE/config.json"
# zip -9 -X: best compression, no extra attributes. Fixed order, so the
# size is reproducible.
(cd "$STAGE" && zip -q -9 -X -r "$OUT/sidekey-edge.zip" handler.py config.json sidekey_edge)

SO=$(stat -c %s "$STAGE"/sidekey_edge/sidekey_edge*.so)
ZIP=$(stat -c %s "$OUT/sidekey-edge.zip")
echo "sidekey_edge .so: $SO bytes"
echo "sidekey-edge.zip: $ZIP bytes (limit $LIMIT)"
if [ "$ZIP" -gt "$LIMIT" ]; then
  echo "FAIL: the zip exceeds Lambda@Edge's 1 MB viewer-request limit" >&2
  exit 1
fi
