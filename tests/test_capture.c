/* test_capture.c -- trace.pcap and the hop recorder (src/report/capture.c): a small
 * scenario with a 404, a 200 longer than one segment, a SYN that an iptables DROP rule
 * swallows, one a REJECT answers with ICMP and one lost on a link with loss 1, read back
 * with libpcap and checked byte by byte (addresses, flags, lengths, checksums, HTTP
 * text, times); the node, flow and size filters; and core-nat's hop-by-hop path. */
#include <check.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "capture.h"
#include "scenario.h"

/* client 10.0.0.1 -- web 10.0.0.2 (1 ms); client 10.0.0.5 -- dark 10.0.0.6 (1 ms, loss 1).
 * Flows in request order: 1 notfound, 2 ok, 3 blocked, 4 rejected, 5 lost. */
static const char *small_yaml =
    "name: capture-small\n"
    "seed: 3\n"
    "duration: 4s\n"
    "nodes:\n"
    "  client: { type: host }\n"
    "  web:\n"
    "    type: host\n"
    "    iptables:\n"
    "      - \"-A INPUT -p tcp --dport 81 -j DROP\"\n"
    "      - \"-A INPUT -p tcp --dport 82 -j REJECT\"\n"
    "  dark: { type: host }\n"
    "links:\n"
    "  - { between: [client, web], latency: 1ms }\n"
    "  - { between: [client, dark], latency: 1ms, loss: 1 }\n"
    "apps:\n"
    "  site:\n"
    "    type: http-server\n"
    "    on: web\n"
    "    port: 80\n"
    "    locations:\n"
    "      - { path: /ok, status: 200, body: \"hello\", body-size: 3000B }\n"
    "traffic:\n"
    "  notfound: { type: http-client, from: client, to: web, path: /nope, rate: 1/s,"
    " arrival: constant, requests: 1, start: 100ms, keepalive: false }\n"
    "  ok: { type: http-client, from: client, to: web, path: /ok, rate: 1/s,"
    " arrival: constant, requests: 1, start: 200ms, keepalive: false }\n"
    "  blocked: { type: http-client, from: client, to: web, port: 81, rate: 1/s,"
    " arrival: constant, requests: 1, start: 300ms, connect-timeout: 2500ms }\n"
    "  rejected: { type: http-client, from: client, to: web, port: 82, rate: 1/s,"
    " arrival: constant, requests: 1, start: 400ms }\n"
    "  lost: { type: http-client, from: client, to: dark, rate: 1/s,"
    " arrival: constant, requests: 1, start: 500ms, connect-timeout: 2500ms }\n";

/* client -- r1 -- web, one request, no NAT: every packet crosses r1 unchanged. */
static const char *router_yaml =
    "name: capture-router\n"
    "seed: 1\n"
    "duration: 1s\n"
    "nodes:\n"
    "  client: { type: host }\n"
    "  r1: { type: router }\n"
    "  web: { type: host }\n"
    "links:\n"
    "  - { between: [client, r1], latency: 1ms }\n"
    "  - { between: [r1, web], latency: 1ms }\n"
    "apps:\n"
    "  site: { type: http-server, on: web, locations: [ { path: / } ] }\n"
    "traffic:\n"
    "  one: { type: http-client, from: client, to: web, rate: 1/s, arrival: constant,"
    " requests: 1, start: 100ms, keepalive: false }\n";

#define MAXP 512

typedef struct rpkt {
    int64_t t;                  /* ns */
    uint32_t caplen, len;
    uint8_t b[4096];
} rpkt_t;

static rpkt_t pk[MAXP];

static char tmpdir[64];

static void mk_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lbchain-cap-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void rm_tmpdir(const char *file)
{
    char p[128];
    snprintf(p, sizeof p, "%s/%s", tmpdir, file);
    unlink(p);
    rmdir(tmpdir);
}

static uint16_t g16(const uint8_t *b) { return (uint16_t)(b[0] << 8 | b[1]); }
static uint32_t g32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint16_t fold(uint64_t s)
{
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}
static uint64_t sum(const uint8_t *b, size_t n)
{
    uint64_t s = 0;
    for (size_t i = 0; i + 1 < n; i += 2) s += g16(b + i);
    if (n & 1) s += (uint64_t)b[n - 1] << 8;
    return s;
}

/* Reads a pcap written by the capture; returns the packet count. Checks the file header
 * (raw IPv4, nanoseconds) and, for every packet, the IPv4 header, its length and
 * checksum, and the TCP / ICMP checksum. */
