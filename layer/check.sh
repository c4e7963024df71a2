#!/usr/bin/env bash
# Checks a built layer zip the way Lambda will see it: unpacked,
# extensions/sidekey must exist with mode 0755, be an ELF64 for the
# architecture, need no glibc symbol version above 2.26 (Amazon Linux 2)
# and no libm, the zip must stay under 4 MB, and the binary must start:
# outside Lambda, a bad configuration must make it print an init error
# naming the variable and exit non-zero (inside Lambda it also reports it
# through /init/error).
# The arm64 binary is started under qemu-user.
#
#   layer/check.sh [x86_64|arm64] [ZIP]   default: x86_64, target/layer/sidekey-layer-ARCH.zip
#   layer/check.sh --glibc-floor BINARY   print the highest GLIBC_x.y BINARY
#                                         references; fail above the ceiling
set -euo pipefail
cd "$(dirname "$0")/.."

GLIBC_CEILING="2.26"  # Amazon Linux 2; AL2023 has 2.34
ZIP_LIMIT=$(( 4 * 1024 * 1024 ))

fail() { echo "layer check FAILED: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

# Highest GLIBC_x.y among the binary's symbol version references (weak ones
# included: a weak versioned reference still needs that version node).
glibc_floor() {
  readelf --version-info --wide "$1" | { grep -o 'GLIBC_[0-9][0-9.]*' || true; } \
    | sed 's/^GLIBC_//' | sort -uV | tail -n 1
}
# version_le A B: true when A <= B.
version_le() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$1" ]; }

checked_floor() {
  local floor
  floor="$(glibc_floor "$1")"
  [ -n "$floor" ] || fail "no GLIBC symbol versions found in $1"
  version_le "$floor" "$GLIBC_CEILING" || {
    # Name the symbols that need more.
    readelf --dyn-syms --wide "$1" | grep -o '[A-Za-z0-9_.]*@GLIBC_[0-9.]*' | sort -u \
      | while read -r sym; do
          version_le "${sym#*@GLIBC_}" "$GLIBC_CEILING" || echo "  needs $sym" >&2
        done
    fail "$1 needs GLIBC_$floor, above $GLIBC_CEILING (Amazon Linux 2)"
  }
  echo "$floor"
}

if [ "${1:-}" = "--glibc-floor" ]; then
  checked_floor "${2:?--glibc-floor needs a binary}"
  exit 0
fi

arch="${1:-x86_64}"
case "$arch" in
  x86_64) machine="Advanced Micro Devices X86-64"; runner=() ;;
  # qemu-user with Debian's multiarch libc6:arm64 (/lib/aarch64-linux-gnu);
  # see scripts/tools.sh for why not `-L /usr/aarch64-linux-gnu`.
  arm64) machine="AArch64"; runner=(qemu-aarch64) ;;
  *) echo "usage: $0 [x86_64|arm64] [ZIP] | --glibc-floor BINARY" >&2; exit 2 ;;
esac
zip_path="${2:-target/layer/sidekey-layer-$arch.zip}"

[ -f "$zip_path" ] || fail "$zip_path not found (run layer/build.sh $arch)"
echo "checking $zip_path ($arch)"

zip_bytes=$(stat -c %s "$zip_path")
[ "$zip_bytes" -lt "$ZIP_LIMIT" ] || fail "zip is $zip_bytes bytes, limit $ZIP_LIMIT"
ok "zip size $zip_bytes bytes < $ZIP_LIMIT"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
unzip -q "$zip_path" -d "$tmp"

# Layout: exactly one file, extensions/sidekey, at the zip root.
entries="$(cd "$tmp" && find . -type f | sed 's|^\./||' | sort)"
[ "$entries" = "extensions/sidekey" ] || fail "unexpected layout: $(echo "$entries" | tr '\n' ' ')"
bin="$tmp/extensions/sidekey"
ok "layout: extensions/sidekey at the zip root"

[ -x "$bin" ] || fail "extensions/sidekey is not executable"
mode="$(stat -c %a "$bin")"
[ "$mode" = "755" ] || fail "extensions/sidekey has mode $mode, want 755"
ok "mode 0755"

# ELF64, little-endian, the architecture's machine (readelf, so it works
# without file(1)).
header="$(readelf -h "$bin")" || fail "extensions/sidekey is not an ELF file"
grep -q 'Class:[[:space:]]*ELF64' <<<"$header" || fail "not ELF64"
grep -q "Machine:[[:space:]]*$machine\$" <<<"$header" \
  || fail "machine is $(grep 'Machine:' <<<"$header" | sed 's/.*Machine:[[:space:]]*//'), want $machine"
ok "ELF64 $machine"

floor="$(checked_floor "$bin")"
ok "glibc floor GLIBC_$floor <= $GLIBC_CEILING"

# No libm.so.6: the binary defines the one math function it calls
# (extension/src/bin/sidekey/math.rs); loading libm would cost every sandbox ~0.45 MiB.
needed="$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')"
[ -n "$needed" ] || fail "no NEEDED libraries found (not a dynamically linked binary?)"
case " $needed" in
  *" libm.so"*) fail "the binary needs libm ($needed): which math symbol is undefined? nm -D --undefined-only" ;;
esac
ok "needs $needed(no libm)"

# Start it with a bad port outside Lambda (no AWS_LAMBDA_RUNTIME_API): it must
# fail fast, on stderr, naming the variable. `env -i` keeps the caller's
# environment (a real AWS_LAMBDA_RUNTIME_API, say) out of it.
if [ ${#runner[@]} -gt 0 ] && ! command -v "${runner[0]}" >/dev/null; then
  fail "${runner[0]} not found (scripts/tools.sh installs qemu-user)"
fi
set +e
env -i PATH=/usr/bin:/bin PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=0 AWS_SESSION_TOKEN=x \
  timeout 30 ${runner[@]+"${runner[@]}"} "$bin" >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
set -e
[ "$rc" -ne 124 ] || fail "the binary did not exit within 30 s on a bad configuration"
[ "$rc" -ne 0 ] || fail "the binary exited 0 with PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=0"
grep -q 'PARAMETERS_SECRETS_EXTENSION_HTTP_PORT' "$tmp/stderr" \
  || fail "init error on stderr does not name PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: $(cat "$tmp/stderr")"
ok "starts${runner[0]:+ under ${runner[*]}}; bad port -> exit $rc, stderr: $(tr -s '\n' ' ' <"$tmp/stderr")"

echo "layer check passed: $zip_path ($arch, GLIBC_$floor, $zip_bytes bytes)"
