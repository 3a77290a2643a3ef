#!/usr/bin/env bash
# `hybrid dpo` and `hybrid rl` end to end: the example recipes (recipes/dpo-tiny.yaml,
# recipes/rl-tiny.yaml) on the tiny-dolma2 model, metrics lines with the loss's own fields, the
# reference cache reused on a second run and recomputed when the data changes, resume through the
# CLI (bit-identical to the uninterrupted run), and bad lines named by file:line and field.
#   usage: test_dpo_rl_cli.sh HYBRID_BINARY SOURCE_DIR
set -u
hybrid=$1
src=$2
. "$src/tests/lib.sh"
tok=$src/model/tokenizers/dolma2-tokenizer.json

same_checkpoint() {  # same_checkpoint NAME DIR_A DIR_B
  for f in model.safetensors optimizer.bin trainer_state.bin; do
    if ! cmp -s "$2/$f" "$3/$f"; then fail "$1: $f differs"; return; fi
  done
  pass "$1"
}

echo "help"
run_ok "dpo --help" "$hybrid" dpo --help
for o in --recipe --set --resume --loss "dpo|dpo_norm" --beta --ref-model --ref-cache --micro-batch-tokens; do
  grep -qF -- "$o" "$work/out" && pass "dpo help lists $o" || fail "dpo help lacks $o"
done
run_ok "rl --help" "$hybrid" rl --help
for o in --advantage --clip-low --clip-high --is-cap --kl-coef --stale --max-staleness --loss-norm --ppo-epochs "grpo|drgrpo"; do
  grep -qF -- "$o" "$work/out" && pass "rl help lists $o" || fail "rl help lacks $o"
done

echo "example recipes on tiny-dolma2"
"$hybrid" init --preset tiny-dolma2 --tokenizer "$tok" --out "$work/tm" >/dev/null 2>&1 || fail "init tiny-dolma2"
cd "$src" || exit 1
run_ok "dpo --recipe recipes/dpo-tiny.yaml" "$hybrid" dpo --recipe recipes/dpo-tiny.yaml --model "$work/tm" \
  --out "$work/td" --set steps=2 --set save-every=0
grep -q '"reward_accuracy"' "$work/out" && grep -q '"margin"' "$work/out" && pass "dpo metrics: reward_accuracy, margin" \
  || { fail "dpo metrics"; head -2 "$work/out"; }
head -1 "$work/out" | grep -qE '"loss": 0\.69314[0-9]*' && pass "dpo step 1 loss = log 2" || { fail "dpo first loss"; head -1 "$work/out"; }
run_ok "rl --recipe recipes/rl-tiny.yaml" "$hybrid" rl --recipe recipes/rl-tiny.yaml --model "$work/tm" \
  --out "$work/tr" --set steps=1 --set save-every=0
grep -q '"dropped_groups"' "$work/out" && grep -q '"clip_high_frac"' "$work/out" && grep -q '"mismatch_kl"' "$work/out" \
  && pass "rl metrics: dropped_groups, clip fractions, mismatch_kl" || { fail "rl metrics"; head -2 "$work/out"; }
cd "$work" || exit 1

echo "dpo: reference cache and resume (tiny model)"
"$hybrid" init --preset tiny --out "$work/m" --seed 4 >/dev/null 2>&1 || fail "init tiny"
cat >"$work/p.jsonl" <<EOT
{"prompt_tokens":[1,2,3],"chosen_tokens":[4,5,6],"rejected_tokens":[7,8]}
{"prompt_tokens":[9,10],"chosen_tokens":[11,12],"rejected_tokens":[13,14,15]}
{"prompt_tokens":[20],"chosen_tokens":[21,22,23],"rejected_tokens":[24]}
EOT
dpo=("$hybrid" dpo --model "$work/m" --data "$work/p.jsonl" --batch-size 2 --lr 1e-2 --micro-batch-tokens 16 --loss dpo)
run_ok "dpo 4 steps" "${dpo[@]}" --steps 4 --out "$work/d4" --save-every 2 --save-dir "$work/dck"
grep -q "no cache at" "$work/err" && pass "first run computes the reference" || fail "first run: no 'no cache' line"
run_ok "dpo again, same cache" "${dpo[@]}" --steps 2 --out "$work/d2" --ref-cache "$work/d4.ref-cache"
grep -q "reference logprobs: reusing" "$work/err" && pass "second run reuses the cache" || { fail "second run"; grep reference "$work/err"; }
run_ok "dpo resume from step 2" "${dpo[@]}" --steps 4 --out "$work/d4r" --resume "$work/dck/step-000002" \
  --ref-cache "$work/d4.ref-cache"