static int read_pcap(const char *path)
{
    char err[PCAP_ERRBUF_SIZE];
    pcap_t *pd = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, err);
    ck_assert_msg(pd != NULL, "%s", err);
    ck_assert_int_eq(pcap_datalink(pd), DLT_RAW);
    ck_assert_int_eq(pcap_snapshot(pd), REP_CAPTURE_SNAPLEN);
    struct pcap_pkthdr *h;
    const u_char *d;
    int n = 0;
    while (pcap_next_ex(pd, &h, &d) == 1) {
        ck_assert_int_lt(n, MAXP);
        rpkt_t *p = &pk[n++];
        p->t = (int64_t)h->ts.tv_sec * 1000000000 + h->ts.tv_usec;
        p->caplen = h->caplen;
        p->len = h->len;
        ck_assert_uint_eq(h->caplen, h->len);
        ck_assert_uint_le(h->caplen, sizeof p->b);
        memcpy(p->b, d, h->caplen);
        const uint8_t *b = p->b;
        ck_assert_uint_eq(b[0], 0x45);
        ck_assert_uint_eq(g16(b + 2), h->len);
        ck_assert_uint_eq(fold(sum(b, 20)), 0xffff);
        uint32_t l4 = h->len - 20;
        if (b[9] == 6) {
            uint64_t s = sum(b + 12, 8) + 6 + l4 + sum(b + 20, l4);
            ck_assert_msg(fold(s) == 0xffff, "packet %d: bad TCP checksum", n);
            ck_assert_uint_eq(b[20 + 12] >> 4, (b[20 + 13] & 0x02) ? 10 : 8);
        } else {
            ck_assert_uint_eq(b[9], 1);
            ck_assert_uint_eq(fold(sum(b + 20, l4)), 0xffff);
        }
        if (n > 1) ck_assert_int_ge(p->t, pk[n - 2].t);     /* in time order */
    }
    pcap_close(pd);
    return n;
}

static uint32_t ip_src(const rpkt_t *p) { return g32(p->b + 12); }
static uint32_t ip_dst(const rpkt_t *p) { return g32(p->b + 16); }
static uint16_t sport(const rpkt_t *p) { return g16(p->b + 20); }
static uint16_t dport(const rpkt_t *p) { return g16(p->b + 22); }
static uint8_t tflags(const rpkt_t *p) { return p->b[33]; }
static uint32_t tseq(const rpkt_t *p) { return g32(p->b + 24); }
static const uint8_t *payload(const rpkt_t *p, uint32_t *n)
{
    uint32_t off = 20 + (uint32_t)(p->b[32] >> 4) * 4;
    *n = p->len - off;
    return p->b + off;
}

static uint32_t ip(const char *s)
{
    uint32_t a = 0;
    ck_assert_int_eq(lb_ip_parse(s, &a), 0);
    return a;
}

/* Loads yaml, runs variant 0 with a capture to DIR/trace.pcap (path NULL: none) and opts,
 * returns the number of packets written (and the stats). */
static int run_capture(const char *yaml, const rep_capture_opts_t *o, bool write,
                       rep_capture_stats_t *st)
{
    scn_t *s;
    scn_diag_t d;
    ck_assert_msg(scn_load_string(yaml, "t.yaml", &s, &d, NULL) == 0, "%s:%d:%d: %s", d.file,
                  d.line, d.col, d.msg);
    scn_run_t *r;
    ck_assert_int_eq(scn_run_new(s, 0, scn_seed(s), &r, &d), 0);
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/trace.pcap", tmpdir);
    rep_capture_t *c = rep_capture_open(r, write ? path : NULL, o, err, sizeof err);
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_int_eq(scn_run_execute(r, NULL, NULL), 0);
    rep_capture_stats(c, st);
    ck_assert_int_eq(rep_capture_close(c, err, sizeof err), 0);
    ck_assert_int_eq(rep_capture_close(c, err, sizeof err), 0);        /* idempotent */
    rep_capture_free(c);
    scn_run_free(r);
    scn_free(s);
    if (!write) return 0;
    char tmp[128];
    snprintf(tmp, sizeof tmp, "%s/.trace.pcap.tmp", tmpdir);
    ck_assert_int_ne(access(tmp, F_OK), 0);                 /* renamed into place */
    return read_pcap(path);
}

/* ---- the small scenario, packet by packet ------------------------------------------------ */

