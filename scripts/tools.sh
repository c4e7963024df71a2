# Sourced by the scripts: installs the project's tools into target/tools
# once, and puts them on PATH. Everything comes from PyPI or Debian's
# packages; nothing is fetched from anywhere else.
TOOLS="$PWD/target/tools"
step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$TOOLS/bin/moto_server" ] || [ ! -x "$TOOLS/bin/cargo-lambda" ]; then
  step "installing test tools into $TOOLS (moto server, cargo-lambda, maturin, cfn-lint)"
  mkdir -p target
  python3 -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check \
    'moto[server]>=5.1' 'cargo-lambda>=1.8' 'maturin>=1.8' 'cfn-lint>=1.20'
fi
export PATH="$TOOLS/bin:$PATH"
export SIDEKEY_MOTO_SERVER="$TOOLS/bin/moto_server"
