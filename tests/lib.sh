# lib.sh -- what the shell tests share (sourced, after they set $tmp, their temporary
# folder): counting checks that pass and fail, and a command's exit status and output
# checked.
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
# check NAME WANT COMMAND...: runs COMMAND with its output in $tmp/out and $tmp/err (kept
# as $tmp/NAME.out and $tmp/NAME.err too); passes when it exits with status WANT, else
# shows the start of its stderr and the end of its stdout.
check() {
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  cp "$tmp/out" "$tmp/$name.out"
  cp "$tmp/err" "$tmp/$name.err"
  if [ "$got" = "$want" ]; then ok
  else bad "$name: exit $got, expected $want"; sed 's/^/    /' "$tmp/err" | head -8
       sed 's/^/    /' "$tmp/out" | tail -15
  fi
}
# contains NAME FILE TEXT: passes when FILE holds TEXT.
contains() {
  if grep -qF -- "$3" "$2"; then ok
  else bad "$1: '$3' not in $(basename "$2")"; sed 's/^/    /' "$2" | head -12; fi
}
