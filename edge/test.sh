#!/usr/bin/env bash
# Build the Lambda@Edge zip (size-checked) and test it as Lambda runs it:
# the machine's python3 imports the unpacked handler.py and calls it against
# moto and a loopback API stand-in.
set -euo pipefail
cd "$(dirname "$0")/.."
edge/build.sh
echo "==> testing the artifact (python3 edge/test_artifact.py)"
python3 edge/test_artifact.py target/edge/sidekey-edge.zip
