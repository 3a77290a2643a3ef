#!/usr/bin/env bash
# `hybrid generate` batch mode (--prompts IN.jsonl --out OUT.jsonl) end to end on tiny models:
# one line per sample in input order with tokens, text, logprobs and finish reason; the start-up
# pool line and the progress line; results independent of how many sequences run at once and
# equal to single mode; per-line overrides; stop strings; and bad lines answered by an "error"
# line naming the line and the field while every other line is still generated (exit status 1).
# Run from the sanitizer build too: no ASan/UBSan report may appear.
#   usage: test_generate_batch.sh HYBRID_BINARY SOURCE_DIR
set -u
hybrid=$1
src=$2
. "$src/tests/lib.sh"
tok=$src/model/tokenizers/dolma2-tokenizer.json

"$hybrid" init --preset tiny --out "$work/m" --seed 3 >/dev/null 2>&1 || { echo "init failed"; exit 1; }
"$hybrid" init --preset tiny-dolma2 --tokenizer "$tok" --out "$work/md" --seed 3 >/dev/null 2>&1 || { echo "init failed"; exit 1; }

echo "batch mode"
printf '{"tokens":[1,2,3,4,5]}\n{"tokens":[9,8]}\n{"tokens":[7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7,7]}\n' >"$work/in.jsonl"
run_ok "3 prompts x 2 samples" "$hybrid" generate --model "$work/m" --prompts "$work/in.jsonl" --out "$work/out.jsonl" \
  --n 2 --max-tokens 6 --seed 11 --temperature 0.9 --top-k 50 --ignore-eos --memory 64MiB --chunk 64
[ "$(wc -l <"$work/out.jsonl")" -eq 6 ] && pass "one line per sample" || { fail "line count"; cat "$work/out.jsonl"; }
grep -q "rollout pool" "$work/err" && grep -q "sequences of" "$work/err" && pass "start-up line says what fits" || { fail "no pool line"; cat "$work/err"; }
grep -q "6/6 sequences done" "$work/err" && grep -q "tok/s" "$work/err" && grep -q "in use" "$work/err" \
  && pass "progress line: sequences, tokens/s, memory" || { fail "progress line"; cat "$work/err"; }
n_ok=$(grep -c '"tokens":\[[0-9]*,[0-9]*,[0-9]*,[0-9]*,[0-9]*,[0-9]*\],"logprobs":\[-[^]]*\],"model_logprobs":\[[^]]*\],"finish_reason":"length"' "$work/out.jsonl")
[ "$n_ok" -eq 6 ] && pass "each line: 6 tokens, logprobs, finish_reason" || { fail "output shape ($n_ok of 6)"; cat "$work/out.jsonl"; }
order=$(sed 's/.*"index":\([0-9]*\),"sample":\([0-9]*\).*/\1.\2/' "$work/out.jsonl" | tr '\n' ' ')
[ "$order" = "0.0 0.1 1.0 1.1 2.0 2.1 " ] && pass "input order (index, sample)" || fail "order: $order"
s0=$(sed -n 1p "$work/out.jsonl" | sed 's/.*"tokens":\(\[[^]]*\]\).*/\1/'); s1=$(sed -n 2p "$work/out.jsonl" | sed 's/.*"tokens":\(\[[^]]*\]\).*/\1/')
[ "$s0" != "$s1" ] && pass "the two samples of a prompt differ (seeds s, s+1)" || fail "samples identical"

run_ok "the same batch one sequence at a time" "$hybrid" generate --model "$work/m" --prompts "$work/in.jsonl" \
  --out "$work/one.jsonl" --n 1 --max-tokens 6 --seed 11 --temperature 0.9 --top-k 50 --ignore-eos --memory 64MiB --chunk 64 --max-seqs 1
run_ok "... and all at once" "$hybrid" generate --model "$work/m" --prompts "$work/in.jsonl" \
  --out "$work/many.jsonl" --n 1 --max-tokens 6 --seed 11 --temperature 0.9 --top-k 50 --ignore-eos --memory 64MiB --chunk 64 --max-seqs 16
