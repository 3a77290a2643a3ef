#!/usr/bin/env bash
# The hybrid CLI end to end on a tiny model made by `hybrid init`: every subcommand's --help, the
# happy paths (init → score / generate / sft / tokenize), and every bad input the foundation issue
# lists — each must exit non-zero with a message naming the file, field or line and the problem,
# and (run from the sanitizer build) without any ASan/UBSan report.
#   usage: test_cli.sh HYBRID_BINARY SOURCE_DIR
set -u
hybrid=$1
src=$2
. "$src/tests/lib.sh"
tok=$src/model/tokenizers/dolma2-tokenizer.json

echo "help"
for c in init generate score sft tokenize; do run_ok "hybrid $c --help" "$hybrid" "$c" --help; done
expect_msg --status 2 "unknown command" "unknown command" -- "$hybrid" frobnicate
expect_msg --status 2 "unknown option" "unknown option '--bogus'" -- "$hybrid" score --bogus 1

echo "happy paths"
run_ok "init tiny" "$hybrid" init --preset tiny --out "$work/m" --seed 3
run_ok "init tiny-dolma2 with tokenizer" "$hybrid" init --preset tiny-dolma2 --tokenizer "$tok" --out "$work/md" --seed 3
printf '{"tokens":[1,2,3,4,5]}\n\n{"tokens":[9,8]}\n' >"$work/in.jsonl"
run_ok "score tokens" "$hybrid" score --model "$work/m" --input "$work/in.jsonl" --output "$work/out.jsonl"
[ "$(wc -l <"$work/out.jsonl")" -eq 2 ] && pass "score writes one line per input line" || fail "score line count"
grep -q '"tokens":\[1,2,3,4,5\],"logprobs":\[-[0-9.e-]*,-[0-9.e-]*,-[0-9.e-]*,-[0-9.e-]*\]' "$work/out.jsonl" \
  && pass "score output shape (4 negative logprobs for 5 tokens)" || { fail "score output shape"; cat "$work/out.jsonl"; }
printf '{"text":"Hello world"}\n{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"hello"}]}\n' >"$work/text.jsonl"
run_ok "score text and messages" "$hybrid" score --model "$work/md" --input "$work/text.jsonl" --output "$work/text_out.jsonl"
run_ok "generate --tokens" "$hybrid" generate --model "$work/m" --tokens 1,2,3 --max-new-tokens 8 --seed 5 --json
cp "$work/out" "$work/gen1"
"$hybrid" generate --model "$work/m" --tokens 1,2,3 --max-new-tokens 8 --seed 5 --json >"$work/gen2" 2>/dev/null
cmp -s "$work/gen1" "$work/gen2" && pass "generate: same seed, same tokens" || fail "generate not deterministic"
run_ok "generate --prompt" "$hybrid" generate --model "$work/md" --prompt "Hello" --max-new-tokens 4 --top-k 5 --top-p 0.9 --temperature 0.7
# the model has 100352 embedding rows, the tokenizer 100278 tokens: a near-uniform sample (this seed
# draws one such padding id) must still print its text, without the id
run_ok "generate: ids beyond the tokenizer" "$hybrid" generate --model "$work/md" --tokens 1,2 --max-new-tokens 200 --temperature 50 --seed 1 --ignore-eos
grep -q "have no text" "$work/err" && pass "generate notes ids without text" || fail "generate drew no padding id (seed no longer exercises it)"
printf '{"tokens":[1,2,3,4,5,6,7,8]}\n{"tokens":[5,4,3]}\n' >"$work/sft.jsonl"
run_ok "sft 3 steps" "$hybrid" sft --model "$work/m" --data "$work/sft.jsonl" --out "$work/m2" --steps 3 --lr 1e-2
[ "$(grep -c '"step"' "$work/out")" -eq 3 ] && pass "sft prints one JSON line per step" || { fail "sft step lines"; cat "$work/out"; }
l1=$(sed -n 1p "$work/out" | sed 's/.*"loss": \([^,]*\),.*/\1/'); l3=$(sed -n 3p "$work/out" | sed 's/.*"loss": \([^,]*\),.*/\1/')
awk -v a="$l1" -v b="$l3" 'BEGIN { exit !(b < a) }' && pass "sft loss decreases ($l1 -> $l3)" || fail "sft loss did not decrease ($l1 -> $l3)"
run_ok "score the sft output" "$hybrid" score --model "$work/m2" --input "$work/in.jsonl" --output "$work/out2.jsonl"
run_ok "tokenize text" "$hybrid" tokenize --tokenizer "$tok" --text "Hello world"
[ "$(cat "$work/out")" = "9906 1917" ] && pass "tokenize ids" || fail "tokenize ids: $(cat "$work/out")"
run_ok "tokenize decode" "$hybrid" tokenize --tokenizer "$tok" --decode 9906,1917
[ "$(cat "$work/out")" = "Hello world" ] && pass "decode text" || fail "decode text: $(cat "$work/out")"
run_ok "tokenize messages" "$hybrid" tokenize --tokenizer "$tok" --messages '[{"role":"user","content":"hi"}]' --generation-prompt --json

