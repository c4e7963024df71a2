# Sourced by the scripts: installs the project's tools into target/tools
# once, and puts them on PATH. Everything comes from PyPI, npm, Debian's
# packages or rustup; nothing is fetched from anywhere else.
TOOLS="$PWD/target/tools"
step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# Install Debian packages (apt-get's arguments), refreshing the package
# index first only if the install fails without it (a fresh image has none).
apt_install() {
  as_root apt-get install -y -qq "$@" >/dev/null \
    || { as_root apt-get update -qq && as_root apt-get install -y -qq "$@" >/dev/null; }
}

# Debian packages, installed only when absent (dpkg-query is fast, so this
# runs on every source):
# - arm64: Debian's rustc with the aarch64 std (no rustup target needed;
#   rustup's toolchain stays first on PATH; zig links), qemu-user and
#   Debian's multiarch libc6:arm64 to run the result (layer/build.sh,
#   layer/check.sh, the qemu e2e step). Run it as plain `qemu-aarch64 BIN`:
#   the loader and libc come from /lib/aarch64-linux-gnu. Not with
#   `-L /usr/aarch64-linux-gnu` (libc6-arm64-cross): that prefix supplies
#   the cross package's ld.so, which still finds the multiarch libc through
#   /etc/ld.so.cache, and the two builds' private ABI differ: sidekey hung
#   at startup that way; binutils-aarch64-linux-gnu for the layer's
#   `aarch64-linux-gnu-strip` (a machine without gcc-aarch64-linux-gnu
#   has no other);
# - cmake and the autotools: npm's aws-lambda-ric compiles its native Runtime
#   API client (curl + aws-lambda-cpp) on install;
# - node and npm, where the machine has none.
apt_missing=""
for pkg in rustc-web cargo-web libstd-rust-web-dev:arm64 qemu-user libc6:arm64 \
           binutils-aarch64-linux-gnu \
           cmake autoconf automake libtool make g++ zip unzip; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed' \
    || apt_missing="$apt_missing $pkg"
done
command -v node >/dev/null && command -v npm >/dev/null || apt_missing="$apt_missing nodejs npm libnode-dev"
if [ -n "$apt_missing" ]; then
  step "installing Debian packages:$apt_missing"
  dpkg --print-foreign-architectures | grep -qx arm64 || as_root dpkg --add-architecture arm64
  as_root apt-get update -qq
  # shellcheck disable=SC2086 # word splitting is the point
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends $apt_missing >/dev/null
fi
unset apt_missing

# cargo fmt and cargo clippy are rustup components, absent from minimal
# toolchains.
if command -v rustup >/dev/null \
   && ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
  step "installing the rustfmt and clippy components"
  rustup component add rustfmt clippy
fi

# Every tool the scripts call from the virtualenv: a venv left half-made
# (or made by an older version of this file) is completed, not trusted.
missing=""
for tool in moto_server cargo-lambda maturin cfn-lint; do
  [ -x "$TOOLS/bin/$tool" ] || missing="$missing $tool"
done
# awslambdaric: the Python runtime interface client the examples run under;
# Powertools: the in-process cache the Managed Instances test compares with.
[ -x "$TOOLS/bin/python" ] && "$TOOLS/bin/python" -c 'import awslambdaric, aws_lambda_powertools' 2>/dev/null \
  || missing="$missing awslambdaric aws-lambda-powertools"
if [ -n "$missing" ]; then
  step "installing test tools into $TOOLS (missing:$missing)"
  mkdir -p target
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian and Ubuntu ship venv's pip bootstrap as a separate package.
    apt_install python3-venv
  fi
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check \
    'moto[server]>=5.1' 'boto3>=1.34' 'cargo-lambda>=1.8' 'maturin>=1.8' 'cfn-lint>=1.20' \
    'awslambdaric>=3' 'aws-lambda-powertools>=3'
fi
unset missing

# The SAM CLI in a virtualenv of its own: it pins boto3, Flask and jsonschema
# ranges of its own, which must not move moto's.
if [ ! -x "$TOOLS/sam/bin/sam" ]; then
  step "installing the SAM CLI into $TOOLS/sam"
  python3 -m venv "$TOOLS/sam"
  "$TOOLS/sam/bin/pip" install --quiet --disable-pip-version-check 'aws-sam-cli>=1.120'
fi
mkdir -p "$TOOLS/bin"
ln -sf "$TOOLS/sam/bin/sam" "$TOOLS/bin/sam"

# npm's aws-lambda-ric (the Node.js runtime interface client) for the Node
# examples, and the AWS SDK for JavaScript v3's Secrets Manager and SSM
# clients (which the Node.js runtimes ship) for the SDK example and the
# SDK-compatible endpoint's tests. aws-lambda-ric version 3: 4.x needs Node
# 22. Its install script builds a native addon (allowed by name: npm 11
# skips unlisted install scripts); node-gyp takes the headers from the
# installed Node (nodedir) rather than downloading them.
NODE_RIC="$TOOLS/node/node_modules/aws-lambda-ric"
NODE_SDK="$TOOLS/node/node_modules/@aws-sdk/client-ssm/package.json"
if [ ! -f "$NODE_RIC/dist/rapid-client.node" ] || [ ! -f "$NODE_SDK" ]; then
  step "installing aws-lambda-ric and the AWS SDK for JavaScript v3 into $TOOLS/node"
  mkdir -p "$TOOLS/node"
  cat >"$TOOLS/node/package.json" <<'JSON'
{
  "private": true,
  "dependencies": {
    "aws-lambda-ric": "~3.3.0",
    "@aws-sdk/client-secrets-manager": "^3.600.0",
    "@aws-sdk/client-ssm": "^3.600.0"
  },
  "allowScripts": { "aws-lambda-ric": true }
}
JSON
  nodedir="$(dirname "$(dirname "$(command -v node)")")"
  [ -f "$nodedir/include/node/node_api.h" ] || nodedir=/usr
  (cd "$TOOLS/node" && npm_config_nodedir="$nodedir" npm install --no-audit --no-fund --loglevel=error >/dev/null)
  [ -f "$NODE_RIC/dist/rapid-client.node" ] || { echo "aws-lambda-ric: the native client was not built" >&2; return 1 2>/dev/null || exit 1; }
  unset nodedir
fi
unset NODE_SDK

export PATH="$TOOLS/bin:$PATH"
export SIDEKEY_MOTO_SERVER="$TOOLS/bin/moto_server"
# The runtime interface clients (tests/e2e/platforms.rs), and the Node
# modules a function's task root holds (the SDK example's).
export SIDEKEY_PYTHON="$TOOLS/bin/python"
export SIDEKEY_NODE_RIC="$NODE_RIC/bin/index.mjs"
export SIDEKEY_NODE_MODULES="$TOOLS/node/node_modules"
