#!/usr/bin/env bash
# Builds the protocol fuzz targets (tests/fuzz/fuzz_proto_*.c: one per decoder, plus the any-type
# decoder and the key-file parser) with clang -fsanitize=fuzzer,address,undefined and runs each for
# a short time from a seed corpus of valid frames (tests/fuzz/proto_seeds.c). Built with clang
# directly, not through CMake, so the fuzz build cannot disturb the main one and needs only the
# proto sources. A crash, leak, sanitizer report or broken property fails the test and leaves the
# input as fuzz-crash-<target>-* in the working directory.
#
# Skips (exit 0, saying so) only when clang is absent. CI runs this twice (plain and sanitized
# ctest), so the default of 3 s per target keeps the fuzzing under 60 s in all.
#   usage: test_fuzz_proto.sh [HYBRID_BINARY] SOURCE_DIR    (ctest passes both; the binary is unused)
#   env:   HY_FUZZ_SECONDS=N  seconds per target (default 3); HY_FUZZ_KEEP=DIR keeps the corpora
set -u
src=${!#}
secs=${HY_FUZZ_SECONDS:-3}
case $secs in
  '' | *[!0-9]* | 0) echo "FAIL: HY_FUZZ_SECONDS must be a positive integer (0 would mean: fuzz forever)"; exit 1 ;;
esac
cc=""
for c in clang clang-16 clang-15 clang-14; do
  if command -v "$c" >/dev/null 2>&1; then cc=$c; break; fi
done
if [ -z "$cc" ]; then
  echo "SKIP: clang not found, protocol fuzz targets not run (bash .ci/install-deps installs clang)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cflags=(-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -I"$src"
        -fsanitize=address,undefined -fno-sanitize-recover=undefined)
libs=(-lmsgpackc -lzmq -lm)

# libFuzzer ships separately from clang on Debian (libclang-rt-dev): a clang that cannot link
# a fuzzer is a broken install, not a reason to skip
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
  'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }' >"$work/probe.c"
if ! "$cc" -fsanitize=fuzzer "$work/probe.c" -o "$work/probe" 2>"$work/probe.err"; then
  echo "FAIL: $cc cannot build libFuzzer targets (Debian: libclang-rt-dev; .ci/install-deps installs it):"
  cat "$work/probe.err"
  exit 1
fi

# Runs the queued build commands in parallel, fails with the first one's errors.
jobs_run() {
  local pids=() i=0 bad=0
  for cmd in "${queue[@]}"; do
    bash -c "$cmd" >"$work/build.$i.log" 2>&1 &
    pids+=($!)
    i=$((i + 1))
  done
  for i in "${!pids[@]}"; do
    if ! wait "${pids[$i]}"; then
      echo "FAIL: ${queue[$i]}"
      cat "$work/build.$i.log"
      bad=1
    fi
  done
  queue=()
  [ $bad -eq 0 ] || exit 1
}
q() { printf -v line '%q ' "$@"; queue+=("$line"); }

echo "building with $($cc --version | head -1)"
queue=()
objs=()
for f in proto/frame.c proto/messages.c proto/keys.c common/hy_error.c; do
  o="$work/$(basename "$f" .c).o"
  q "$cc" "${cflags[@]}" -fsanitize=fuzzer-no-link -c "$src/$f" -o "$o"
  objs+=("$o")
done
jobs_run
q "$cc" "${cflags[@]}" -fsanitize=fuzzer-no-link "$src/tests/fuzz/proto_seeds.c" "${objs[@]}" "${libs[@]}" \
  -o "$work/proto_seeds"
targets=()
for t in "$src"/tests/fuzz/fuzz_proto_*.c; do
  name=$(basename "$t" .c)
  q "$cc" "${cflags[@]}" -fsanitize=fuzzer "$t" "${objs[@]}" "${libs[@]}" -o "$work/$name"
  targets+=("$name")
  mkdir -p "$work/corpus/${name#fuzz_proto_}"
done
jobs_run
ASAN_OPTIONS=detect_leaks=1 "$work/proto_seeds" "$work/corpus" || { echo "FAIL: writing seeds"; exit 1; }

fails=0
total_runs=0
for name in "${targets[@]}"; do
  corpus="$work/corpus/${name#fuzz_proto_}"
  seeds=$(ls "$corpus" | wc -l)
  # -timeout: one input taking a second is a bug here (frames are small); -rss_limit_mb bounds
  # what a decoder may allocate for a fuzz-sized input
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$work/$name" -max_total_time="$secs" -timeout=1 -rss_limit_mb=1024 -max_len=65536 -print_final_stats=1 \
    -artifact_prefix="$work/$name-" "$corpus" >"$work/$name.log" 2>&1
  rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log")
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$work/$name.log" | tail -1)
  total_runs=$((total_runs + ${runs:-0}))
  if [ $rc -ne 0 ]; then
    echo "  FAIL $name (exit $rc): runs ${runs:-?}"
    grep -E 'ERROR|runtime error|property violated|SUMMARY|Test unit written' "$work/$name.log" | head -20
    for a in "$work/$name-"*; do
      [ -e "$a" ] || continue
      kept="fuzz-crash-${a#"$work/"}"
      cp "$a" "$kept" && echo "  kept input: $PWD/$kept (replay: build the target, run it with this file)"
      od -A d -t x1 "$a" | head -8
    done
    fails=$((fails + 1))
  else
    printf '  ok   %-28s %8s runs in %ss from %2d seeds, %s\n' "$name" "${runs:-?}" "$secs" "$seeds" \
      "${cov:-no stats}"
  fi
done
if [ -n "${HY_FUZZ_KEEP:-}" ]; then mkdir -p "$HY_FUZZ_KEEP" && cp -r "$work/corpus/." "$HY_FUZZ_KEEP/"; fi
echo "fuzz: ${#targets[@]} targets, $total_runs inputs, $fails failed"
[ $fails -eq 0 ]