START_TEST(small_scenario_packets)
{
    mk_tmpdir();
    rep_capture_stats_t st;
    int n = run_capture(small_yaml, NULL, true, &st);
    /* notfound: SYN, SYN-ACK, ACK, GET, 404 (+FIN), FIN, ACK = 7; ok: the same with a
     * three-segment response and one more ACK = 10; blocked: SYN and its retransmission
     * 1 s later (the connect timeout, 2.5 s, comes before the next at 3 s) = 2; rejected:
     * SYN, ICMP port unreachable = 2; lost: two SYNs lost on the link = 2. */
    ck_assert_int_eq(n, 23);
    ck_assert_uint_eq(st.packets, 23);
    ck_assert_uint_eq(st.lost_written, 2);
    ck_assert(!st.limited);
    ck_assert_uint_eq(st.over_limit, 0);

    uint32_t cl = ip("10.0.0.1"), web = ip("10.0.0.2"), cl2 = ip("10.0.0.5"), dark = ip("10.0.0.6");
    /* the first SYN: sent at 100 ms, at web after 1 ms + 60 bytes at 1 Gbps (480 ns) */
    ck_assert_int_eq(pk[0].t, 100 * SIM_MS + SIM_MS + 480);
    ck_assert_uint_eq(ip_src(&pk[0]), cl);
    ck_assert_uint_eq(ip_dst(&pk[0]), web);
    ck_assert_uint_eq(dport(&pk[0]), 80);
    ck_assert_uint_eq(tflags(&pk[0]), TCP_SYN);
    ck_assert_uint_eq(pk[0].len, 60);
    ck_assert_uint_eq(pk[0].b[8], 64);                      /* TTL */
    ck_assert_uint_eq(g16(pk[0].b + 20 + 22), 1460);        /* MSS option */

    int n404 = 0, nget = 0, n200 = 0, syn81 = 0, syn82 = 0, icmp = 0, lost = 0;
    uint16_t okport = 0;                    /* the client port of GET /ok */
    for (int i = 0; i < n; i++) {
        uint32_t pl;
        const uint8_t *d = payload(&pk[i], &pl);
        if (pk[i].b[9] == 6 && pl > 16 && memcmp(d, "GET /ok HTTP/1.1", 16) == 0)
            okport = sport(&pk[i]);
    }
    ck_assert_uint_ne(okport, 0);
    int64_t t81[4], tlost[4];
    uint32_t seq81[4];
    char body[8192];
    size_t blen = 0;
    for (int i = 0; i < n; i++) {
        const rpkt_t *p = &pk[i];
        if (p->b[9] == 1) {
            icmp++;
            ck_assert_uint_eq(ip_src(p), web);
            ck_assert_uint_eq(ip_dst(p), cl);
            ck_assert_uint_eq(p->b[20], ICMP_DEST_UNREACH);
            ck_assert_uint_eq(p->b[21], ICMP_PORT_UNREACH);
            ck_assert_uint_eq(p->len, 56);
            const uint8_t *q = p->b + 28;                   /* the quoted SYN */
            ck_assert_uint_eq(g32(q + 12), cl);
            ck_assert_uint_eq(g32(q + 16), web);
            ck_assert_uint_eq(g16(q + 22), 82);
            continue;
        }
        uint32_t pl;
        const uint8_t *d = payload(p, &pl);
        if (tflags(p) == TCP_SYN && dport(p) == 81) {
            ck_assert_int_lt(syn81, 4);
            t81[syn81] = p->t;
            seq81[syn81++] = tseq(p);
        }
        if (tflags(p) == TCP_SYN && dport(p) == 82) syn82++;
        if (ip_dst(p) == dark) {
            ck_assert_uint_eq(ip_src(p), cl2);
            ck_assert_uint_eq(tflags(p), TCP_SYN);
            ck_assert_int_lt(lost, 4);
            tlost[lost++] = p->t;
        }
        if (pl >= 24 && memcmp(d, "HTTP/1.1 404 Not Found\r\n", 24) == 0) {
            n404++;
            ck_assert_uint_eq(ip_src(p), web);
            ck_assert_uint_eq(sport(p), 80);
            ck_assert_uint_eq(tflags(p), TCP_ACK | TCP_PSH | TCP_FIN);
        }
        if (pl >= 28 && memcmp(d, "GET /nope HTTP/1.1\r\nHost: ", 26) == 0) nget++;
        if (ip_src(p) == web && sport(p) == 80 && pl > 0 && dport(p) == okport) {
            /* the 200's segments, in order: collect the message */
            if (!n200) ck_assert_mem_eq(d, "HTTP/1.1 200 OK\r\n", 17);
            ck_assert_uint_le(blen + pl, sizeof body);
            memcpy(body + blen, d, pl);
            blen += pl;
            n200++;
        }
    }
    ck_assert_int_eq(n404, 1);
    ck_assert_int_eq(nget, 1);
    ck_assert_int_eq(icmp, 1);
    ck_assert_int_eq(syn82, 1);
    /* the DROP rule: the SYN at 300 ms and its retransmission after the initial RTO */
    ck_assert_int_eq(syn81, 2);
    ck_assert_uint_eq(seq81[0], seq81[1]);
    ck_assert_int_eq(t81[0], 300 * SIM_MS + SIM_MS + 480);
    ck_assert_int_eq(t81[1] - t81[0], SIM_S);
    /* lost on the link: written at the time they were lost (when sent) */
    ck_assert_int_eq(lost, 2);
    ck_assert_int_eq(tlost[0], 500 * SIM_MS);
    ck_assert_int_eq(tlost[1], 1500 * SIM_MS);
    /* the 200: three segments that together are the whole message */
    ck_assert_int_eq(n200, 3);
    body[blen] = '\0';
    char *hdr_end = strstr(body, "\r\n\r\n");
    ck_assert_ptr_nonnull(hdr_end);
    ck_assert_ptr_nonnull(strstr(body, "Content-Length: 3000\r\n"));
    ck_assert_mem_eq(hdr_end + 4, "hello", 5);
    ck_assert_uint_eq(blen, (size_t)(hdr_end + 4 - body) + 3000);
    for (size_t i = (size_t)(hdr_end + 4 - body) + 5; i < blen; i++) ck_assert_int_eq(body[i], 0);
    rm_tmpdir("trace.pcap");
}
END_TEST

