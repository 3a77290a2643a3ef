#!/usr/bin/env bash
# `hybrid report` and `hybrid runs` end to end on a store made by `test_run_store --make-demo` (a
# finished SFT run and a running RL run whose name, recipe, metric names and trajectory text carry
# HTML): the page must hold one SVG chart per metric and evaluation, the header, the recipe, the
# escaped name and no markup from the store, no script and no URL; one-point and all-NaN metrics
# must degrade to a dot and a note. Bad arguments (unknown run, missing or non-SQLite store, no run
# given, two runs, an unwritable output) must fail with a message naming what was wrong, and (run
# from the sanitizer build) without any ASan/UBSan report.
#   usage: test_report.sh HYBRID_BINARY SOURCE_DIR   (test_run_store is built beside HYBRID_BINARY)
set -u
hybrid=$1
maker=$(dirname "$hybrid")/test_run_store
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fails=0
pass() { printf '  ok   %s\n' "$1"; }
fail() { printf '  FAIL %s\n' "$1"; fails=$((fails + 1)); }

# expect_error NAME NEEDLE... -- CMD...: CMD must fail, stderr must contain every NEEDLE, no sanitizer report
expect_error() {
  local name=$1; shift
  local needles=()
  while [ "$1" != "--" ]; do needles+=("$1"); shift; done
  shift
  "$@" >"$work/out" 2>"$work/err"
  local rc=$?
  if [ $rc -eq 0 ]; then fail "$name: exited 0"; return; fi
  if [ $rc -ge 128 ]; then fail "$name: crashed (status $rc)"; cat "$work/err"; return; fi
  if grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$work/err"; then fail "$name: sanitizer report"; cat "$work/err"; return; fi
  for n in "${needles[@]}"; do
    if ! grep -qF -- "$n" "$work/err"; then fail "$name: message lacks '$n'"; cat "$work/err"; return; fi
  done
  pass "$name: $(head -1 "$work/err" | head -c 160)"
}

expect_ok() {
  local name=$1; shift
  if "$@" >"$work/out" 2>"$work/err" && ! grep -qE 'AddressSanitizer|runtime error:' "$work/err"; then
    pass "$name"
  else
    fail "$name"; cat "$work/err"
  fi
}

# has FILE NAME FIXED-STRING: the page contains the string
has() { if grep -qF -- "$3" "$1"; then pass "$2"; else fail "$2 (no '$3')"; fi; }
lacks() { if grep -qF -- "$3" "$1"; then fail "$2 (found '$3')"; else pass "$2"; fi; }

if [ ! -x "$maker" ]; then echo "FAIL: $maker not built"; exit 1; fi
store=$work/runs.sqlite
"$maker" --make-demo "$store" || { echo "FAIL: could not make the demo store"; exit 1; }

echo "runs"
expect_ok "runs --help" "$hybrid" runs --help
expect_ok "runs lists the store" "$hybrid" runs --store "$store"
[ "$(grep -c '^ *[0-9]' "$work/out")" -eq 2 ] && pass "runs: two rows" || { fail "runs: rows"; cat "$work/out"; }
grep -q 'baseline-sft' "$work/out" && grep -q ' rl  *running' "$work/out" && pass "runs: names, kinds, status" \
  || { fail "runs: columns"; cat "$work/out"; }

echo "report"
expect_ok "report --help" "$hybrid" report --help
expect_ok "report latest" "$hybrid" report --store "$store" latest --out "$work/rl.html"
page=$work/rl.html
n_svg=$(grep -o '<svg ' "$page" | wc -l)
# 9 known metrics + 3 others (entropy, all_nan, one_point) + 2 evaluations
[ "$n_svg" -eq 14 ] && pass "14 charts" || fail "expected 14 charts, found $n_svg"
[ "$(grep -o '</svg>' "$page" | wc -l)" -eq "$n_svg" ] && pass "every svg closed" || fail "unbalanced svg"
for t in "Loss" "Reward (mean)" "Accuracy" "Mismatch KL" "Clip fraction" "Grad norm" "Learning rate" "Tokens/s" \
         "Weight sync time"; do
  has "$page" "chart: $t" "<span class=\"title\">$t"