cmp -s "$work/one.jsonl" "$work/many.jsonl" && pass "results do not depend on batching" || { fail "batching changed results"; diff "$work/one.jsonl" "$work/many.jsonl" | head; }
"$hybrid" generate --model "$work/m" --tokens 1,2,3,4,5 --max-new-tokens 6 --seed 11 --temperature 0.9 --top-k 50 --ignore-eos --json >"$work/single.json" 2>/dev/null
single=$(sed 's/.*"tokens":\(\[[^]]*\]\).*/\1/' "$work/single.json"); batch0=$(sed -n 1p "$work/one.jsonl" | sed 's/.*"tokens":\(\[[^]]*\]\).*/\1/')
[ "$single" = "$batch0" ] && pass "batch line 0 equals single mode ($single)" || fail "single $single vs batch $batch0"

printf '{"tokens":[1,2,3],"max_tokens":3,"temperature":0}\n{"tokens":[1,2,3],"n":3,"max_tokens":2,"seed":5}\n' >"$work/over.jsonl"
run_ok "per-line overrides" "$hybrid" generate --model "$work/m" --prompts "$work/over.jsonl" --out "$work/over_out.jsonl" --ignore-eos --logprobs 2
[ "$(wc -l <"$work/over_out.jsonl")" -eq 4 ] && grep -q '"index":0,"sample":0' "$work/over_out.jsonl" \
  && sed -n 1p "$work/over_out.jsonl" | grep -q '"tokens":\[[0-9]*,[0-9]*,[0-9]*\]' && pass "n and max_tokens per line" || { fail "overrides"; cat "$work/over_out.jsonl"; }
grep -q '"top_logprobs":\[\[{"id":[0-9]*,"logprob":' "$work/over_out.jsonl" && pass "top alternatives (--logprobs)" || fail "no top_logprobs"

echo "prefix snapshots (--snapshot-memory)"
p20='1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20'
printf '{"tokens":[%s]}\n{"tokens":[%s,21,22,23]}\n{"tokens":[%s]}\n' "$p20" "$p20" "$p20" >"$work/snap.jsonl"
gen_snap=("$hybrid" generate --model "$work/m" --prompts "$work/snap.jsonl" --max-tokens 5 --temperature 0 --ignore-eos --max-seqs 1 --memory 64MiB)
run_ok "without snapshots" "${gen_snap[@]}" --out "$work/snap0.jsonl"
run_ok "with snapshots" "${gen_snap[@]}" --out "$work/snap1.jsonl" --snapshot-memory 16MiB
grep -q "2 prefix snapshot hit(s)" "$work/err" && pass "a longer prompt and a repeated one both start from a snapshot" || { fail "snapshot hits"; cat "$work/err"; }
[ "$(sed -n 1p "$work/snap0.jsonl")" = "$(sed -n 1p "$work/snap1.jsonl")" ] && [ "$(sed -n 3p "$work/snap0.jsonl")" = "$(sed -n 3p "$work/snap1.jsonl")" ] \
  && pass "a whole-prompt hit gives the same bits" || fail "whole-prompt hit changed the result"
