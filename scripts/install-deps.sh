#!/usr/bin/env bash
# Installs the build and test dependencies of lbchain on Debian 12 (idempotent).
# Only packages that are missing are installed; safe to run repeatedly.
set -euo pipefail

PKGS=(build-essential pkg-config
      libgsl-dev libsqlite3-dev libcjson-dev libyaml-dev libpcap-dev check
      gnuplot-nox sqlite3 time libssl-dev
      chromium
      chromium-driver
      tshark
      # real-socket mode (libcurl) and its stand-ins on loopback / in namespaces;
      # tests/real.sh reads results with jq, probes nginx with curl, makes a TLS
      # certificate with openssl
      libcurl4-openssl-dev nginx-light haproxy wrk curl jq openssl
      iproute2 iptables conntrack
      # tests/large.sh loads the --dump-nft output into a namespace with nft -f
      nftables
      # tests/kernel-timers.sh watches the kernel's SYNs, retransmissions and keepalive
      # probes with it (without it the test skips)
      tcpdump
      # the real chain (make realtest): single SYNs for the kube-proxy differential
      hping3
      # pictures (Graphviz; rsvg-convert turns the packet ladders' SVG into PNG; xmllint
      # and pngcheck let the tests parse every SVG and decode every PNG), fuzzing (clang's
      # libFuzzer; llvm-cov for make fuzz-coverage)
      graphviz librsvg2-bin libxml2-utils pngcheck clang libclang-rt-14-dev llvm-14)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# tshark (tests/pcap.sh): wireshark-common asks whether non-root users may capture
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