START_TEST(same_run_same_bytes)
{
    mk_tmpdir();
    rep_capture_stats_t st;
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/trace.pcap", tmpdir);
    snprintf(b, sizeof b, "%s/first.pcap", tmpdir);
    run_capture(small_yaml, NULL, true, &st);
    ck_assert_int_eq(rename(a, b), 0);
    run_capture(small_yaml, NULL, true, &st);
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    ck_assert(fa && fb);
    static char x[1 << 16], y[1 << 16];
    size_t na = fread(x, 1, sizeof x, fa), nb = fread(y, 1, sizeof y, fb);
    fclose(fa);
    fclose(fb);
    ck_assert_uint_eq(na, nb);
    ck_assert_uint_eq(na, st.bytes);
    ck_assert_mem_eq(x, y, na);
    unlink(b);
    rm_tmpdir("trace.pcap");
}
END_TEST

/* ---- filters ------------------------------------------------------------------------------ */

START_TEST(only_flow_and_nodes)
{
    mk_tmpdir();
    rep_capture_stats_t st;
    rep_capture_opts_t o = { .only_flow = 3 };          /* blocked: its two SYNs */
    ck_assert_int_eq(run_capture(small_yaml, &o, true, &st), 2);
    ck_assert_uint_eq(dport(&pk[0]), 81);
    ck_assert_uint_eq(dport(&pk[1]), 81);
    /* arriving at web: notfound SYN, ACK, GET, FIN; ok SYN, ACK, GET, ACK, FIN; two SYNs
     * to 81; one to 82 */
    o = (rep_capture_opts_t){ .nodes = "web" };
    ck_assert_int_eq(run_capture(small_yaml, &o, true, &st), 12);
    for (int i = 0; i < 12; i++) ck_assert_uint_eq(ip_dst(&pk[i]), ip("10.0.0.2"));
    /* the rest arrives at the client, or was lost on its way out of the client */
    o = (rep_capture_opts_t){ .nodes = "dark, cl*" };
    ck_assert_int_eq(run_capture(small_yaml, &o, true, &st), 11);
    ck_assert_uint_eq(st.lost_written, 2);
    rm_tmpdir("trace.pcap");
}
END_TEST

