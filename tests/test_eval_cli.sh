#!/usr/bin/env bash
# `hybrid eval` end to end on a tiny random model (CPU): a synthetic task prints the pool, progress
# and summary lines and one JSON line whose pass@1 / pass@k lie in [0, 1]; --out holds one line per
# completion in (index, sample) order and does not change with the pool size; a JSONL task whose
# answers are the words this model itself ends its greedy replies with scores exactly the share of
# lines so rigged (a model guessing could not); bad JSONL tasks (wrong verifier, broken line) fail
# naming file:line and the field; an unbounded task with --prompts 0 fails clearly; --store records
# pass@1 and pass@k in the evaluations table of an existing run (an unknown run name is refused).
# Run from the sanitizer build too: no ASan/UBSan report may appear.
#   usage: test_eval_cli.sh HYBRID_BINARY SOURCE_DIR
set -u
hybrid=$1
src=$2
. "$src/tests/lib.sh"
tok=$src/model/tokenizers/dolma2-tokenizer.json
# json_num FILE KEY: a number field of the one JSON line in FILE
json_num() { sed -n 's/.*"'"$2"'":\([^,}]*\).*/\1/p' "$1"; }
in_unit() { awk -v x="$1" 'BEGIN { exit !(x != "" && x >= 0 && x <= 1) }'; }

"$hybrid" init --preset tiny-dolma2 --tokenizer "$tok" --out "$work/m" --seed 3 >/dev/null 2>&1 || { echo "init failed"; exit 1; }
ev=("$hybrid" eval --model "$work/m" --device cpu --memory 64MiB)

echo "a synthetic task"
run_ok "arithmetic, 3 prompts x 2 samples" "${ev[@]}" --task arithmetic --task-params digits=2 --prompts 3 \
  --samples 2 --temperature 0.8 --top-k 50 --seed 5 --max-tokens 6 --out "$work/out.jsonl"
cp "$work/out" "$work/result.json"
[ "$(wc -l <"$work/result.json")" -eq 1 ] && grep -q '^{"task":"arithmetic:digits=2",.*}$' "$work/result.json" \
  && pass "stdout: one JSON line" || { fail "stdout"; cat "$work/result.json"; }
p1=$(json_num "$work/result.json" pass_at_1); pk=$(json_num "$work/result.json" pass_at_k)
mr=$(json_num "$work/result.json" mean_reward)
in_unit "$p1" && in_unit "$pk" && in_unit "$mr" && awk -v a="$p1" -v b="$pk" 'BEGIN { exit !(b >= a) }' \
  && pass "pass@1 $p1, pass@2 $pk, mean reward $mr in [0, 1], pass@2 >= pass@1" || fail "numbers: $(cat "$work/result.json")"
[ "$(json_num "$work/result.json" n_prompts)" = 3 ] && [ "$(json_num "$work/result.json" k)" = 2 ] \
  && [ "$(json_num "$work/result.json" n_completions)" = 6 ] && [ -n "$(json_num "$work/result.json" tokens_per_s)" ] \
  && pass "n_prompts 3, k 2, n_completions 6, tokens_per_s" || fail "counts: $(cat "$work/result.json")"
grep -qE '^eval arithmetic:digits=2: pass@1 [0-9.]+ \(n=3\), pass@2 [0-9.]+, mean reward [0-9.]+, [0-9.]+ tok/s' "$work/err" \
  && grep -q "rollout pool" "$work/err" && grep -q "3/3 prompts" "$work/err" \
  && pass "stderr: pool line, progress, summary" || { fail "stderr lines"; cat "$work/err"; }

echo "--out"
[ "$(wc -l <"$work/out.jsonl")" -eq 6 ] && pass "prompts x samples = 6 lines" || { fail "line count"; cat "$work/out.jsonl"; }
n_full=$(grep -c '^{"id":"arithmetic:0:[0-2]","index":[0-2],"sample":[01],"prompt":"Compute [^"]*","completion":.*,"answer":"-\?[0-9]*","reward":[01]\.0,"reason":"[^"]' "$work/out.jsonl")
[ "$n_full" -eq 6 ] && pass "each line: id, index, sample, prompt, completion, answer, reward, reason" \
  || { fail "fields ($n_full of 6)"; head -2 "$work/out.jsonl"; }
