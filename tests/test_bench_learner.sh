#!/usr/bin/env bash
# `hybrid bench learner` on the CPU at smoke size (CI; the real run is on the GPU box): the step row
# with ms, tokens/s and MFU is printed next to the FLOP model and the measured GEMM ceiling; a packed
# batch runs; the peer protocol works with a stand-in peer (one JSON line on stdout → a pytorch row
# and the ratio) and a failing peer leaves our row standing with the peer's stderr tail; bad
# arguments are refused with a message naming the option (exit 2) and impossible runs with a reason
# (exit 1), the 1B default on the CPU among them. Must finish in < 20 s on 2 cores.
#   usage: test_bench_learner.sh HYBRID_BINARY SOURCE_DIR
set -u
hybrid=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export TMPDIR=$work  # where the bench puts the peer's config.json: checked to be removed below
fails=0
pass() { printf '  ok   %s\n' "$1"; }
fail() { printf '  FAIL %s\n' "$1"; fails=$((fails + 1)); }
no_sanitizer_report() { ! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$1"; }
# a row: side, ms/step, tokens/s, TFLOP/s, MFU(meas) %
row_re() { printf '^%s +[0-9.]+ +[0-9]+ +[0-9.e+-]+ +[0-9.]+%%' "$1"; }

echo "smoke run: tiny preset, 64 tokens, one step"
if "$hybrid" bench learner --device cpu --preset tiny --tokens 64 --steps 1 --warmup 0 >"$work/out" 2>"$work/err" &&
  no_sanitizer_report "$work/err"; then pass "exit 0"; else fail "smoke run failed"; cat "$work/err"; fi
grep -qE "$(row_re hybrid)" "$work/out" && pass "hybrid row with ms/step, tokens/s, TFLOP/s, MFU" ||
  { fail "no hybrid row"; cat "$work/out"; }
grep -q '^ceilings (measured now): GEMM 256^3' "$work/out" && pass "GEMM ceiling measured in the run" ||
  fail "no ceilings line"
grep -q '^model FLOPs per token: 6N .* attention 12\*L_attn\*H\*D\*T_ctx .*(T_ctx 32.5)' "$work/out" &&
  pass "FLOP model printed (T_ctx = 65/2 for one 64-token document)" || fail "FLOP model line"
grep -q '^parameters: 234008 ' "$work/out" && pass "parameter count of the tiny preset" || fail "parameter count"
! grep -q '^pytorch' "$work/out" && pass "no peer row without --peers" || fail "peer row without --peers"

echo "packed batch, warm-up"
if "$hybrid" bench learner --device cpu --preset tiny --tokens 96 --docs 4 --steps 2 --warmup 1 >"$work/p" \
  2>"$work/err" && grep -qE "$(row_re hybrid)" "$work/p" && grep -q '4 document(s) of 24' "$work/p"; then
  pass "4 documents of 24 tokens"; else fail "packed run"; cat "$work/err"; fi

echo "peer protocol"
cat >"$work/peer.sh" <<'EOF'
# stand-in peer: checks it got the config and the batch shape, prints one result line
case " $* " in *" --tokens 64 "*"--docs 2 "*"--device cpu "*) ;; *) echo "bad args: $*" >&2; exit 3 ;; esac
cfg=$(echo " $* " | sed -E 's/.* --config ([^ ]+) .*/\1/')
grep -q '"model_type": "olmo_hybrid"' "$cfg" || { echo "no config at $cfg" >&2; exit 4; }
echo 'not json: a warning on stdout'
echo '{"ms_per_step": 1000.0, "tokens_per_s": 64.0, "peak_mem_gb": null, "params": 234008, "kernel_path": "stand-in", "packed": "2 docs", "torch": "0", "transformers": "0", "fla": null, "triton": "0", "device_name": "cpu"}'
EOF
if "$hybrid" bench learner --device cpu --preset tiny --tokens 64 --docs 2 --steps 1 --warmup 0 --python bash \
  --peers "$work/peer.sh" >"$work/o" 2>"$work/e" && no_sanitizer_report "$work/e"; then pass "exit 0 with a peer"
else fail "run with a peer"; cat "$work/e"; fi
grep -qE "$(row_re pytorch)" "$work/o" && grep -q '^hybrid vs pytorch: [0-9.]*x' "$work/o" &&
  pass "pytorch row and the ratio" || { fail "peer row or ratio"; cat "$work/o" "$work/e"; }
printf 'echo "Traceback: no GPU" >&2\nexit 1\n' >"$work/bad.sh"
if "$hybrid" bench learner --device cpu --preset tiny --tokens 64 --steps 1 --warmup 0 --python bash \
  --peers "$work/bad.sh" >"$work/o" 2>"$work/e" && grep -qE "$(row_re hybrid)" "$work/o" &&
  grep -qE '^pytorch +failed' "$work/o" && grep -q 'Traceback: no GPU' "$work/e"; then
  pass "a failing peer: our row stands, its stderr tail is shown"; else fail "failing peer"; cat "$work/o" "$work/e"; fi
ls -d "$work"/hybrid-bench-learner-* >/dev/null 2>&1 && fail "temporary directory left behind" ||
  pass "temporary directory removed"

echo "refusals"
refused() {  # refused NAME STATUS NEEDLE ARGS...: exits with STATUS and says NEEDLE on stderr
  local name=$1 want=$2 needle=$3; shift 3
  "$hybrid" "$@" >"$work/o" 2>"$work/e"
  local got=$?
  if [ "$got" -eq "$want" ] && grep -qF -- "$needle" "$work/e" && no_sanitizer_report "$work/e"; then pass "$name"
  else fail "$name (exit $got, want $want; stderr: $(head -c 300 "$work/e"))"; fi
}
refused "tokens out of range" 2 "--tokens = 1 is outside" bench learner --tokens 1 --preset tiny --device cpu
refused "steps not a number" 2 "--steps expects an integer, got 'x'" bench learner --steps x --preset tiny
refused "unknown option" 2 "unknown option '--batch'" bench learner --batch 3
refused "preset and config together" 2 "give --preset or --config, not both" bench learner --preset tiny --config c.json
refused "too many documents" 1 "every document needs at least 2 tokens" \
  bench learner --preset tiny --device cpu --tokens 64 --docs 40
refused "documents longer than max_position_embeddings" 1 "exceed max_position_embeddings 2048" \
  bench learner --preset tiny --device cpu --tokens 4096
refused "the 1B default on the CPU" 1 "smoke-test here with --preset tiny" bench learner --device cpu
refused "unknown preset" 1 "unknown model preset 'huge'" bench learner --preset huge --device cpu
refused "missing config file" 1 "$work/none.json" bench learner --config "$work/none.json" --device cpu
refused "unknown device" 1 "--device must be cpu, cuda or auto" bench learner --preset tiny --tokens 64 --device tpu
refused "unknown bench" 2 "expected 'kernels', 'rollout', 'learner' or 'sync'" bench nothing

if [ "$fails" -eq 0 ]; then echo "all bench learner checks passed"; else echo "$fails failure(s)"; exit 1; fi
