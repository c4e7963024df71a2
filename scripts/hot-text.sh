#!/usr/bin/env bash
# Writes extension/hot-text.ld, the linker script that places the functions
# the extension executes together at the start of its text (see
# extension/build.rs for why that saves resident memory).
#
#   scripts/hot-text.sh              build the x86_64 layer, train, write
#                                    the script, relink
#   scripts/hot-text.sh --count BIN  how many of the listed functions BIN
#                                    (an unstripped build) defines
#
# The training is `sidekey-bench memory`: a start-up with 10 secrets
# prefetched, then a fresh extension reading 1,000 secrets through its HTTP
# API, each fetched upstream (moto, behind the test proxy, which keeps the
# connection open between calls as AWS's endpoints do). Two tools name
# what it runs: callgrind every function it executes (valgrind's CPU),
# then perf, natively, the function behind each page fault on text outside
# the list (below).
#
# The layer is built with v0 symbol names, and the list keeps them without
# the parts that follow the build's settings (normalize, below): it stays
# valid across edits, dependency changes and both architectures' compilers,
# and goes stale only as hot functions are renamed or added.
# `layer/build.sh` prints how many listed functions its build defines; run
# this again when that falls.
set -euo pipefail
cd "$(dirname "$0")/.."

script="extension/hot-text.ld"

# The function names a linker script lists, one per line.
listed() { sed -n 's/^ *\*(\.text\.\([^ ]*\) .*$/\1/p' "$1" || true; }

# A v0 symbol name as the list keeps it: a glob with the parts that follow
# the build rather than the function made wildcards. Those are the crates'
# disambiguators (C s<hash>_, a hash of each crate's build settings and
# dependencies) and back-references (B<offset>_, positions in the name,
# which move when a disambiguator's length does). What stays names the
# function: its path and, for a generic one, its type arguments.
normalize() { sed -E '/^_R/{ s/Cs[0-9A-Za-z]+_([0-9])/Cs*_\1/g; s/B[0-9A-Za-z]{0,3}_/B*_/g; }'; }

if [ "${1:-}" = "--count" ]; then
  bin="${2:?--count needs a binary}"
  total=$(listed "$script" | wc -l)
  found=$(nm --defined-only "$bin" 2>/dev/null | awk '{ print $3 }' | normalize | sort -u \
    | comm -12 - <(listed "$script" | sort -u) | wc -l)
  echo "$found of $total functions listed in $script are in this build"
  exit 0
fi

source scripts/tools.sh
for tool in valgrind:valgrind perf:linux-perf; do
  command -v "${tool%%:*}" >/dev/null || {
    step "installing ${tool#*:}"
    apt_install --no-install-recommends "${tool#*:}"
  }
done

layer/build.sh x86_64
bin="$PWD/target/lambda/extensions/sidekey"
step "cargo build --profile bench-harness -p sidekey-bench"
cargo build --profile bench-harness -p sidekey-bench

work="target/hot-text"
rm -rf "$work"
mkdir -p "$work/callgrind" "$work/perf"
work="$(cd "$work" && pwd)"
names="$work/names.txt"

# The harness starts `sidekey` from SIDEKEY_BIN_DIR; a wrapper there runs
# the real binary under a tool. Each environment ends with a SHUTDOWN, so
# the extension exits and the tool writes what it saw.
wrapper() { # DIR COMMAND...
  mkdir -p "$1"
  { echo '#!/bin/sh'; echo "exec ${*:2} \"$bin\" \"\$@\""; } > "$1/sidekey"
  chmod +x "$1/sidekey"
}
train() { # WRAPPER-DIR
  SIDEKEY_BIN_DIR="$1" target/bench-harness/sidekey-bench memory
}

write_script() {
  {
    echo "/* Written by scripts/hot-text.sh (do not edit by hand): the functions"
    echo "   a training run of the extension executed (start-up first), which"
    echo "   layer/build.sh links first (extension/build.rs). */"
    echo "SECTIONS"
    echo "{"
    echo "  .text :"
    echo "  {"
    # LLVM puts a function it deems cold in .text.unlikely.NAME.
    sed 's/^.*$/    *(.text.& .text.unlikely.&)/' "$names"
    echo "    *(.text .text.*)"
    echo "  }"
    echo "}"
    # lld's own place for .text: after the read-only data.
    echo "INSERT AFTER .eh_frame;"
  } > "$script"
  echo "$(wc -l < "$names") functions in $script"
}

# 1. callgrind names every function it executes. Three runs: a function
#    that runs only on some interleavings of the two workers is caught by
#    one of them.
wrapper "$work/callgrind/bin" valgrind -q --tool=callgrind --demangle=no \
  --compress-strings=no --dump-instr=no \
  "--callgrind-out-file=$work/callgrind/out.%p"
for run in 1 2 3; do
  step "callgrind run $run of 3"
  train "$work/callgrind/bin"
done
# The dumps oldest first, names in the order first seen; only functions of
# the sidekey binary itself.
# shellcheck disable=SC2046 # the dump files, oldest first
awk '
  /^ob=/ { ours = ($0 ~ /\/sidekey$/) }
  /^fn=/ && ours {
    name = substr($0, 4)
    if (name !~ /^(0x|\()/ && name !~ / / && !(name in seen)) { seen[name] = 1; print name }
  }
' $(ls -tr "$work"/callgrind/out.*) | normalize | awk '!seen[$0]++' > "$names"
write_script
layer/build.sh x86_64

# 2. What valgrind's CPU does not run: it hides CPU features (SHA
#    extensions, say) and runs one thread at a time, so code picked at run
#    time for the real CPU, and contended paths, run only natively. Each
#    page fault on the binary's text names the function that first touched
#    a 64 KiB window outside the listed code: add it, relink, look again.
wrapper "$work/perf/bin" perf record -q -e page-faults -c 1 -d \
  "-o $work/perf/data.\$\$" --
for pass in 1 2 3 4 5; do
  step "perf pass $pass: page faults on the text outside the list"
  rm -f "$work"/perf/data.*
  train "$work/perf/bin"
  # An instruction fetch faults at its own address (addr = ip).
  for data in "$work"/perf/data.*; do
    perf script -i "$data" -F addr,ip,sym,dso --no-demangle 2>/dev/null \
      | awk '$1 == $4 && $6 ~ /\/sidekey\)$/ && $5 != "[unknown]" { print $5 }'
  done | normalize | sort -u | comm -23 - <(sort -u "$names") | grep -vx '_start' > "$work/new.txt" || true
  if [ ! -s "$work/new.txt" ]; then
    echo "none"
    break
  fi
  cat "$work/new.txt"
  cat "$work/new.txt" >> "$names"
  write_script
  layer/build.sh x86_64
done
