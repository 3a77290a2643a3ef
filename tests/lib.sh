# The harness of the script tests. A test starts
#   set -u
#   hybrid=$1
#   src=$2
#   . "$src/tests/lib.sh"
# and ends with `finish`. What it gives:
#   $work                        a temporary folder, removed when the script exits
#   pass NAME, fail NAME         a check the script decides itself: "  ok   NAME" or "  FAIL NAME"
#   no_sanitizer_report FILE     true when FILE holds no ASan, UBSan or LSan report
#   run_ok NAME CMD...           CMD must exit 0 without a sanitizer report
#   expect_msg [--status N] NAME NEEDLE... -- CMD...
#                                CMD must exit N (default 1, an error; 2 is a usage error: docs/cli.md)
#                                without a sanitizer report, and its stderr must hold every NEEDLE
#   finish                       prints "<test>: N checks, M failures"; exit status 1 if any failed
# run_ok and expect_msg leave CMD's stdout in $work/out and its stderr in $work/err for the checks
# that follow, print that stderr when they fail, and return 1 then, so `run_ok ... || finish` stops
# a script whose later checks would be meaningless.

work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
n_checks=0
n_failures=0

pass() {
  n_checks=$((n_checks + 1))
  printf '  ok   %s\n' "$1"
}

fail() {
  n_checks=$((n_checks + 1))
  n_failures=$((n_failures + 1))
  printf '  FAIL %s\n' "$1"
}

no_sanitizer_report() { ! grep -qE 'AddressSanitizer|runtime error:|LeakSanitizer' "$1"; }

run_ok() {
  local name=$1; shift
  if "$@" >"$work/out" 2>"$work/err" && no_sanitizer_report "$work/err"; then pass "$name"; return 0; fi
  fail "$name"
  cat "$work/err"
  return 1
}

expect_msg() {
  local want=1
  if [ "$1" = "--status" ]; then want=$2; shift 2; fi
  local name=$1; shift
  local needles=()
  while [ $# -gt 0 ] && [ "$1" != "--" ]; do needles+=("$1"); shift; done
  if [ $# -eq 0 ]; then fail "$name: expect_msg without -- CMD"; return 1; fi
  shift
  "$@" >"$work/out" 2>"$work/err"
  local rc=$? n
  if [ $rc -ne "$want" ]; then fail "$name: exit status $rc, expected $want"; cat "$work/err"; return 1; fi
  if ! no_sanitizer_report "$work/err"; then fail "$name: sanitizer report"; cat "$work/err"; return 1; fi
  for n in "${needles[@]}"; do
    if ! grep -qF -- "$n" "$work/err"; then fail "$name: message lacks '$n'"; cat "$work/err"; return 1; fi
  done
  # the message shown: the error line, else the line with the first needle (a usage error)
  pass "$name: $( (grep -E 'error:' "$work/err" || grep -F -- "${needles[0]:-}" "$work/err") | head -1 | head -c 200)"
}

finish() {
  printf '%s: %d checks, %d failures\n' "$(basename "$0" .sh)" "$n_checks" "$n_failures"
  [ "$n_failures" -eq 0 ] || exit 1
  exit 0
}