done
has "$page" "other metric, escaped" "entropy &lt;nats&gt;"
has "$page" "evaluation chart, escaped" "math&lt;500&gt; · pass@1"
has "$page" "smoothed line" 'class="ema"'
has "$page" "raw points" 'class="raw"'
has "$page" "axis tick labels" 'text-anchor="end" dominant-baseline="middle">'
has "$page" "last value" 'last <b>3.25</b> @ step 299'
has "$page" "one-point chart" '1 point</p>'
has "$page" "all-NaN chart" 'no finite values'
has "$page" "non-finite values counted" '1 non-finite value not drawn'
has "$page" "escaped run name" '&lt;script&gt;alert(&quot;pwn&quot;)&lt;/script&gt; rl &amp; co'
has "$page" "status" 'class="badge s-running">running'
has "$page" "kind" '<span class="badge">rl</span>'
has "$page" "duration" '<dt>duration</dt>'
has "$page" "recipe, collapsible and escaped" 'note: &quot;&lt;/pre&gt;&lt;script&gt;x()&lt;/script&gt;&quot;'
has "$page" "details element" '<details><summary>Resolved recipe</summary>'
has "$page" "checkpoints" 'out/rl/step-300'
has "$page" "trajectory text escaped" 'The answer is &lt;b&gt;42&lt;/b&gt;'
lacks "$page" "no script element" '<script'
lacks "$page" "no injected markup" '<img'
lacks "$page" "no injected markup" '<b>42'
if grep -qE 'https?://|@import|<[a-zA-Z]+ [^>]*(src|href)=' "$page"; then fail "page refers to the network"; else pass "self-contained: no URL"; fi
if command -v python3 >/dev/null; then
  python3 - "$page" <<'EOF' && pass "tags balanced" || fail "tags unbalanced"
import sys, html.parser
void = {"meta", "br", "img", "hr", "input", "link", "path", "line", "circle", "rect"}
class P(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.stack = []; self.bad = []
    def handle_starttag(self, tag, attrs):
        if tag not in void: self.stack.append(tag)
    def handle_startendtag(self, tag, attrs): pass
    def handle_endtag(self, tag):
        if tag in void: return
        if not self.stack or self.stack[-1] != tag: self.bad.append((tag, list(self.stack[-3:])))
        else: self.stack.pop()
p = P(); p.feed(open(sys.argv[1], encoding="utf-8").read())
if p.bad or p.stack: print(p.bad[:3], p.stack); sys.exit(1)
EOF
fi

expect_ok "report by name" "$hybrid" report --store "$store" baseline-sft --out "$work/sft.html"
has "$work/sft.html" "sft page: done badge" 'class="badge s-done">done'
[ "$(grep -o '<svg ' "$work/sft.html" | wc -l)" -eq 3 ] && pass "sft page: 3 charts" || fail "sft page charts"
lacks "$work/sft.html" "sft page: no evaluations" 'Evaluations'
expect_ok "report by id, --run" "$hybrid" report --store "$store" --run 1 --out "$work/by_id.html"
has "$work/by_id.html" "by id: same run" '<h1>baseline-sft</h1>'
expect_ok "report --out=..., --trajectories 0" "$hybrid" report --store="$store" 2 --out="$work/eq.html" --trajectories 0
lacks "$work/eq.html" "no trajectories when 0 asked" 'Recent trajectories'

echo "bad arguments"
expect_error "unknown run" "no run with id or name 'nonesuch'" "$store" -- "$hybrid" report --store "$store" nonesuch --out "$work/x.html"
[ ! -e "$work/x.html" ] && pass "nothing written for an unknown run" || fail "page written for an unknown run"
expect_error "missing store" "$work/none.sqlite" "No such file" -- "$hybrid" report --store "$work/none.sqlite" latest --out "$work/x.html"
[ ! -e "$work/none.sqlite" ] && pass "missing store not created" || fail "report created a store"
printf 'not a database at all, just text\n%.0s' $(seq 200) >"$work/text.sqlite"
expect_error "non-SQLite store" "$work/text.sqlite" "not a SQLite database" -- "$hybrid" report --store "$work/text.sqlite" latest --out "$work/x.html"
expect_error "runs: non-SQLite store" "$work/text.sqlite" "not a SQLite database" -- "$hybrid" runs --store "$work/text.sqlite"
expect_error "runs: missing store" "$work/none.sqlite" -- "$hybrid" runs --store "$work/none.sqlite"
expect_error "no run given" "which run" -- "$hybrid" report --store "$store" --out "$work/x.html"
expect_error "two runs given" "one run at a time" -- "$hybrid" report --store "$store" 1 2
expect_error "positional and --run" "give the run once" -- "$hybrid" report --store "$store" 1 --run 2
expect_error "unknown option" "unknown option '--bogus'" -- "$hybrid" report --store "$store" latest --bogus 1
expect_error "bad --trajectories" "--trajectories" -- "$hybrid" report --store "$store" latest --trajectories -3
expect_error "unwritable output" "$work/no/such/dir/r.html" -- "$hybrid" report --store "$store" latest --out "$work/no/such/dir/r.html"

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
