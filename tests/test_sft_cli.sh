#!/usr/bin/env bash
# `hybrid sft` end to end on tiny models: recipes and --set overrides (and their precedence), the
# example recipes/sft-tiny.yaml, metrics and progress lines, bad recipe keys and values, resume
# through the CLI (bit-identical to the uninterrupted run), refusing other data, a damaged
# checkpoint and an --out directory holding foreign files. Every failure must exit non-zero with a
# message naming the file and the key or field, and (run from the sanitizer build) without any
# ASan/UBSan report.
#   usage: test_sft_cli.sh HYBRID_BINARY SOURCE_DIR
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
run_ok "sft --help" "$hybrid" sft --help
for o in --recipe --set --resume --batch-size --micro-batch-tokens --loss-norm --lr-schedule --warmup-steps --no-decay --save-every "token|sequence"; do
  grep -qF -- "$o" "$work/out" && pass "help lists $o" || fail "help lacks $o"
done

echo "recipes and overrides"
"$hybrid" init --preset tiny --out "$work/m" --seed 4 >/dev/null 2>&1 || fail "init tiny"
{
  for i in 1 2 3 4 5 6 7 8 9; do
    printf '{"tokens":[%d,%d,%d,%d,%d,%d,%d]}\n' $i $((i + 1)) $((i + 2)) $((i * 3)) $((i + 7)) $((i * 5)) 11
  done
  printf '{"tokens":[9,8,7,6,5],"mask":[0,0,1,1,1]}\n'
} >"$work/d.jsonl"
cat >"$work/r.yaml" <<EOF
# test recipe
model: $work/m
data: "$work/d.jsonl"
steps: 4
batch-size: 4
micro-batch-tokens: 16
lr: 1e-2
lr-schedule: linear
warmup-steps: 1
EOF
run_ok "recipe + --set" "$hybrid" sft --recipe "$work/r.yaml" --out "$work/o1" --set lr=5e-3 --set=min-lr-ratio=0.5
[ "$(grep -c '"step"' "$work/out")" -eq 4 ] && pass "steps from the recipe" || fail "expected 4 step lines"
head -1 "$work/out" | grep -qE '^\{"step": 1, "loss": [0-9.e+-]+, "grad_norm": [0-9.e+-]+, "lr": 0.005, "tokens": [0-9]+, "skipped": 0\}$' \
  && pass "metrics line: step, loss, grad_norm, lr (from --set), tokens, skipped" || { fail "metrics line"; head -1 "$work/out"; }
sed -n 4p "$work/out" | grep -q '"lr": 0.0025,' && pass "linear decay to min-lr-ratio (--set=KEY=VALUE form)" || { fail "last lr"; sed -n 4p "$work/out"; }
grep -qE '^step 1/4 \| loss [0-9.]+ \| [0-9]+ tok/s \| lr 5.000e-03 \| ETA ' "$work/err" && pass "progress line on stderr" || { fail "progress line"; grep '^step' "$work/err"; }
grep -q '^lr: 5e-3$' "$work/err" && grep -q '^warmup-steps: 1$' "$work/err" && pass "resolved configuration printed" || fail "resolved configuration not printed"
grep -q '^lr: 5e-3$' "$work/o1/recipe.yaml" && grep -q '^steps: 4$' "$work/o1/recipe.yaml" && pass "resolved configuration stored in the checkpoint" || fail "recipe.yaml in the checkpoint"
run_ok "the stored configuration replays as a recipe" "$hybrid" sft --recipe "$work/o1/recipe.yaml" --out "$work/o1b"
cmp -s "$work/o1/model.safetensors" "$work/o1b/model.safetensors" && pass "replay gives the same weights" || fail "replay differs"
run_ok "command-line option beats the recipe" "$hybrid" sft --recipe "$work/r.yaml" --out "$work/o2" --steps 2
[ "$(grep -c '"step"' "$work/out")" -eq 2 ] && pass "--steps 2 over the recipe's 4" || fail "precedence"
run_ok "--set beats the command line" "$hybrid" sft --recipe "$work/r.yaml" --out "$work/o2" --steps 2 --set steps=1
[ "$(grep -c '"step"' "$work/out")" -eq 1 ] && pass "--set steps=1 over --steps 2" || fail "--set precedence"

