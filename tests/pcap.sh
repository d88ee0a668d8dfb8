#!/usr/bin/env bash
# pcap.sh -- trace.pcap as Wireshark reads it: runs ./sim on scenarios with --out into a
# temporary folder and checks the files with tshark: the 404s of aks-probe-404 decode as
# HTTP, aks-dsr's as-deployed SYNs show as retransmissions one initial RTO (1 s) apart,
# core-nat's capture has valid checksums, decoded 200s and no TCP warnings, the same run
# gives the same bytes, --no-pcap writes none. Run by `make test` from the repo root.
set -u
SIM=${SIM:-./sim}           # the program under test
pass=0 fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

if ! command -v tshark >/dev/null 2>&1; then
  bad "tshark is not installed (scripts/install-deps.sh installs it)"
  echo "pcap: $pass passed, $fail failed"
  exit 1
fi

# run NAME SCENARIO VARIANT [sim options...]: runs one variant into $tmp/NAME, sets $pcap
# to the one .pcap file it wrote (empty when there is none or more than one)
run() {
  local name=$1 scn=$2 variant=$3; shift 3
  pcap=""
  "$SIM" -q --out "$tmp/$name" -v "$variant" "$@" "scenarios/$scn.yaml" >"$tmp/$name.out" 2>&1
  local rc=$?
  # exit 1 (an expectation failed) still writes results; anything else is an error
  if [ $rc != 0 ] && [ $rc != 1 ]; then
    bad "$name: $SIM exited $rc"; sed 's/^/    /' "$tmp/$name.out" | head -5; return 1
  fi
  local files
  files=$(find "$tmp/$name" -name '*.pcap' | sort)
  if [ "$(printf '%s' "$files" | grep -c .)" != 1 ]; then
    bad "$name: expected one .pcap under --out, found: ${files:-none}"
    return 1
  fi
  pcap=$files
}

count() {   # FILE FILTER [tshark options...]: frames matching FILTER ("error" if tshark fails)
  local f=$1 filter=$2; shift 2
  if tshark -n -r "$f" "$@" -Y "$filter" >"$tmp/tshark.out" 2>"$tmp/tshark.err"; then
    wc -l <"$tmp/tshark.out"
  else
    echo error; sed 's/^/    tshark: /' "$tmp/tshark.err" | grep -v 'dangerous' | head -3 >&2
  fi
}
# tshark prints fields of the frames matching FILTER
fields() { tshark -n -r "$1" -Y "$2" -T fields -e "$3" 2>/dev/null; }

# 1. App Gateway's probe GET /healthz/ready gets Envoy's 404 (no route): tshark decodes
#    both and pairs them.
if run probe404 aks-probe-404 as-deployed; then
  n=$(count "$pcap" 'http.response.code == 404 && http.response_for.uri contains "/healthz/ready"')
  [ "$n" != error ] && [ "$n" -gt 0 ] && ok || bad "aks-probe-404: no 404 to GET /healthz/ready in $pcap"
  n=$(count "$pcap" 'http.request.method == "GET"')
  [ "$n" != error ] && [ "$n" -gt 0 ] && ok || bad "aks-probe-404: no HTTP GET requests decoded"
fi

# 2. aks-dsr as deployed: the internal LB drops SYNs (no healthy backend); the App
#    Gateway's TCP retransmits them with Linux backoff, the first one 1 s after the SYN.
if run dsr aks-dsr as-deployed; then
  n=$(count "$pcap" 'tcp.analysis.retransmission && tcp.flags.syn == 1 && tcp.flags.ack == 0')
  [ "$n" != error ] && [ "$n" -gt 100 ] && ok || bad "aks-dsr: $n SYN retransmissions, expected many"
  # time since the first frame of the connection, for each retransmitted SYN
  fields "$pcap" 'tcp.analysis.retransmission && tcp.flags.syn == 1' tcp.time_relative \
    >"$tmp/rel"
  first=$(awk '$1 > 0.999 && $1 < 1.001' "$tmp/rel" | wc -l)
  second=$(awk '$1 > 2.999 && $1 < 3.001' "$tmp/rel" | wc -l)
  [ "$first" -gt 0 ] && [ "$second" -gt 0 ] && ok \
    || bad "aks-dsr: SYN retransmissions not at +1 s and +3 s (found $first, $second)"