START_TEST(size_guard)
{
    mk_tmpdir();
    rep_capture_stats_t st;
    ck_assert_int_eq(run_capture(small_yaml, NULL, true, &st), 23);
    int64_t sixth = pk[5].t, fourth = pk[3].t;
    rep_capture_opts_t o = { .max_packets = 5 };
    ck_assert_int_eq(run_capture(small_yaml, &o, true, &st), 5);
    ck_assert(st.limited);
    ck_assert_uint_eq(st.packets, 5);
    ck_assert_uint_eq(st.over_limit, 18);
    ck_assert_int_eq(st.limit_t, sixth);    /* stopped when the sixth came */
    /* bytes: the file header and three SYN/ACK-sized records fit, the GET does not */
    o = (rep_capture_opts_t){ .max_bytes = 24 + 2 * (16 + 60) + (16 + 52) + 16 + 56 };
    ck_assert_int_eq(run_capture(small_yaml, &o, true, &st), 3);
    ck_assert(st.limited);
    ck_assert_int_eq(st.limit_t, fourth);
    ck_assert_uint_eq(st.bytes, 24 + 2 * (16 + 60) + (16 + 52));
    rm_tmpdir("trace.pcap");
}
END_TEST

START_TEST(every_node_or_distinct)
{
    mk_tmpdir();
    rep_capture_stats_t st;
    int distinct = run_capture(router_yaml, NULL, true, &st);
    /* SYN, SYN-ACK, ACK, GET, 200 (+FIN), FIN, ACK: each once, at the first node it
     * reaches (r1), with the TTL it was sent with */
    ck_assert_int_eq(distinct, 7);
    for (int i = 0; i < distinct; i++) ck_assert_uint_eq(pk[i].b[8], 64);
    rep_capture_opts_t o = { .every_node = true };
    int all = run_capture(router_yaml, &o, true, &st);
    ck_assert_int_eq(all, 2 * distinct);
    /* the copy at the far node: same packet (IP ID), one hop less TTL, 1 ms + 60 bytes
     * at 1 Gbps later for the SYN */
    ck_assert_uint_eq(g16(pk[0].b + 4), g16(pk[1].b + 4));
    ck_assert_uint_eq(pk[1].b[8], 63);
    ck_assert_int_eq(pk[1].t - pk[0].t, SIM_MS + 480);
    rm_tmpdir("trace.pcap");
}
END_TEST