[ "$(sed -n 2p "$work/snap0.jsonl" | sed 's/"logprobs.*//')" = "$(sed -n 2p "$work/snap1.jsonl" | sed 's/"logprobs.*//')" ] \
  && pass "a prefix hit gives the same greedy tokens" || fail "prefix hit changed the tokens"
expect_msg --status 1 "--snapshot-memory as a fraction is refused" "snapshot-memory '0.5'" -- "${gen_snap[@]}" --out "$work/x.jsonl" --snapshot-memory 0.5

echo "text, messages and stop strings"
printf '{"text":"Hello"}\n{"messages":[{"role":"user","content":"hi"}]}\n' >"$work/text.jsonl"
run_ok "text and messages prompts" "$hybrid" generate --model "$work/md" --prompts "$work/text.jsonl" --out "$work/text_out.jsonl" --max-tokens 4 --temperature 0 --ignore-eos
grep -c '"text":' "$work/text_out.jsonl" | grep -q 2 && pass "completions carry text" || { fail "no text"; cat "$work/text_out.jsonl"; }
# the greedy continuation's 3rd token, as text, is a stop string that must end the turn by then
third=$(sed -n 1p "$work/text_out.jsonl" | sed 's/.*"tokens":\[\([0-9]*\),\([0-9]*\),\([0-9]*\).*/\3/')
stop=$("$hybrid" tokenize --tokenizer "$tok" --decode "$third" 2>/dev/null)
run_ok "--stop" "$hybrid" generate --model "$work/md" --prompts "$work/text.jsonl" --out "$work/stop_out.jsonl" --max-tokens 4 --temperature 0 --ignore-eos --stop "$stop"
sed -n 1p "$work/stop_out.jsonl" | grep -q '"finish_reason":"stop"' && pass "stop string ends the turn ('$stop')" || { fail "stop string '$stop'"; cat "$work/stop_out.jsonl"; }
n_stop_tokens=$(sed -n 1p "$work/stop_out.jsonl" | sed 's/.*"tokens":\[\([^]]*\)\].*/\1/' | tr ',' '\n' | wc -l)
[ "$n_stop_tokens" -le 3 ] && pass "no token after the stop string ($n_stop_tokens tokens)" || fail "$n_stop_tokens tokens despite stop"

echo "bad lines"
printf '{"tokens":[1,2,3]}\n{"tokens":[1,99999]}\n{"tokens":[]}\n{"tokens":[1,2\n{"tokens":[4,5],"temperature":-1}\n{"tokens":[4,5],"max_tokens":1000000000}\n{"tokens":[4,5],"top_p":0}\n{"tokens":[6,7]}\n' >"$work/bad.jsonl"
"$hybrid" generate --model "$work/m" --prompts "$work/bad.jsonl" --out "$work/bad_out.jsonl" --max-tokens 3 --ignore-eos >"$work/out" 2>"$work/err"
rc=$?
[ $rc -eq 1 ] && no_sanitizer_report "$work/err" && pass "exit status 1, no crash" || { fail "status $rc"; cat "$work/err"; }
[ "$(wc -l <"$work/bad_out.jsonl")" -eq 8 ] && pass "one output line per input line" || { fail "bad line count"; cat "$work/bad_out.jsonl"; }
check_err() {  # line, needles...
  local line=$1; shift
  local text; text=$(sed -n "${line}p" "$work/bad_out.jsonl")
  for n in "$@"; do
    if ! printf '%s' "$text" | grep -qF -- "$n"; then fail "line $line lacks '$n': $text"; return; fi
  done
  pass "line $line: $(printf '%s' "$text" | head -c 150)"
}
check_err 2 '"error"' "bad.jsonl:2" "99999" "outside the vocabulary"
check_err 3 '"error"' "empty prompt"
check_err 4 '"error"' "bad.jsonl:4" "invalid JSON"
check_err 5 '"error"' "temperature"
check_err 6 '"error"' "max_tokens 1000000000" "max_len"
check_err 7 '"error"' "top_p"
sed -n 1p "$work/bad_out.jsonl" | grep -q '"finish_reason":"length"' && sed -n 8p "$work/bad_out.jsonl" | grep -q '"finish_reason":"length"' \
  && pass "good lines around the bad ones are generated" || { fail "good lines"; cat "$work/bad_out.jsonl"; }
grep -q "6 of 8 input line(s) failed" "$work/err" && pass "summary message" || { fail "summary"; cat "$work/err"; }
expect_msg "--prompts without --out" "--out" -- "$hybrid" generate --model "$work/m" --prompts "$work/in.jsonl"
expect_msg "budget too small" "cannot hold one sequence" -- "$hybrid" generate --model "$work/m" --prompts "$work/in.jsonl" --out "$work/x.jsonl" --memory 10KiB
expect_msg "bad --memory" "--memory" -- "$hybrid" generate --model "$work/m" --prompts "$work/in.jsonl" --out "$work/x.jsonl" --memory lots
expect_msg "--n larger than the pool" "n = 8" -- "$hybrid" generate --model "$work/m" --prompts "$work/in.jsonl" --out "$work/x.jsonl" --n 8 --max-seqs 4
expect_msg "stop string without tokenizer" "tokenizer" -- "$hybrid" generate --model "$work/m" --prompts "$work/in.jsonl" --out "$work/x.jsonl" --stop "x"

finish
