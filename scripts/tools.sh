# Sourced by the scripts: installs what one group of commands runs into
# target/tools (once) and puts it on PATH. Everything comes from PyPI, npm,
# Debian's packages or rustup; nothing is fetched from anywhere else.
#
#   source scripts/tools.sh demo    scripts/demo.sh: moto's server (and the
#                                   boto3 it comes with), nothing else
#   source scripts/tools.sh bench   bench/run.sh, scripts/hot-text.sh: the
#                                   demo's, cargo-lambda and maturin (the
#                                   x86_64 layer and the edge zip it
#                                   measures), aws-lambda-powertools (the
#                                   Python baselines), wrk, perf, valgrind
#                                   (instructions per request), a font
#   source scripts/tools.sh test    scripts/test.sh and the packaging:
#                                   everything, the bench's Debian packages
#                                   aside (arm64 toolchain and qemu, the
#                                   runtime interface clients, the SAM CLI,
#                                   cfn-lint, rustfmt and clippy)
#
# The group is always named: sourced without an argument, the file would
# read the sourcing script's own first argument. A script sourced by
# another (layer/build.sh under bench/run.sh) passes on the group it was
# given in SIDEKEY_TOOLS_GROUP, exported here.
#
# One virtualenv for every group: a group adds its packages to what is
# there, so a tree that ran the tests runs the demo with no install.
TOOLS="$PWD/target/tools"
SIDEKEY_TOOLS_GROUP="${1:?scripts/tools.sh needs a group: demo, bench or test}"
case "$SIDEKEY_TOOLS_GROUP" in
  demo | bench | test) export SIDEKEY_TOOLS_GROUP ;;
  *) echo "scripts/tools.sh: unknown group '$SIDEKEY_TOOLS_GROUP' (demo, bench or test)" >&2
     return 2 2>/dev/null || exit 2 ;;
esac
step() { printf '\n==> %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# Install Debian packages (apt-get's arguments), refreshing the package
# index first only if the install fails without it (a fresh image has none).
apt_install() {
  as_root apt-get install -y -qq "$@" >/dev/null \
    || { as_root apt-get update -qq && as_root apt-get install -y -qq "$@" >/dev/null; }
}
# Whether a Debian package is installed (dpkg-query is fast enough to ask
# on every source).
deb_present() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }

case "$SIDEKEY_TOOLS_GROUP" in
  test)
    # Debian packages, installed only when absent:
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
      deb_present "$pkg" || apt_missing="$apt_missing $pkg"
    done
    command -v node >/dev/null && command -v npm >/dev/null || apt_missing="$apt_missing nodejs npm libnode-dev"
    if [ -n "$apt_missing" ]; then
      step "installing Debian packages:$apt_missing"
      dpkg --print-foreign-architectures | grep -qx arm64 || as_root dpkg --add-architecture arm64
      as_root apt-get update -qq
      # shellcheck disable=SC2086 # word splitting is the point
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends $apt_missing >/dev/null
    fi
    unset apt_missing pkg

    # cargo fmt and cargo clippy are rustup components, absent from minimal
    # toolchains.
    if command -v rustup >/dev/null \
       && ! { cargo fmt --version && cargo clippy --version; } >/dev/null 2>&1; then
      step "installing the rustfmt and clippy components"
      rustup component add rustfmt clippy
    fi
    ;;
  bench)
    # wrk: the load client lighter per request than the servers it
    # measures; valgrind: instructions per request (callgrind); zip: the
    # layer; the chart's labels need a TrueType font (plotters renders with
    # ab_glyph).
    apt_missing=""
    for pkg in wrk valgrind zip fonts-dejavu-core; do
      deb_present "$pkg" || apt_missing="$apt_missing $pkg"
    done
    if [ -n "$apt_missing" ]; then
      step "installing Debian packages:$apt_missing"
      # shellcheck disable=SC2086 # word splitting is the point
      DEBIAN_FRONTEND=noninteractive apt_install --no-install-recommends $apt_missing
    fi
    unset apt_missing pkg
    # perf: the allocator calls per request (uprobes on libc; needs root).
    # Optional: without it the report lists that figure as not measured.
    if ! command -v perf >/dev/null; then
      step "installing linux-perf (Debian's package), for the allocation counts"
      apt_install linux-perf 2>/dev/null \
        || echo "linux-perf not installed: the allocation counts will be skipped"
    fi
    ;;
esac

# The group's Python packages, each with what shows it is installed (a
# program in the venv, or a module it imports): a venv left half-made, or
# made by an older version of this file or for a smaller group, is
# completed, not trusted.
venv_packages=("moto_server:moto[server]>=5.1" "import boto3:boto3>=1.34")
case "$SIDEKEY_TOOLS_GROUP" in
  bench | test)
    venv_packages+=("cargo-lambda:cargo-lambda>=1.8" "maturin:maturin>=1.8"
                    "import aws_lambda_powertools:aws-lambda-powertools>=3")
    ;;&
  test)
    # awslambdaric: the Python runtime interface client the examples run under.
    venv_packages+=("cfn-lint:cfn-lint>=1.20" "import awslambdaric:awslambdaric>=3")
    ;;
esac
missing=""
wanted=()
for entry in "${venv_packages[@]}"; do
  probe="${entry%%:*}"
  wanted+=("${entry#*:}")
  case "$probe" in
    "import "*) [ -x "$TOOLS/bin/python" ] && "$TOOLS/bin/python" -c "$probe" 2>/dev/null ;;
    *) [ -x "$TOOLS/bin/$probe" ] ;;
  esac || missing="$missing ${probe#import }"
done
if [ -n "$missing" ]; then
  step "installing the $SIDEKEY_TOOLS_GROUP group's Python tools into $TOOLS (missing:$missing)"
  mkdir -p target
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian and Ubuntu ship venv's pip bootstrap as a separate package.
    apt_install python3-venv
  fi
  [ -x "$TOOLS/bin/pip" ] || python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "${wanted[@]}"
fi
unset missing wanted entry probe venv_packages

if [ "$SIDEKEY_TOOLS_GROUP" = test ]; then
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
  # The runtime interface clients (tests/e2e/platforms.rs), and the Node
  # modules a function's task root holds (the SDK example's).
  export SIDEKEY_NODE_RIC="$NODE_RIC/bin/index.mjs"
  export SIDEKEY_NODE_MODULES="$TOOLS/node/node_modules"
fi

export PATH="$TOOLS/bin:$PATH"
export SIDEKEY_MOTO_SERVER="$TOOLS/bin/moto_server"
# The venv's Python: awslambdaric's (tests/e2e/platforms.rs), boto3's (the
# demo's SDK read), Powertools' (the bench's baselines).
export SIDEKEY_PYTHON="$TOOLS/bin/python"