grep -q "reference logprobs: reusing" "$work/err" && pass "resume reuses the cache" || { fail "resume cache"; grep reference "$work/err"; }
same_checkpoint "dpo resume == uninterrupted" "$work/d4" "$work/d4r"
echo '{"prompt_tokens":[30],"chosen_tokens":[31],"rejected_tokens":[32]}' >>"$work/p.jsonl"
run_ok "dpo on changed data" "${dpo[@]}" --steps 1 --out "$work/d1" --ref-cache "$work/d4.ref-cache"
grep -q "not reusing the cache" "$work/err" && pass "changed data recomputes" || { fail "changed data"; grep reference "$work/err"; }

echo "rl: resume (tiny model)"
cat >"$work/r.jsonl" <<EOT
{"group":0,"prompt_tokens":[1,2,3],"completion_tokens":[4,5,6],"rollout_logprobs":[-5.5,-5.4,-5.6],"reward":1.0,"weight_version":0}
{"group":0,"prompt_tokens":[1,2,3],"completion_tokens":[7,8,9,10],"generated_mask":[1,1,0,1],"rollout_logprobs":[-5.5,-5.6,null,-5.5],"reward":0.0,"weight_version":0}
{"group":1,"prompt_tokens":[9,10],"completion_tokens":[11,12],"rollout_logprobs":[-5.5,-5.4],"reward":1.0,"versions":[0,1]}
{"group":1,"prompt_tokens":[9,10],"completion_tokens":[13,14,15],"rollout_logprobs":[-5.5,-5.4,-5.5],"reward":0.0,"weight_version":1}
EOT
rl=("$hybrid" rl --model "$work/m" --data "$work/r.jsonl" --batch-size 1 --lr 1e-3 --ppo-epochs 2 --kl-coef 0.01 --max-staleness 1)
run_ok "rl 4 steps" "${rl[@]}" --steps 4 --out "$work/r4" --save-every 2 --save-dir "$work/rck"
[ "$(grep -c '"step"' "$work/out")" -eq 4 ] && pass "rl: 4 metrics lines" || fail "rl metrics lines"
run_ok "rl resume from step 2" "${rl[@]}" --steps 4 --out "$work/r4r" --resume "$work/rck/step-000002" \
  --ref-cache "$work/r4.ref-cache"
same_checkpoint "rl resume == uninterrupted" "$work/r4" "$work/r4r"

echo "bad lines"
sed '2s/"reward":0.0/"reward":"x"/' "$work/r.jsonl" >"$work/bad1.jsonl"
expect_msg "rl: bad reward" "bad1.jsonl:2" "'reward'" -- "$hybrid" rl --model "$work/m" --data "$work/bad1.jsonl" --out "$work/x"
sed '3s/"rollout_logprobs":\[-5.5,-5.4\]/"rollout_logprobs":[-5.5]/' "$work/r.jsonl" >"$work/bad2.jsonl"
expect_msg "rl: short rollout_logprobs" "bad2.jsonl:3" "'rollout_logprobs'" -- "$hybrid" rl --model "$work/m" --data "$work/bad2.jsonl" --out "$work/x"
sed '1s/"generated_mask":\[1,1,0,1\]//' "$work/r.jsonl" | sed '4s/,"weight_version":1//' >"$work/bad3.jsonl"
expect_msg "rl: no version" "bad3.jsonl:4" "'weight_version'" -- "$hybrid" rl --model "$work/m" --data "$work/bad3.jsonl" --out "$work/x"
printf '{"prompt_tokens":[1],"chosen_tokens":[2],"rejected_tokens":[3]}\n{"prompt_tokens":[1],"chosen_tokens":[2,999]}\n' >"$work/bad4.jsonl"
expect_msg "dpo: token out of range" "bad4.jsonl:2" "'chosen_tokens'[1]" -- "$hybrid" dpo --model "$work/m" --data "$work/bad4.jsonl" --out "$work/x"
printf '{"prompt_tokens":[1],"chosen_tokens":[2]}\n' >"$work/bad5.jsonl"
expect_msg "dpo: missing rejected" "bad5.jsonl:1" "'rejected_tokens'" -- "$hybrid" dpo --model "$work/m" --data "$work/bad5.jsonl" --out "$work/x"
expect_msg "dpo: text without a tokenizer" "bad6.jsonl:1" "tokenizer" -- bash -c "echo '{\"prompt\":\"a\",\"chosen\":\"b\",\"rejected\":\"c\"}' >'$work/bad6.jsonl'; '$hybrid' dpo --model '$work/m' --data '$work/bad6.jsonl' --out '$work/x'"

finish
