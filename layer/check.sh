#!/usr/bin/env bash
# Checks a built layer zip (default target/layer/sidekey-layer.zip) the way
# Lambda will see it: unpacked, extensions/sidekey must exist, be executable,
# be an x86-64 ELF needing glibc <= 2.34, and start. Outside Lambda, a bad
# configuration must make it print an init error naming the variable and
# exit non-zero (inside Lambda it also reports it through /init/error).
#
#   layer/check.sh [ZIP]
set -euo pipefail
cd "$(dirname "$0")/.."

GLIBC_CEILING="2.34"
zip_path="${1:-target/layer/sidekey-layer.zip}"
fail() { echo "layer check FAILED: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

[ -f "$zip_path" ] || fail "$zip_path not found (run layer/build.sh)"

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

# ELF64, little-endian, machine x86-64 (readelf, so it works without file(1)).
header="$(readelf -h "$bin")" || fail "extensions/sidekey is not an ELF file"
grep -q 'Class:[[:space:]]*ELF64' <<<"$header" || fail "not ELF64"
grep -q 'Machine:[[:space:]]*Advanced Micro Devices X86-64' <<<"$header" || fail "not x86-64"
ok "ELF64 x86-64"

floor="$(readelf --version-info --wide "$bin" | grep -o 'GLIBC_[0-9][0-9.]*' \
  | sed 's/^GLIBC_//' | sort -uV | tail -n 1)"
[ -n "$floor" ] || fail "no GLIBC symbol versions found"
lowest="$(printf '%s\n%s\n' "$floor" "$GLIBC_CEILING" | sort -V | head -n 1)"
[ "$lowest" = "$floor" ] || fail "needs GLIBC_$floor, above $GLIBC_CEILING (provided.al2023)"
ok "glibc floor GLIBC_$floor <= $GLIBC_CEILING"

# Start it with a bad port outside Lambda (no AWS_LAMBDA_RUNTIME_API): it must
# fail fast, on stderr, naming the variable. `env -i` keeps the caller's
# environment (a real AWS_LAMBDA_RUNTIME_API, say) out of it.
set +e
env -i PATH=/usr/bin:/bin PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=0 AWS_SESSION_TOKEN=x \
  timeout 10 "$bin" >"$tmp/stdout" 2>"$tmp/stderr"
rc=$?
set -e
[ "$rc" -ne 124 ] || fail "the binary did not exit within 10 s on a bad configuration"
[ "$rc" -ne 0 ] || fail "the binary exited 0 with PARAMETERS_SECRETS_EXTENSION_HTTP_PORT=0"
grep -q 'PARAMETERS_SECRETS_EXTENSION_HTTP_PORT' "$tmp/stderr" \
  || fail "init error on stderr does not name PARAMETERS_SECRETS_EXTENSION_HTTP_PORT: $(cat "$tmp/stderr")"
ok "starts; bad port -> exit $rc, stderr: $(tr -s '\n' ' ' <"$tmp/stderr")"

echo "layer check passed: $zip_path"
