# Sourced by the scripts: installs the project's tools into target/tools
# once, and puts them on PATH. Everything comes from PyPI, Debian's packages
# or rustup; nothing is fetched from anywhere else.
TOOLS="$PWD/target/tools"
step() { printf '\n==> %s\n' "$*"; }

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
if [ -n "$missing" ]; then
  step "installing test tools into $TOOLS (missing:$missing)"
  mkdir -p target
  if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian and Ubuntu ship venv's pip bootstrap as a separate package.
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get install -y -qq python3-venv >/dev/null \
      || { $sudo apt-get update -qq && $sudo apt-get install -y -qq python3-venv >/dev/null; }
  fi
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check \
    'moto[server]>=5.1' 'cargo-lambda>=1.8' 'maturin>=1.8' 'cfn-lint>=1.20'
fi
unset missing
export PATH="$TOOLS/bin:$PATH"
export SIDEKEY_MOTO_SERVER="$TOOLS/bin/moto_server"