order=$(sed 's/.*"index":\([0-9]*\),"sample":\([0-9]*\).*/\1.\2/' "$work/out.jsonl" | tr '\n' ' ')
[ "$order" = "0.0 0.1 1.0 1.1 2.0 2.1 " ] && pass "(index, sample) order" || fail "order: $order"
run_ok "one prompt at a time" "${ev[@]}" --task arithmetic --task-params digits=2 --prompts 3 --samples 2 \
  --temperature 0.8 --top-k 50 --seed 5 --max-tokens 6 --out "$work/one.jsonl" --max-seqs 2
cmp -s "$work/out.jsonl" "$work/one.jsonl" && pass "completions do not depend on the pool size" \
  || { fail "pool size changed completions"; diff "$work/out.jsonl" "$work/one.jsonl" | head; }

echo "scoring: answers only this model's own replies contain"
# greedy replies of the model to four prompts, scored by 'exact' (the last word) against an answer
# nothing says; each reason then names the word the verifier read ("got WORD (from last word)")
printf '{"prompt":"%s","answer":"zzzz-never","verifier":"exact"}\n' "Name a colour." "Say hello." \
  "What is the capital of France?" "Count to three." >"$work/probe.jsonl"
run_ok "probe" "${ev[@]}" --task "$work/probe.jsonl" --max-tokens 8 --out "$work/probe_out.jsonl"
[ "$(json_num "$work/out" pass_at_1)" = 0.0 ] && pass "nothing passes against 'zzzz-never'" || fail "probe: $(cat "$work/out")"
# the same prompts with those words as answers, all but the last (which keeps its wrong answer);
# a word the reason may have cut (60 bytes) is not used
rigged=0
: >"$work/rigged.jsonl"
for i in 1 2 3 4; do
  line=$(sed -n "${i}p" "$work/probe_out.jsonl")
  prompt=$(printf '%s' "$line" | sed 's/.*"prompt":"\([^"]*\)".*/\1/')
  word=$(printf '%s' "$line" | sed -n 's/.*"reason":"expected zzzz-never, got \(.*\) (from last word)"}$/\1/p')
  answer=zzzz-never
  if [ "$i" -lt 4 ] && [ -n "$word" ] && [ ${#word} -lt 50 ]; then answer=$word; rigged=$((rigged + 1)); fi
  printf '{"prompt":"%s","answer":"%s","verifier":"exact"}\n' "$prompt" "$answer" >>"$work/rigged.jsonl"
done
if [ $rigged -eq 0 ]; then
  echo "  skip no greedy reply ends in a word"
else
  run_ok "rigged answers" "${ev[@]}" --task "$work/rigged.jsonl" --max-tokens 8
  awk -v got="$(json_num "$work/out" pass_at_1)" -v want="$rigged" 'BEGIN { exit !(got - want / 4 < 1e-6 && want / 4 - got < 1e-6) }' \
    && pass "pass@1 = $rigged/4: exactly the rigged lines pass" || fail "rigged: want $rigged/4, got $(cat "$work/out")"
fi

echo "task files"
printf '{"prompt":"1+1?","answer":"2"}\n' >"$work/noverifier.jsonl"
run_ok "--task-params verifier=math for a file" "${ev[@]}" --task "$work/noverifier.jsonl" --task-params verifier=math --max-tokens 2
grep -q '"task":"noverifier.jsonl","n_prompts":1,' "$work/out" && pass "every line of the file, named by its file" \
  || fail "file task: $(cat "$work/out")"
# a reason quotes the answer cut at 60 bytes, here inside a two-byte character: still a valid line
printf '{"prompt":"Say it.","answer":"x%s","verifier":"exact"}\n' "$(printf 'é%.0s' $(seq 40))" >"$work/utf8.jsonl"
run_ok "non-ASCII answer" "${ev[@]}" --task "$work/utf8.jsonl" --max-tokens 2 --out "$work/utf8_out.jsonl"
grep -q '"reason":"expected x\(é\)*�, got ' "$work/utf8_out.jsonl" && pass "a reason cut inside a character is written repaired" \
  || { fail "reason field"; cat "$work/utf8_out.jsonl"; }
printf '{"prompt":"1+1?","answer":"2","verifier":"math"}\n{"prompt":"2+2?","answer":"4","verifier":"maths"}\n' >"$work/bad.jsonl"
expect_msg "wrong verifier name" "bad.jsonl:2" "field 'verifier'" "maths" -- "${ev[@]}" --task "$work/bad.jsonl"
printf '{"prompt":"1+1?","answer":"2","verifier":"math"}\n{"prompt":"2+2?","answer":"4","verifier":"math"}\n{"prompt": "3+3?", "answer"\n' >"$work/broken.jsonl"
expect_msg "broken line" "broken.jsonl:3" -- "${ev[@]}" --task "$work/broken.jsonl"
printf '{"prompt":"1+1?","verifier":"math"}\n' >"$work/noanswer.jsonl"
expect_msg "missing field" "noanswer.jsonl:1" "field 'answer'" -- "${ev[@]}" --task "$work/noanswer.jsonl"
printf '{"messages":[{"role":"user","content":"1+1?"}],"answer":"2","verifier":"math"}\n' >"$work/msgs.jsonl"
expect_msg "--chat 0 on a messages line" "chat mode" -- "${ev[@]}" --task "$work/msgs.jsonl" --chat 0
expect_msg "indices past the end" "has 1 samples" -- "${ev[@]}" --task "$work/msgs.jsonl" --prompts 2

echo "ranges and names"
expect_msg "unbounded task, --prompts 0" "arithmetic" "unbounded" -- "${ev[@]}" --task arithmetic --prompts 0
expect_msg "unknown task" "unknown task 'arith'" "arithmetic" -- "${ev[@]}" --task arith --prompts 1
expect_msg "bad task parameter" "digits" -- "${ev[@]}" --task arithmetic --task-params digits=99 --prompts 1
expect_msg "--samples beyond the pool" "n = 4" -- "${ev[@]}" --task arithmetic --prompts 1 --samples 4 --max-seqs 2 --temperature 1
expect_msg "bad --memory" "--memory" -- "${ev[@]}" --task arithmetic --prompts 1 --memory lots

echo "--store"
store=$work/s.sqlite
have_sqlite3=0
command -v sqlite3 >/dev/null && have_sqlite3=1
# an existing run: a one-step sft run, evaluated at its step 1
"$hybrid" sft --recipe "$src/recipes/sft-tiny.yaml" --model "$work/m" --data "$src/recipes/data/sft-tiny.jsonl" \
  --out "$work/sft" --save-dir "$work/sft-ck" --steps 1 --device cpu --store "$store" --run-name tiny >/dev/null 2>"$work/err" \
  || { fail "sft for the store"; tail -3 "$work/err"; }
run_ok "eval into run 'tiny'" "${ev[@]}" --task arithmetic --prompts 2 --samples 2 --temperature 1 --max-tokens 4 \
  --store "$store" --run-name tiny --step 1
grep -q "recorded in run 1 of the run store" "$work/err" && pass "names the run" || { fail "store note"; cat "$work/err"; }
if [ $have_sqlite3 = 1 ]; then
  rows=$(sqlite3 "$store" "SELECT run, step, task, metric, n FROM evaluations ORDER BY metric" | tr '\n' ' ')
  [ "$rows" = "1|1|arithmetic|pass@1|2 1|1|arithmetic|pass@2|2 " ] && pass "evaluations rows: pass@1, pass@2 at step 1" \
    || fail "evaluations rows: $rows"
  p1=$(json_num "$work/out" pass_at_1)
  awk -v a="$(sqlite3 "$store" "SELECT value FROM evaluations WHERE metric = 'pass@1'")" -v b="$p1" \
    'BEGIN { exit !(a - b < 1e-6 && b - a < 1e-6) }' && pass "stored pass@1 = printed ($p1)" || fail "stored pass@1"
else
  "$hybrid" report --store "$store" tiny --out "$work/r.html" >/dev/null 2>&1
  grep -q 'pass@2' "$work/r.html" && pass "report lists the evaluations" || fail "report lacks pass@2"
fi
# a run name the store does not hold: refused, naming it (evaluations belong to a training run)
expect_msg "unknown run" "no run 'held-out' to record" -- "${ev[@]}" --task arithmetic --prompts 1 --max-tokens 2 \
  --store "$store" --run-name held-out
mkdir "$work/folder"
expect_msg "store is a folder" "--store" "$work/folder" -- "${ev[@]}" --task arithmetic --prompts 1 --store "$work/folder"

finish
