#!/usr/bin/env bash
# `hybrid init --preset demo` end to end: it writes config.json (V=264, eos 256 and 259, pad 257),
# the weights and the byte-level tokenizer.json (model/tokenizer_bytes.h), the same bytes on every
# run; `hybrid tokenize` with that file gives a text's UTF-8 bytes as ids with the special tokens
# recognised, and decodes them back; `hybrid generate` runs on the directory from a text prompt;
# --tokenizer still replaces the generated file and is still checked against the vocab size.
# (Parity of the tokenizer with HF `tokenizers` is test_tokenizer_bytes.c.) Runs in ~1 s.
#   usage: test_demo_preset.sh HYBRID_BINARY SOURCE_DIR
set -u
hybrid=$1
src=$2
. "$src/tests/lib.sh"

echo "init --preset demo"
run_ok "exit 0" "$hybrid" init --preset demo --out "$work/m" --seed 1 || finish
for f in config.json model.safetensors tokenizer.json; do
  [ -s "$work/m/$f" ] && pass "wrote $f" || fail "no $f"
done
grep -q 'byte-level tokenizer.json' "$work/err" && pass "says it wrote the tokenizer" || fail "init message"
tr -d ' \n' <"$work/m/config.json" >"$work/cfg"
grep -q '"vocab_size":264,' "$work/cfg" && grep -q '"pad_token_id":257,' "$work/cfg" &&
  grep -q '"bos_token_id":null,' "$work/cfg" && grep -q '"eos_token_id":\[256,259\]' "$work/cfg" &&
  pass "config: vocab 264, pad 257, no bos, eos [256, 259]" || { fail "config.json fields"; cat "$work/m/config.json"; }
"$hybrid" init --preset demo --out "$work/m2" --seed 2 2>/dev/null &&
  cmp -s "$work/m/tokenizer.json" "$work/m2/tokenizer.json" && pass "the tokenizer is the same on every run" ||
  fail "two inits wrote different tokenizers"

echo "tokenize with the written tokenizer"
tok=$work/m/tokenizer.json
got=$("$hybrid" tokenize --tokenizer "$tok" --text "12+34=" 2>&1)
[ "$got" = "49 50 43 51 52 61" ] && pass "\"12+34=\" is its bytes" || fail "tokenize 12+34=: $got"
text=$(printf '<|im_start|>user\nh\xc3\xa9 \xf0\x9f\x98\x80<|im_end|>\n<|endoftext|>')
got=$("$hybrid" tokenize --tokenizer "$tok" --text "$text" 2>&1)
want="258 117 115 101 114 10 104 195 169 32 240 159 152 128 259 10 256"
[ "$got" = "$want" ] && pass "specials in text, é and an emoji as bytes" || fail "tokenize chat text: $got"
back=$("$hybrid" tokenize --tokenizer "$tok" --decode "${want// /,}" 2>&1)
[ "$back" = "$text" ] && pass "decode round-trips" || fail "decode gave: $back"
back=$("$hybrid" tokenize --tokenizer "$tok" --decode "${want// /,}" --skip-special 2>&1)
[ "$back" = "$(printf 'user\nh\xc3\xa9 \xf0\x9f\x98\x80\n')" ] && pass "decode --skip-special drops the specials" ||
  fail "skip-special decode gave: $back"

echo "generate on the demo model"
run_ok "exit 0" "$hybrid" generate --model "$work/m" --prompt "12+34=" --max-new-tokens 4 --temperature 0 --json
grep -q '"prompt_tokens":\[49,50,43,51,52,61\]' "$work/out" && pass "the prompt is its bytes" ||
  { fail "prompt tokens"; cat "$work/out"; }

echo "--tokenizer with the demo preset"
"$hybrid" init --preset demo --tokenizer "$tok" --out "$work/m3" 2>/dev/null &&
  cmp -s "$tok" "$work/m3/tokenizer.json" && pass "a given tokenizer is copied in" || fail "--tokenizer copy"
expect_msg "a tokenizer larger than V=264 is refused" "vocab_size is 264" -- \
  "$hybrid" init --preset demo --tokenizer "$src/model/tokenizers/dolma2-tokenizer.json" --out "$work/m4"

finish