echo "bad input"
printf '{"tokens":[1,2,3]}\n{"tokens":[1,2,\n{"tokens":[4,5]}\n' >"$work/bad.jsonl"
expect_msg "score: malformed JSONL line" "bad.jsonl:2" "invalid JSON" -- "$hybrid" score --model "$work/m" --input "$work/bad.jsonl" --output "$work/bad_out.jsonl"
[ "$(wc -l <"$work/bad_out.jsonl")" -eq 1 ] && pass "score keeps the lines before the bad one" || fail "score lost accepted lines"
printf '{"tokens":[1,2,99999]}\n' >"$work/oov.jsonl"
expect_msg "score: token outside vocabulary" "oov.jsonl:1" "99999" "outside the vocabulary" -- "$hybrid" score --model "$work/m" --input "$work/oov.jsonl" --output "$work/o.jsonl"
: >"$work/empty.jsonl"
expect_msg "score: empty input" "empty input" -- "$hybrid" score --model "$work/m" --input "$work/empty.jsonl" --output "$work/o.jsonl"
printf '{"tokens":[]}\n' >"$work/emptyseq.jsonl"
expect_msg "score: empty sequence" "emptyseq.jsonl:1" "empty sequence" -- "$hybrid" score --model "$work/m" --input "$work/emptyseq.jsonl" --output "$work/o.jsonl"
printf '{"text":"needs a tokenizer"}\n' >"$work/text_only.jsonl"
expect_msg "score: text without tokenizer" "text_only.jsonl:1" "tokenizer" -- "$hybrid" score --model "$work/m" --input "$work/text_only.jsonl" --output "$work/o.jsonl"
printf '{"tokens":[1,"x"]}\n' >"$work/badfield.jsonl"
expect_msg "score: ill-typed field" "badfield.jsonl:1" "'tokens'[1]" -- "$hybrid" score --model "$work/m" --input "$work/badfield.jsonl" --output "$work/o.jsonl"
expect_msg "generate: token outside vocabulary" "99999" "outside the vocabulary" -- "$hybrid" generate --model "$work/m" --tokens 1,99999 --max-new-tokens 2
expect_msg "generate: bad id list" "token id list" -- "$hybrid" generate --model "$work/m" --tokens 1,x --max-new-tokens 2
printf '{"tokens":[1,2,3]}\n{"tokens":[1,2}\n' >"$work/bad_sft.jsonl"
expect_msg "sft: malformed line" "bad_sft.jsonl:2" -- "$hybrid" sft --model "$work/m" --data "$work/bad_sft.jsonl" --out "$work/never"
[ ! -e "$work/never" ] && pass "sft writes nothing when the data is bad" || fail "sft wrote output despite bad data"
expect_msg "tokenize: id outside vocabulary" "999999999" -- "$hybrid" tokenize --tokenizer "$tok" --decode 999999999
expect_msg "tokenize: missing tokenizer file" "nope.json" -- "$hybrid" tokenize --tokenizer "$work/nope.json" --text hi
expect_msg "score: missing model dir" "config.json" -- "$hybrid" score --model "$work/nowhere" --input "$work/in.jsonl" --output "$work/o.jsonl"
printf '{"hidden_size": 64}\n' >"$work/no_type.json"
expect_msg "init: config without model_type" "no_type.json" "model_type" -- "$hybrid" init --config "$work/no_type.json" --out "$work/x"
printf '{"model_type":"olmo_hybrid","hidden_size":"wide"}\n' >"$work/bad_type.json"
expect_msg "init: ill-typed config field" "bad_type.json" "hidden_size" -- "$hybrid" init --config "$work/bad_type.json" --out "$work/x"
expect_msg "init: unknown preset" "tiny" -- "$hybrid" init --preset nonesuch --out "$work/x"
cp -r "$work/m" "$work/garbled"
printf 'garbage that is not a safetensors header at all' | dd of="$work/garbled/model.safetensors" bs=1 seek=0 conv=notrunc 2>/dev/null
expect_msg "score: garbled safetensors" "model.safetensors" -- "$hybrid" score --model "$work/garbled" --input "$work/in.jsonl" --output "$work/o.jsonl"
cp -r "$work/m" "$work/lying"
# header claims an 8-byte F32 tensor of shape [4] (needs 16 bytes)
hdr='{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,8]}}'
{ printf "\\x$(printf %02x ${#hdr})\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; printf '%s' "$hdr"; printf '12345678'; } >"$work/lying/model.safetensors"
expect_msg "score: header lies about sizes" "model.safetensors" "x" -- "$hybrid" score --model "$work/lying" --input "$work/in.jsonl" --output "$work/o.jsonl"
cp -r "$work/m" "$work/q4"
hdr='{"x":{"dtype":"Q4","shape":[4],"data_offsets":[0,2]}}'
{ printf "\\x$(printf %02x ${#hdr})\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; printf '%s' "$hdr"; printf '12'; } >"$work/q4/model.safetensors"
expect_msg "score: unknown dtype" "model.safetensors" "Q4" -- "$hybrid" score --model "$work/q4" --input "$work/in.jsonl" --output "$work/o.jsonl"

finish
