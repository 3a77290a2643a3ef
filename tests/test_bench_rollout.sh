#!/usr/bin/env bash
# `hybrid bench rollout` on the CPU, at smoke scale (CI; the real run is on the GPU box): every
# workload prints its rows with a ceiling and a %; progress goes to stderr; the agreement rows show
# the engine and the full-sequence forward agreeing to fp32 rounding on the CPU (where both are
# fp32, |dlogp| ~1e-7: 1e-3 would still catch a logprob compared at the wrong position, which is
# off by whole nats); a loaded model directory works as well as a preset; bad arguments are
# refused with a message naming the option (exit 2) and impossible runs with a reason (exit 1) —
# the 7B on the CPU among them, before anything is built. Must finish in < 30 s on 2 cores.
#   usage: test_bench_rollout.sh HYBRID_BINARY SOURCE_DIR
set -u
hybrid=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
pass() { printf '  ok   %s\n' "$1"; }
fail() { printf '  FAIL %s\n' "$1"; fails=$((fails + 1)); }
no_sanitizer_report() { ! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$1"; }

echo "smoke run: all workloads, tiny preset, scale 0.01"
if "$hybrid" bench rollout --preset tiny --scale 0.01 --workload all --device cpu >"$work/out" 2>"$work/err" &&
  no_sanitizer_report "$work/err"; then pass "exit 0"; else fail "smoke run failed"; cat "$work/err"; fi
grep -q '^ceilings (measured now' "$work/out" && grep -q '^ceiling model:' "$work/out" &&
  pass "measured ceilings and the ceiling model are printed" || fail "no ceilings header"
for row in 'serving +[0-9]' 'serving ITL' 'serving TTFT' 'grpo +[0-9]' 'grpo ITL' 'agentic +[0-9]' 'agentic ITL' \
  'agentic TTFT'; do
  # a row: name, shape, ms, rate, a percentage of its ceiling, the ceiling
  if grep -E "^${row}" "$work/out" | grep -qE '[0-9.]+%  +[0-9.]+'; then pass "row '${row% +*}' with ms, rate, % of ceiling"
  else fail "row '${row% +*}' missing or without a ceiling"; fi
done
grep -E '^serving +[0-9]' "$work/out" | grep -q 'tok/s' && pass "serving reports output tok/s" || fail "serving tok/s"
n_agree=$(awk '/^total +prompt +generated/ {on=1; next} on && NF == 8 && $1 ~ /^[0-9]+$/' "$work/out" | wc -l)
[ "$n_agree" -eq 3 ] && pass "agreement rows at 3 lengths" || { fail "agreement rows ($n_agree of 3)"; cat "$work/out"; }
worst=$(awk '/^total +prompt +generated/ {on=1; next} on && NF == 8 && $1 ~ /^[0-9]+$/ {if ($5 > m) m = $5} END {print m + 0}' "$work/out")
awk -v w="$worst" 'BEGIN {exit !(w < 1e-3)}' && pass "CPU engine vs full forward: max |dlogp| $worst < 1e-3" ||
  fail "CPU agreement max |dlogp| $worst"
grep -q 'serving 5/5 done' "$work/err" && grep -q 'tok/s generated' "$work/err" &&
  pass "progress on stderr (sequences done, tok/s)" || { fail "progress line"; cat "$work/err"; }

echo "one workload, a model directory"
"$hybrid" init --preset tiny --out "$work/m" --seed 4 >/dev/null 2>&1 || { echo "init failed"; exit 1; }
if "$hybrid" bench rollout --model "$work/m" --workload agreement --scale 0.01 --device cpu >"$work/one" 2>"$work/err" &&
  no_sanitizer_report "$work/err"; then pass "--model DIR --workload agreement"; else fail "--model run"; cat "$work/err"; fi
grep -q 'loaded weights' "$work/one" && ! grep -qE '^(serving|grpo|agentic)' "$work/one" &&
  pass "only the agreement table, of the loaded model" || { fail "workload selection"; cat "$work/one"; }

echo "refusals"
refused() {  # refused NAME STATUS NEEDLE ARGS...: exits with STATUS and says NEEDLE on stderr
  local name=$1 want=$2 needle=$3; shift 3
  "$hybrid" "$@" >"$work/o" 2>"$work/e"
  local got=$?
  if [ "$got" -eq "$want" ] && grep -qF -- "$needle" "$work/e" && no_sanitizer_report "$work/e"; then pass "$name"
  else fail "$name (exit $got, want $want; stderr: $(head -c 300 "$work/e"))"; fi
}
refused "unknown workload" 2 "--workload 'bogus': expected serving, grpo, agentic, agreement or all" \
  bench rollout --workload bogus --preset tiny --device cpu
refused "scale out of range" 2 "--scale = 0 is outside" bench rollout --scale 0 --preset tiny --device cpu
refused "count-scale not a number" 2 "--count-scale expects a number" bench rollout --count-scale x --preset tiny
refused "preset and model together" 2 "give --preset or --model, not both" bench rollout --preset tiny --model "$work/m"
refused "unknown option" 2 "unknown option '--prompts'" bench rollout --prompts 3
refused "the 7B on the CPU (the default preset)" 1 "smoke-test here with --preset tiny" bench rollout --device cpu
refused "the 7B on the CPU (named)" 1 "CPU reference backend would take hours" bench rollout --preset olmo-hybrid-7b --device cpu
refused "unknown preset" 1 "unknown model preset 'huge'" bench rollout --preset huge --device cpu
refused "bad --memory" 1 "--memory 'lots'" bench rollout --preset tiny --device cpu --memory lots
refused "pool too small" 1 "cannot hold one sequence" bench rollout --preset tiny --device cpu --memory 1KiB --workload serving
refused "unknown bench" 2 "expected 'kernels', 'rollout'" bench nothing

if [ "$fails" -eq 0 ]; then echo "all bench rollout checks passed"; else echo "$fails failure(s)"; exit 1; fi