fi

# 3. core-nat with MASQUERADE: a clean capture -- every checksum valid, the 2 KB 200s
#    reassembled as HTTP, no retransmissions and no TCP warnings (each packet once per
#    form, not once per router).
if run nat core-nat masquerade; then
  total=$(count "$pcap" 'ip')
  good=$(count "$pcap" 'tcp.checksum.status == 1 && ip.checksum.status == 1' \
           -o tcp.check_checksum:TRUE -o ip.check_checksum:TRUE)
  [ "$total" != error ] && [ "$total" -gt 1000 ] && [ "$good" = "$total" ] && ok \
    || bad "core-nat: $good of $total packets with valid IP and TCP checksums"
  n=$(count "$pcap" 'http.response.code == 200 && http.content_length == 2000')
  [ "$n" != error ] && [ "$n" -gt 100 ] && ok || bad "core-nat: $n reassembled 200 responses"
  n=$(count "$pcap" 'tcp.analysis.retransmission || _ws.expert.severity >= warning')
  [ "$n" = 0 ] && ok || bad "core-nat: $n retransmissions or warnings in a lossless run"
  first=$pcap
  if run nat2 core-nat masquerade; then
    cmp -s "$first" "$pcap" && ok || bad "core-nat: two runs wrote different pcaps"
  fi
fi

# 4. TLS (aks-https-no-sni): the handshake as Wireshark reads it -- App Gateway's probe
#    ClientHello without SNI, the live traffic's with SNI gw.example.com, ServerHello,
#    Certificate with the certificate's CN, ServerKeyExchange, ServerHelloDone, Finished
#    in TLS 1.2; the RST Envoy answers a ClientHello without SNI with; no malformed record.
if run tls aks-https-no-sni was-healthy; then
  n=$(count "$pcap" 'tls.handshake.type == 1 && !tls.handshake.extensions_server_name')
  [ "$n" != error ] && [ "$n" -gt 0 ] && ok || bad "tls: $n ClientHellos without SNI"
  n=$(count "$pcap" 'tls.handshake.extensions_server_name == "gw.example.com"')
  [ "$n" != error ] && [ "$n" -gt 0 ] && ok || bad "tls: $n ClientHellos with SNI gw.example.com"
  n=$(count "$pcap" 'tls.handshake.type == 11 && x509sat.uTF8String == "gw.example.com"')
  [ "$n" != error ] && [ "$n" -gt 0 ] && ok || bad "tls: $n Certificate messages naming gw.example.com"
  n=$(count "$pcap" 'tls.handshake.type == 2 && tls.handshake.version == 0x0303')
  [ "$n" != error ] && [ "$n" -gt 0 ] && ok || bad "tls: $n TLS 1.2 ServerHellos"
  n=$(count "$pcap" 'tcp.flags.reset == 1 && tcp.srcport == 443')
  [ "$n" != error ] && [ "$n" -gt 0 ] && ok || bad "tls: $n resets from port 443"
  n=$(count "$pcap" '_ws.malformed || tls.record.length > 16640')
  [ "$n" = 0 ] && ok || bad "tls: $n malformed TLS frames"
fi

# 5. --no-pcap writes none.
"$SIM" -q --no-pcap --out "$tmp/none" -v masquerade scenarios/core-nat.yaml >/dev/null 2>&1
[ -z "$(find "$tmp/none" -name '*.pcap' 2>/dev/null)" ] && ok || bad "--no-pcap wrote a pcap"

echo "pcap: $pass passed, $fail failed"
[ "$fail" = 0 ]