START_TEST(bad_input)
{
    scn_t *s;
    scn_diag_t d;
    ck_assert_int_eq(scn_load_string(router_yaml, "t.yaml", &s, &d, NULL), 0);
    scn_run_t *r;
    ck_assert_int_eq(scn_run_new(s, 0, 1, &r, &d), 0);
    char err[256] = "";
    ck_assert_ptr_null(rep_capture_new(r, "/nonexistent-dir/x/trace.pcap", 0, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/x/trace.pcap"));
    ck_assert_ptr_null(rep_capture_new(r, "", 0, err, sizeof err));
    ck_assert_ptr_null(rep_capture_new(NULL, "x.pcap", 0, err, sizeof err));
    rep_capture_opts_t o = { .nodes = "web,,r1" };
    ck_assert_ptr_null(rep_capture_open(r, NULL, &o, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "empty node pattern"));
    size_t n = 1;
    rep_hop_t h[2];
    ck_assert_int_eq(rep_capture_hops(NULL, r, h, 2, &n, NULL, 0), LB_EINVAL);
    ck_assert_int_eq(rep_capture_collect(NULL, r, NULL), LB_EINVAL);
    rep_capture_free(NULL);
    ck_assert_int_eq(rep_capture_close(NULL, err, sizeof err), 0);
    /* out of sink slots: an error, and the run still executes with the ones attached */
    rep_capture_t *caps[SCN_MAX_SINKS + 1];
    int k = 0;
    while (k <= SCN_MAX_SINKS && (caps[k] = rep_capture_new(r, NULL, 0, err, sizeof err))) k++;
    ck_assert_int_ge(k, 1);
    ck_assert_int_le(k, SCN_MAX_SINKS);
    ck_assert_ptr_nonnull(strstr(err, "slot"));
    ck_assert_int_eq(scn_run_execute(r, NULL, NULL), 0);
    for (int i = 0; i < k; i++) {
        ck_assert_int_eq(rep_capture_hops(caps[i], r, h, 2, &n, NULL, 0), 0);
        ck_assert_uint_eq(n, 2);                /* truncated to max */
        rep_capture_free(caps[i]);
    }
    scn_run_free(r);
    scn_free(s);
}
END_TEST

/* ---- the hop recorder on core-nat --------------------------------------------------------- */

/* client0 -200us- r1 -100us- nat -100us- web0 (1 / 10 / 10 Gbps); MASQUERADE at nat, so
 * the response comes back the same way: web0 -> nat -> r1 -> client0. */
START_TEST(hops_core_nat)
{
    scn_t *s;
    scn_diag_t d;
    ck_assert_int_eq(scn_load("scenarios/core-nat.yaml", &s, &d, NULL), 0);
    int v = scn_variant_find(s, "masquerade");
    ck_assert_int_ge(v, 0);
    scn_run_t *r;
    ck_assert_int_eq(scn_run_new(s, (size_t)v, scn_seed(s), &r, &d), 0);
    char err[256];
    rep_capture_t *c = rep_capture_new(r, NULL, 0, err, sizeof err);    /* hops only */
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(scn_run_execute(r, NULL, NULL), 0);
    rep_hop_t h[32];
    size_t n = 0;
    char title[160];
    ck_assert_int_eq(rep_capture_hops(c, r, h, 32, &n, title, sizeof title), 0);
    static const char *want[] = { "client0", "client0 (connected)", "r1", "nat", "web0",
                                  "nat", "r1", "client0" };
    ck_assert_uint_eq(n, 8);
    for (size_t i = 0; i < n; i++) ck_assert_str_eq(h[i].where, want[i]);
    /* handshake: SYN and SYN-ACK of 60 bytes over 200+100+100 us at 1/10/10 Gbps */
    sim_time_t one_way = 200 * SIM_US + 480 + 2 * (100 * SIM_US + 48);
    ck_assert_int_eq(h[1].t - h[0].t, 2 * one_way);
    /* the request (107 bytes) leaves behind the handshake's ACK (52 bytes): at r1 after
     * 200 us + (52 + 107) bytes at 1 Gbps, then 100 us + 107 bytes at 10 Gbps per hop */
    ck_assert_int_eq(h[2].t - h[1].t, 200 * SIM_US + (52 + 107) * 8);
    ck_assert_int_eq(h[3].t - h[2].t, 100 * SIM_US + 86);
    ck_assert_int_eq(h[4].t - h[3].t, 100 * SIM_US + 86);
    /* the response's first byte (a full 1500-byte segment) on the way back */
    ck_assert_int_gt(h[5].t, h[4].t);
    ck_assert_int_eq(h[6].t - h[5].t, 100 * SIM_US + 1200);
    ck_assert_int_eq(h[7].t - h[6].t, 200 * SIM_US + 12000);
    unsigned long long flow;
    double ms;
    ck_assert_int_eq(sscanf(title, "GET / (flow %llu): %lf ms", &flow, &ms), 2);
    ck_assert_uint_eq(flow, 1);
    ck_assert(ms * SIM_MS >= (double)(h[7].t - h[0].t) - 500);  /* to the last byte */

    rep_variant_t rv;
    memset(&rv, 0, sizeof rv);
    ck_assert_int_eq(rep_capture_collect(c, r, &rv), 0);
    ck_assert_uint_eq(rv.n_hops, 8);
    ck_assert_str_eq(rv.hops[4].where, "web0");
    ck_assert_str_eq(rv.hops_title, title);
    lb_free(rv.hops);
    rep_capture_free(c);
    scn_run_free(r);

    /* without MASQUERADE nothing succeeds: no path */
    v = scn_variant_find(s, "no-masquerade");
    ck_assert_int_eq(scn_run_new(s, (size_t)v, scn_seed(s), &r, &d), 0);
    c = rep_capture_new(r, NULL, 0, err, sizeof err);
    ck_assert_int_eq(scn_run_execute(r, NULL, NULL), 0);
    n = 5;
    ck_assert_int_eq(rep_capture_hops(c, r, h, 32, &n, title, sizeof title), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_str_eq(title, "");
    rep_capture_free(c);
    scn_run_free(r);
    scn_free(s);
}
END_TEST

Suite *suite_capture(void)
{
    Suite *s = suite_create("capture");
    TCase *tc = tcase_create("pcap");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, small_scenario_packets);
    tcase_add_test(tc, same_run_same_bytes);
    tcase_add_test(tc, only_flow_and_nodes);
    tcase_add_test(tc, size_guard);
    tcase_add_test(tc, every_node_or_distinct);
    tcase_add_test(tc, bad_input);
    suite_add_tcase(s, tc);
    TCase *th = tcase_create("hops");
    tcase_set_timeout(th, 30);
    tcase_add_test(th, hops_core_nat);
    suite_add_tcase(s, th);
    return s;
}
