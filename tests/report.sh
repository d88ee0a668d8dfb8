#!/usr/bin/env bash
# report.sh -- the plots and report.html as a user gets them: runs ./sim on a scenario into
# a temporary --out, checks every plot is a non-empty PNG and SVG, that report.html is
# self-contained with the plots inline, and renders it in headless Chromium (a screenshot,
# no console errors). Without gnuplot or Chromium those checks are skipped with a message.
# Run by `make test` from the repo root. Usage: bash tests/report.sh [SCENARIO.yaml]
# (SIM=path overrides ./sim).
set -u
SIM=${SIM:-./sim}
SCENARIO=${1:-scenarios/compare-chains.yaml}
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
check() { local name=$1; shift; if "$@"; then ok; else bad "$name"; fi; }
is_png() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; }
is_svg() { [ -s "$1" ] && grep -q '<svg' "$1" && grep -q '</svg>' "$1"; }

"$SIM" -q --out "$tmp/res" "$SCENARIO" >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ "$rc" = 0 ] || [ "$rc" = 1 ]; then ok; else bad "sim exited $rc"; sed 's/^/    /' "$tmp/err" | head -5; fi
dir=$(find "$tmp/res" -mindepth 1 -maxdepth 1 -type d 2>/dev/null | head -1)
if [ -z "$dir" ]; then
  bad "no results folder under --out"
  echo "report: $pass passed, $fail failed"
  exit 1
fi
html="$dir/report.html"
check "report.html written" test -s "$html"
check "report.html is a whole page" grep -q '</html>' "$html"

# ---- plots ----
nsvg=0
if command -v gnuplot >/dev/null 2>&1; then
  for base in latency-cdf outcomes; do
    check "$base.png is a PNG" is_png "$dir/$base.png"
    check "$base.svg is an SVG" is_svg "$dir/$base.svg"
  done
  nhealth=$(find "$dir" -maxdepth 1 -name 'health-*.svg' | wc -l)
  check "health timelines drawn" test "$nhealth" -gt 0
  for f in "$dir"/*.svg; do
    [ -e "$f" ] || continue
    nsvg=$((nsvg + 1))
    check "$(basename "$f") is an SVG" is_svg "$f"
    check "$(basename "${f%.svg}").png is a PNG" is_png "${f%.svg}.png"
  done
  check "no temporary plot files left" test -z "$(find "$dir" -name '.*.tmp')"
  check "every plot inline in report.html" \
    test "$(grep -o 'src="data:image/svg+xml;base64,' "$html" | wc -l)" = "$nsvg"
  check "gnuplot quiet on success" test -z "$(grep -i gnuplot "$tmp/err")"
else
  echo "report: gnuplot not installed: plot checks skipped (apt-get install gnuplot-nox)"
  check "report.html says why it has no plots" grep -q 'gnuplot was not found' "$html"
  check "sim says plots were skipped" grep -q 'gnuplot not found: plots skipped' "$tmp/err"
fi

# ---- self-contained: nothing to fetch ----
check "no external resources" test -z "$(grep -oE '(src|href)="(https?:)?//[^"]*"|<link |@import|url\(' "$html")"
check "no scripts" test -z "$(grep -io '<script' "$html")"
check "the topology comes first" test "$(grep -o 'id="\(topology\|variants\|outcomes\)"' "$html" | head -1)" = 'id="topology"'
for section in 'How to read this report' 'id="topology"' 'id="outcomes"' 'id="expectations"' 'id="why"' 'id="plots"'; do
  check "report.html has $section" grep -q "$section" "$html"
done

# ---- rendered by a browser ----
chrome=""
for c in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$c" >/dev/null 2>&1; then chrome=$c; break; fi
done
if [ -z "$chrome" ]; then
  echo "report: Chromium not installed: rendering check skipped (apt-get install chromium)"
else
  profile=$(mktemp -d)
  url="file://$(cd "$dir" && pwd)/report.html"
  timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --enable-logging=stderr --v=0 \
    --screenshot="$tmp/shot.png" --window-size=1280,2000 "$url" >"$tmp/chrome.out" 2>"$tmp/chrome.err"
  crc=$?
  rm -rf "$profile"
  check "chromium exited 0 (got $crc)" test "$crc" = 0
  check "screenshot is a PNG" is_png "$tmp/shot.png"
  # a blank page compresses to a few kB; this one has tables, colour and plots
  size=$(stat -c %s "$tmp/shot.png" 2>/dev/null || echo 0)
  check "screenshot is not blank ($size bytes)" test "$size" -gt 50000
  if grep -q ':CONSOLE' "$tmp/chrome.err"; then
    bad "console errors while rendering"; grep ':CONSOLE' "$tmp/chrome.err" | head -5 | sed 's/^/    /'
  else ok; fi
  [ -n "${REPORT_SHOT:-}" ] && cp "$tmp/shot.png" "$REPORT_SHOT"
  # every picture decodes in the browser: a copy of the page with a probe script listing
  # each image's alt text and decoded width (the report itself has no scripts)
  sed 's#</body>#<script>addEventListener("load",()=>{const p=document.createElement("pre");p.id="probe";p.textContent="\\n";for(const i of document.images)p.textContent+="IMG "+i.naturalWidth+" "+i.alt+"\\n";document.body.appendChild(p);});</script></body>#' \
    "$html" >"$dir/.probe.html"
  profile=$(mktemp -d)
  timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --virtual-time-budget=10000 --dump-dom \
    "file://$(cd "$dir" && pwd)/.probe.html" >"$tmp/dom.html" 2>/dev/null
  rm -rf "$profile" "$dir/.probe.html"
  nimg=$(grep -c '^IMG ' "$tmp/dom.html")
  check "the browser lists the page's images ($nimg)" test "$nimg" -gt 0
  check "every image decodes in the browser" test -z "$(grep '^IMG 0 ' "$tmp/dom.html")"
  if command -v dot >/dev/null 2>&1; then
    check "the topology is shown" grep -q '^IMG [1-9][0-9]* The chain as built' "$tmp/dom.html"
    check "each variant's topology is shown" grep -q '^IMG [1-9][0-9]* Topology: ' "$tmp/dom.html"
  fi
  check "packet ladders are shown" grep -q '^IMG [1-9][0-9]* Packet ladder: ' "$tmp/dom.html"
fi

echo "report: $pass passed, $fail failed"
[ "$fail" = 0 ]