echo "the example recipe"
"$hybrid" init --preset tiny-dolma2 --tokenizer "$tok" --out "$work/tm" --seed 2 >/dev/null 2>&1 || fail "init tiny-dolma2"
{
  printf '%s\n' '{"messages":[{"role":"user","content":"What is 2+2?"},{"role":"assistant","content":"4"}]}'
  printf '%s\n' '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Capital of France?"},{"role":"assistant","content":"Paris."}]}'
  printf '%s\n' '{"text":"The quick brown fox jumps over the lazy dog."}'
  printf '%s\n' '{"messages":[{"role":"user","content":"no answer here"}]}'
} >"$work/chat.jsonl"
run_ok "recipes/sft-tiny.yaml" "$hybrid" sft --recipe "$src/recipes/sft-tiny.yaml" --data "$work/chat.jsonl" \
  --set model="$work/tm" --set out="$work/tsft" --set save-dir="$work/nested/not/yet/tck" --set steps=4 --set save-every=2
[ "$(grep -c '"step"' "$work/out")" -eq 4 ] && [ -f "$work/nested/not/yet/tck/step-000002/model.safetensors" ] && [ -f "$work/tsft/tokenizer.json" ] \
  && pass "4 steps, a periodic checkpoint, the tokenizer kept" || fail "example recipe outputs"
grep -q "1 without targets dropped" "$work/err" && pass "a conversation without an assistant turn is dropped" || fail "drop note"
run_ok "the checkpoint scores like a model directory" "$hybrid" score --model "$work/tsft" --input "$work/chat.jsonl" --output "$work/s.jsonl"

echo "bad recipes"
printf 'steps: 2\nlrate: 1e-3\n' >"$work/bad_key.yaml"
expect_msg "unknown key" "bad_key.yaml:2" "unknown key 'lrate'" -- "$hybrid" sft --recipe "$work/bad_key.yaml" --model "$work/m" --data "$work/d.jsonl" --out "$work/x"
printf 'steps: 2\nlr: fast\n' >"$work/bad_value.yaml"
expect_msg "ill-typed value" "bad_value.yaml:2" "'lr'" "expects a number" -- "$hybrid" sft --recipe "$work/bad_value.yaml" --model "$work/m" --data "$work/d.jsonl" --out "$work/x"
printf 'min-lr-ratio: 2\n' >"$work/bad_range.yaml"
expect_msg "value out of range" "bad_range.yaml:1" "'min-lr-ratio'" "outside [0, 1]" -- "$hybrid" sft --recipe "$work/bad_range.yaml" --model "$work/m" --data "$work/d.jsonl" --out "$work/x"
printf 'lr-schedule: exponential\n' >"$work/bad_choice.yaml"
expect_msg "unknown choice" "bad_choice.yaml:1" "constant|linear|cosine" -- "$hybrid" sft --recipe "$work/bad_choice.yaml" --model "$work/m" --data "$work/d.jsonl" --out "$work/x"
printf 'steps: [1, 2]\n' >"$work/bad_list.yaml"
expect_msg "list value" "bad_list.yaml:1" "'steps'" "list" -- "$hybrid" sft --recipe "$work/bad_list.yaml" --model "$work/m" --data "$work/d.jsonl" --out "$work/x"
printf 'steps: 2\n  lr: : 1\n' >"$work/bad_yaml.yaml"
expect_msg "YAML syntax error" "bad_yaml.yaml" "syntax error" -- "$hybrid" sft --recipe "$work/bad_yaml.yaml" --model "$work/m" --data "$work/d.jsonl" --out "$work/x"
printf 'resume: somewhere\n' >"$work/bad_resume.yaml"
expect_msg "resume in a recipe" "bad_resume.yaml:1" "'resume'" -- "$hybrid" sft --recipe "$work/bad_resume.yaml" --model "$work/m" --data "$work/d.jsonl" --out "$work/x"
expect_msg "missing recipe" "nope.yaml" -- "$hybrid" sft --recipe "$work/nope.yaml" --model "$work/m" --data "$work/d.jsonl" --out "$work/x"
expect_msg --status 2 "--set unknown key" "--set 'bogus'" "unknown option" -- "$hybrid" sft --model "$work/m" --data "$work/d.jsonl" --out "$work/x" --set bogus=1
expect_msg --status 2 "--set without =" "KEY=VALUE" -- "$hybrid" sft --model "$work/m" --data "$work/d.jsonl" --out "$work/x" --set lr
expect_msg --status 2 "--set bad value" "--set 'batch-size'" "-3" -- "$hybrid" sft --model "$work/m" --data "$work/d.jsonl" --out "$work/x" --set batch-size=-3
expect_msg "no-decay rule matching nothing" "no-decay rule 'layer_norms'" -- "$hybrid" sft --model "$work/m" --data "$work/d.jsonl" --out "$work/x" --no-decay norm,layer_norms
expect_msg "sequence over the micro-batch budget" "d.jsonl:1" "micro-batch" -- "$hybrid" sft --model "$work/m" --data "$work/d.jsonl" --out "$work/x" --micro-batch-tokens 4
[ ! -e "$work/x" ] && pass "nothing written by failed runs" || fail "a failed run wrote --out"

