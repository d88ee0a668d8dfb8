# kernel-lib.sh -- what the checks against this machine's kernel in network namespaces
# share (sourced, after they set KCHECK to their name): PASS/FAIL lines, failures counted
# in $fails; a SKIP line and exit 0 where namespaces cannot be made (not root).
fails=0
pass() { echo "PASS  $*"; }
fail() { echo "FAIL  $*"; fails=$((fails + 1)); }
skip() { echo "SKIP  $KCHECK: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "not root: network namespaces need CAP_SYS_ADMIN"
