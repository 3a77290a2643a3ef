#!/usr/bin/env bash
# The training commands recording their runs in the run store (--store, --run-name): a few steps
# of `hybrid sft` with recipes/sft-tiny.yaml on a tiny model must leave a finished sft run with
# every step's metrics and its checkpoints, which `hybrid runs` lists and `hybrid report` draws
# (a loss chart); `hybrid dpo` with recipes/dpo-tiny.yaml adds a second run under the standard
# names (accuracy for reward accuracy); --resume with the same store and run name continues the
# same run id, replacing the steps it repeats; a store path that is a folder, or a file that is
# not SQLite, fails with exit status 1 before any step, naming the file. Everything runs without
# any ASan/UBSan report when run from the sanitizer build.
#   usage: test_train_store.sh HYBRID_BINARY SOURCE_DIR
set -u
hybrid=$1
src=$2
. "$src/tests/lib.sh"
tok=$src/model/tokenizers/dolma2-tokenizer.json

# metric RUN NAME STEP: the stored value, or nothing
metric() { sqlite3 "$store" "SELECT value FROM metrics WHERE run = $1 AND name = '$2' AND step = $3"; }

cd "$src" || exit 1
"$hybrid" init --preset tiny-dolma2 --tokenizer "$tok" --out "$work/m" >/dev/null 2>&1 || { echo "FAIL: init"; exit 1; }
store=$work/s.sqlite
have_sqlite3=0
command -v sqlite3 >/dev/null && have_sqlite3=1

echo "sft into a new store"
run_ok "sft --store" "$hybrid" sft --recipe recipes/sft-tiny.yaml --model "$work/m" --out "$work/sft" \
  --save-dir "$work/ck" --save-every 2 --steps 3 --store "$store"
cp "$work/out" "$work/sft.jsonl"
grep -q "recording run 1 'sft-sft' in the run store $store" "$work/err" && pass "names the run (default name)" \
  || { fail "run note"; grep 'run store' "$work/err"; }
run_ok "runs --store" "$hybrid" runs --store "$store"
grep -qE '^ +1 +sft +done .* 3 +[0-9.]+ +sft-sft$' "$work/out" && pass "runs: sft run, done, last step 3, a loss" \
  || { fail "runs row"; cat "$work/out"; }
run_ok "report" "$hybrid" report --store "$store" 1 --out "$work/r1.html"
grep -q '<svg' "$work/r1.html" && grep -qF 'class="title">Loss<' "$work/r1.html" \
  && grep -qF 'class="title">Tokens/s<' "$work/r1.html" \
  && pass "report: loss and tokens/s charts" || fail "report lacks the charts"
if [ $have_sqlite3 = 1 ]; then
  loss2=$(sed -n 2p "$work/sft.jsonl" | sed -E 's/.*"loss": ([^,]*),.*/\1/')
  awk -v a="$(metric 1 loss 2)" -v b="$loss2" 'BEGIN { exit !(a - b < 1e-6 && b - a < 1e-6) }' \
    && pass "step 2's loss as on its JSON line ($loss2)" || fail "stored loss $(metric 1 loss 2) != $loss2"
  [ "$(sqlite3 "$store" "SELECT count(DISTINCT step) FROM metrics WHERE run = 1")" = 3 ] \
    && [ -n "$(metric 1 tokens_per_s 3)" ] && [ "$(metric 1 skipped 3)" = 0.0 ] && [ -n "$(metric 1 grad_norm 1)" ] \
    && pass "every step's metrics, tokens_per_s among them" || fail "metrics rows"
  [ "$(sqlite3 "$store" "SELECT step, path FROM checkpoints WHERE run = 1" | tr '\n' ' ')" = \
    "2|$work/ck/step-000002 3|$work/sft " ] && pass "checkpoints: periodic and final" \
    || { fail "checkpoints"; sqlite3 "$store" "SELECT * FROM checkpoints"; }
  sqlite3 "$store" "SELECT recipe FROM runs WHERE id = 1" | grep -q '^store: ' && pass "resolved recipe stored" \
    || fail "recipe"
fi

echo "dpo: a second run"
run_ok "dpo --store" "$hybrid" dpo --recipe recipes/dpo-tiny.yaml --model "$work/m" --out "$work/dpo" \
  --save-dir "$work/dck" --steps 2 --store "$store" --run-name "my dpo"
"$hybrid" runs --store "$store" >"$work/out" 2>&1
grep -qE '^ +2 +dpo +done .* 2 +[0-9.]+ +my dpo$' "$work/out" && pass "runs: dpo run 2 named by --run-name" \
  || { fail "runs row 2"; cat "$work/out"; }
if [ $have_sqlite3 = 1 ]; then
  [ -n "$(metric 2 accuracy 2)" ] && [ -z "$(metric 2 reward_accuracy 2)" ] && [ -n "$(metric 2 margin 2)" ] \
    && pass "reward accuracy stored as accuracy, margin as is" || fail "dpo metric names"
fi
run_ok "report dpo" "$hybrid" report --store "$store" "my dpo" --out "$work/r2.html"
grep -qF 'class="title">Accuracy<' "$work/r2.html" && pass "report: accuracy chart" \
  || fail "report lacks accuracy"

echo "resume continues the run"
run_ok "sft --resume" "$hybrid" sft --recipe recipes/sft-tiny.yaml --resume "$work/ck/step-000002" \
  --out "$work/sft" --save-dir "$work/ck" --steps 4 --store "$store"
grep -q "continuing run 1 'sft-sft'" "$work/err" && pass "continuing run 1" || { fail "resume note"; grep 'run store' "$work/err"; }
"$hybrid" runs --store "$store" >"$work/out" 2>&1
[ "$(grep -c '^ *[0-9]' "$work/out")" -eq 2 ] && grep -qE '^ +1 +sft +done .* 4 ' "$work/out" \
  && pass "still two runs; run 1 reaches step 4" || { fail "runs after resume"; cat "$work/out"; }
if [ $have_sqlite3 = 1 ]; then
  [ "$(sqlite3 "$store" "SELECT count(*) FROM metrics WHERE run = 1 AND name = 'loss'")" = 4 ] \
    && pass "repeated step 3 replaced, not doubled" || fail "loss rows after resume"
fi

echo "bad stores fail before training"
mkdir "$work/folder"
expect_msg "store is a folder" "$work/folder" -- "$hybrid" sft --recipe recipes/sft-tiny.yaml --model "$work/m" \
  --out "$work/x" --save-dir "$work/x-ck" --steps 1 --store "$work/folder"
grep -q '"step"' "$work/out" && fail "store is a folder: trained before failing" || pass "store is a folder: before any step"
echo "not a database" >"$work/text.sqlite"
expect_msg "store is not SQLite" "$work/text.sqlite" "not a SQLite database" -- "$hybrid" sft \
  --recipe recipes/sft-tiny.yaml --model "$work/m" --out "$work/x" --save-dir "$work/x-ck" --steps 1 --store "$work/text.sqlite"
grep -q '"step"' "$work/out" && fail "store is not SQLite: trained before failing" || pass "store is not SQLite: before any step"
[ ! -e "$work/x" ] && [ ! -e "$work/x-ck" ] && pass "nothing written" || fail "--out written"

finish