echo "resume"
common=(--model "$work/m" --data "$work/d.jsonl" --steps 6 --batch-size 4 --micro-batch-tokens 16 --lr 1e-2 --lr-schedule cosine --warmup-steps 2 --seed 7)
run_ok "straight run with checkpoints" "$hybrid" sft "${common[@]}" --out "$work/straight" --save-every 3 --save-dir "$work/ck"
run_ok "resume from step 3" "$hybrid" sft "${common[@]}" --out "$work/resumed" --resume "$work/ck/step-000003"
grep -q "resuming .*step-000003 at step 3" "$work/err" && pass "resume note" || fail "resume note"
[ "$(grep -c '"step"' "$work/out")" -eq 3 ] && head -1 "$work/out" | grep -q '"step": 4,' && pass "continues with step 4" || fail "resumed steps"
same_checkpoint "resumed run is bit-identical to the straight one" "$work/straight" "$work/resumed"
run_ok "resume into the same directory" "$hybrid" sft "${common[@]}" --out "$work/ck/step-000003" --resume "$work/ck/step-000003"
same_checkpoint "in-place resume replaces the checkpoint" "$work/straight" "$work/ck/step-000003"
ls "$work/ck" | grep -qE 'tmp|old' && fail "temporary directories left behind" || pass "no temporary directories left"
printf '{"tokens":[1,2,3,4,5]}\n' >"$work/other.jsonl"
expect_msg "resume on other data" "trainer_state.bin" "data_hash" -- "$hybrid" sft "${common[@]}" --data "$work/other.jsonl" --out "$work/x" --resume "$work/straight"
cp -r "$work/straight" "$work/damaged"
truncate -s 1000 "$work/damaged/optimizer.bin"
expect_msg "truncated optimizer state" "damaged/optimizer.bin" "truncated" "field '" -- "$hybrid" sft "${common[@]}" --out "$work/x" --resume "$work/damaged"
mkdir -p "$work/busy" && echo keep >"$work/busy/notes.txt"
expect_msg "--out holding other files" "notes.txt" "refusing to replace" -- "$hybrid" sft "${common[@]}" --out "$work/busy"
grep -q '"step"' "$work/out" && fail "trained before refusing --out" || pass "refused before training"

finish
