/* capture.c -- trace.pcap (libpcap's writer, raw IPv4 with synthesised headers and HTTP
 * text) and the hop recorder behind the per-hop latency plot; a sink of the run
 * (include/capture.h says what the file holds and why).
 *
 * Data structures:
 *   seen[]   direct-mapped by packet id: where and with which addresses a packet was last
 *            written, so that a packet is written again only when NAT changed it (unless
 *            every_node) and a packet lost at a node it was written at is not written
 *            twice. A collision only costs a duplicate copy in the file.
 *   q[]      packets on their way to the file, their bytes in arena[] (see the writer).
 *   flows[]  open-addressed set of the flows the hop recorder follows (the first
 *            REP_CAPTURE_HOP_FLOWS seen); recs[] their packets in arrival (= time) order.
 *   cands[]  the first successful requests on followed flows, with the chain of upstream
 *            flows that served them, taken from the explanation layer when they ended. */
#include <assert.h>
#include <errno.h>
#include <fnmatch.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "capture.h"
#include "explain.h"
#include "http.h"
#include "tls.h"

/* Window scale a SYN announces: Linux picks the smallest shift that fits tcp_rmem[2]
 * (6 MB by default, tcp.h) in 16 bits, i.e. 7 (tcp_select_initial_window). */
#define CAP_TCP_WSCALE 7
/* MSS announced when a SYN carries none: tcp.h's default (1500-byte MTU). */
#define CAP_TCP_MSS_DEFAULT 1460
#define CAP_PCAP_FILE_HDR 24            /* struct pcap_file_header */
#define CAP_PCAP_REC_HDR 16             /* per-record header in the file */
#define CAP_SEEN_SLOTS 4096             /* power of two */
#define CAP_FLOW_SLOTS (4 * REP_CAPTURE_HOP_FLOWS)
#define CAP_CANDIDATES 4                /* successful requests kept to choose from */
#define CAP_CHAIN_MAX 8                 /* client flow + upstream flows followed */
#define CAP_NODES_MAX 32                /* distinct nodes one flow's byte may reach */
#define CAP_METHODS 16
#define CAP_QUEUE_PKTS 4096             /* packets waiting to be written; power of two */
#define CAP_QUEUE_BYTES (4u << 20)      /* their bytes */
#define CAP_QUEUE_HOLD (1 * SIM_S)      /* longest wait of a segment for its message */
#define CAP_DONE_MSGS 64                /* messages that ended, kept for late segments */

typedef struct seen {
    uint64_t id;                        /* packet id + 1 (0: empty) */
    const char *where;
    uint32_t src, dst;
    uint16_t sport, dport;
} seen_t;

enum { REC_PLAIN, REC_REQUEST, REC_RESPONSE };

typedef struct hrec {
    uint64_t flow;
    const char *where;                  /* node name, alive as long as the run */
    sim_time_t t;
    uint64_t req_id;                    /* of the HTTP message ending here, else 0 */
    uint32_t seq, len, msg_size;
    uint8_t flags, kind, method;
} hrec_t;

typedef struct cand {
    uint64_t flow, req_id;
    sim_time_t t_start, t_end;
    int source;
    char path[96];
    uint64_t chain[CAP_CHAIN_MAX];
    size_t n_chain;
} cand_t;

/* A packet waiting to be written: its bytes are arena[off, off + caplen). */
typedef struct qent {
    sim_time_t t;
    uint32_t wire, caplen, off;
    uint64_t flow;
    uint32_t seq, len;                  /* TCP: its payload's sequence range */
    uint32_t pay;                       /* offset of the TCP payload in the packet */
    bool pending;                       /* payload waits for its message */
} qent_t;

/* A message whose last segment was seen: sequence numbers [first, end) on flow. */
typedef struct done { uint64_t flow; uint32_t first, end; net_msg_t *m; } done_t;

typedef struct nodesel { const char *name; bool on; } nodesel_t;

struct rep_capture {
    scn_run_t *run;                     /* attached to (NULL until the sink is) */
    explain_t *ex;
    metrics_t *m;
    /* the file */
    pcap_t *pd;
    pcap_dumper_t *dump;
    char *path, *tmp;
    bool closed;
    int werr;                           /* errno of the first failed write; then no more */
    uint64_t only_flow;
    bool every_node;
    char **globs;                       /* NULL: every node */
    size_t n_globs;
    nodesel_t *sel;                     /* node name pointers sorted, with the verdict */
    size_t n_sel;
    uint64_t max_packets, max_bytes;
    rep_capture_stats_t st;
    seen_t seen[CAP_SEEN_SLOTS];
    qent_t q[CAP_QUEUE_PKTS];           /* FIFO: entries [q_head, q_tail) mod size */
    uint64_t q_head, q_tail;
    uint8_t *arena;                     /* CAP_QUEUE_BYTES */
    uint32_t a_tail;                    /* end of the newest entry's bytes */
    size_t n_pending;
    done_t done[CAP_DONE_MSGS];
    size_t done_next;
    LB_VEC(char) text;                  /* an HTTP message's start line and headers */
    /* the hop recorder */
    uint64_t flows[CAP_FLOW_SLOTS];     /* flow ids; 0: empty */
    size_t n_flows;
    LB_VEC(hrec_t) recs;
    bool hops_done;                     /* enough candidates: stop recording */
    cand_t cands[CAP_CANDIDATES];
    size_t n_cands;
    char methods[CAP_METHODS][8];
    size_t n_methods;
};

/* ---- helpers: bytes, checksums ------------------------------------------------------ */

static void put16(uint8_t *b, uint32_t v) { b[0] = (uint8_t)(v >> 8); b[1] = (uint8_t)v; }
static void put32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24); b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8); b[3] = (uint8_t)v;
}

/* One's-complement sum of n bytes (RFC 1071), to be folded by csum_fold. */
static uint64_t csum_add(uint64_t sum, const uint8_t *b, size_t n)
{
    size_t i = 0;
    for (; i + 1 < n; i += 2) sum += (uint32_t)b[i] << 8 | b[i + 1];
    if (i < n) sum += (uint32_t)b[i] << 8;
    return sum;
}

static uint16_t csum_fold(uint64_t sum)
{
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static uint64_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, uint32_t len)
{
    return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

/* An IPv4 header at b (20 bytes, no options). */
static void ip_header(uint8_t *b, uint32_t total, uint16_t id, bool df, uint8_t ttl,
                      uint8_t proto, uint32_t src, uint32_t dst)
{
    b[0] = 0x45;
    b[1] = 0;
    put16(b + 2, total > 0xffff ? 0xffff : total);
    put16(b + 4, id);
    put16(b + 6, df ? 0x4000 : 0);
    b[8] = ttl;
    b[9] = proto;
    put16(b + 10, 0);
    put32(b + 12, src);
    put32(b + 16, dst);
    put16(b + 10, csum_fold(csum_add(0, b, NET_IP_HDR)));
}

/* ---- HTTP text ----------------------------------------------------------------------- */

static void text_add(rep_capture_t *c, const char *s, size_t n)
{
    lb_vec_reserve(&c->text, c->text.n + n + 1);
    memcpy(c->text.v + c->text.n, s, n);
    c->text.n += n;
}
static void text_str(rep_capture_t *c, const char *s) { text_add(c, s, strlen(s)); }
static void text_header(rep_capture_t *c, const char *name, const char *value)
{
    text_str(c, name);
    text_add(c, ": ", 2);
    text_str(c, value ? value : "");
    text_add(c, "\r\n", 2);
}

/* Builds the message's start line and header block into c->text, in the order and with
 * the lines http_msg_update counts (src/net/http_msg.c). */
static void http_head(rep_capture_t *c, const http_msg_t *m)
{
    char line[64];
    c->text.n = 0;
    bool clen;
    if (m->is_request) {
        text_str(c, m->method);
        text_add(c, " ", 1);
        text_str(c, m->path ? m->path : "/");
        text_add(c, " HTTP/1.1\r\n", 11);
        if (m->host) text_header(c, "Host", m->host);
        clen = m->body_size > 0;
    } else {
        snprintf(line, sizeof line, "HTTP/1.1 %d ", m->status);
        text_str(c, line);
        text_str(c, http_reason_phrase(m->status));
        text_add(c, "\r\n", 2);
        /* bodyless statuses (RFC 9110 6.4.1), as http_msg_update */
        clen = !((m->status >= 100 && m->status < 200) || m->status == 204 ||
                 m->status == 304);
    }
    for (int i = 0; i < m->n_headers; i++)
        text_header(c, m->headers[i].name, m->headers[i].value);
    if (clen) {
        snprintf(line, sizeof line, "%lu", (unsigned long)m->body_size);
        text_header(c, "Content-Length", line);
    }
    text_add(c, "\r\n", 2);
}

/* Writes bytes [moff, moff + n) of message m (m->base.size bytes on the wire) into out:
 * the text prepared by http_head (c->text), then the body text, then zeros up to
 * body_size, aligned to the end of the message. Bytes outside the message, or before its
 * text, are left as they are (zero). */
static void http_fill(const rep_capture_t *c, const http_msg_t *m, int64_t moff,
                      uint8_t *out, uint32_t n)
{
    int64_t h = (int64_t)c->text.n, size = m->base.size;
    int64_t blen = m->body ? (int64_t)strlen(m->body) : 0;
    if (blen > (int64_t)m->body_size) blen = m->body_size;
    int64_t lead = size - (h + (int64_t)m->body_size);  /* message bytes before the text */
    for (uint32_t j = 0; j < n; j++) {
        int64_t i = moff + j, k = i - lead;
        if (i < 0 || i >= size || k < 0) continue;
        if (k < h) out[j] = (uint8_t)c->text.v[k];
        else if (k - h < blen) out[j] = (uint8_t)m->body[k - h];
    }
}

/* ---- packets on the wire ------------------------------------------------------------- */

/* Recomputes the TCP checksum of the packet at b (captured in full). */
static void tcp_csum(uint8_t *b, uint32_t wire)
{
    uint8_t *l4 = b + NET_IP_HDR;
    uint32_t l4len = wire - NET_IP_HDR;
    uint32_t src = (uint32_t)b[12] << 24 | b[13] << 16 | b[14] << 8 | b[15];
    uint32_t dst = (uint32_t)b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
    put16(l4 + 16, 0);
    put16(l4 + 16, csum_fold(csum_add(pseudo_sum(src, dst, NET_PROTO_TCP, l4len), l4, l4len)));
}

/* Builds p's bytes into b (min(wire, REP_CAPTURE_SNAPLEN) bytes); returns the offset of
 * the TCP payload (0 for other protocols). */
static uint32_t build_packet(rep_capture_t *c, sim_time_t t, const pkt_t *p, uint8_t *b)
{
    uint32_t wire = pkt_wire_bytes(p);
    uint32_t cap = wire < REP_CAPTURE_SNAPLEN ? wire : REP_CAPTURE_SNAPLEN;
    memset(b, 0, cap);
    uint8_t *l4 = b + NET_IP_HDR;
    uint32_t l4len = wire - NET_IP_HDR;
    uint32_t room = cap - NET_IP_HDR;       /* bytes of l4 that fit in the buffer */
    uint32_t pay = 0;
    ip_header(b, wire, (uint16_t)p->id, p->proto == NET_PROTO_TCP, p->ttl, p->proto,
              p->src, p->dst);
    if (p->proto == NET_PROTO_TCP) {
        bool syn = p->tcp_flags & TCP_SYN;
        uint32_t opts = syn ? NET_TCP_SYN_OPTS : NET_TCP_OPTS, hl = NET_TCP_HDR + opts;
        put16(l4, p->sport);
        put16(l4 + 2, p->dport);
        put32(l4 + 4, p->seq);
        put32(l4 + 8, (p->tcp_flags & TCP_ACK) ? p->ack : 0);
        l4[12] = (uint8_t)((hl / 4) << 4);
        l4[13] = p->tcp_flags;
        uint32_t win = syn ? p->win : p->win >> CAP_TCP_WSCALE;
        put16(l4 + 14, win > 0xffff ? 0xffff : win);
        uint8_t *o = l4 + NET_TCP_HDR;
        uint32_t tsval = (uint32_t)(t / SIM_MS);
        if (syn) {          /* Linux: MSS, SACK_PERM, TS, NOP, WS (tcp_options_write) */
            o[0] = 2; o[1] = 4; put16(o + 2, p->mss ? p->mss : CAP_TCP_MSS_DEFAULT);
            o[4] = 4; o[5] = 2;
            o[6] = 8; o[7] = 10; put32(o + 8, tsval); put32(o + 12, 0);
            o[16] = 1;
            o[17] = 3; o[18] = 3; o[19] = CAP_TCP_WSCALE;
        } else {            /* NOP NOP TS */
            o[0] = 1; o[1] = 1; o[2] = 8; o[3] = 10; put32(o + 4, tsval); put32(o + 8, 0);
        }
        pay = NET_IP_HDR + hl;
        http_msg_t *hm = http_msg_from(p->msg);
        if (hm && p->len && hl + p->len <= room) {
            http_head(c, hm);
            http_fill(c, hm, (int64_t)hm->base.size - p->len, l4 + hl, p->len);
        } else if (p->msg && p->msg->kind == NET_MSG_TLS && p->len && hl + p->len <= room) {
            tls_msg_bytes(p->msg, p->msg->size - p->len, l4 + hl, p->len);   /* TLS records */
        }
        if (l4len <= room) tcp_csum(b, wire);
    } else if (p->proto == NET_PROTO_UDP) {
        put16(l4, p->sport);
        put16(l4 + 2, p->dport);
        put16(l4 + 4, l4len > 0xffff ? 0xffff : l4len);
        if (l4len <= room) {
            uint16_t s = csum_fold(csum_add(pseudo_sum(p->src, p->dst, NET_PROTO_UDP, l4len),
                                            l4, l4len));
            put16(l4 + 6, s ? s : 0xffff);
        }
    } else if (p->proto == NET_PROTO_ICMP) {
        l4[0] = p->icmp_type;
        l4[1] = p->icmp_code;
        /* the quoted header of the offending packet (RFC 792): IP + 8 bytes */
        uint8_t *q = l4 + 8;
        uint32_t qlen = NET_IP_HDR + (p->inner.proto == NET_PROTO_TCP ? NET_TCP_HDR : 8);
        ip_header(q, qlen, 0, p->inner.proto == NET_PROTO_TCP,
                  p->icmp_type == ICMP_TIME_EXCEEDED ? 1 : 64, p->inner.proto,
                  p->inner.src, p->inner.dst);
        put16(q + NET_IP_HDR, p->inner.sport);
        put16(q + NET_IP_HDR + 2, p->inner.dport);
        if (p->inner.proto == NET_PROTO_UDP) put16(q + NET_IP_HDR + 4, 8);
        if (l4len <= room) put16(l4 + 2, csum_fold(csum_add(0, l4, l4len)));
    }
    return pay;
}

/* ---- filters --------------------------------------------------------------------------- */

static bool glob_match(const rep_capture_t *c, const char *where)
{
    for (size_t i = 0; i < c->n_globs; i++)
        if (fnmatch(c->globs[i], where, 0) == 0) return true;
    return false;
}

static int sel_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const nodesel_t *)a)->name;
    uintptr_t y = (uintptr_t)((const nodesel_t *)b)->name;
    return x < y ? -1 : x > y;
}

/* Whether packets at `where` are written: the node's precomputed verdict (found by its
 * name pointer), else the globs themselves (the "network" pseudo-node). */
static bool node_on(const rep_capture_t *c, const char *where)
{
    if (!c->globs) return true;
    nodesel_t key = { where, false };
    const nodesel_t *s = bsearch(&key, c->sel, c->n_sel, sizeof key, sel_cmp);
    return s ? s->on : glob_match(c, where);
}

/* ---- the writer ------------------------------------------------------------------------
 * Packets wait in a FIFO before they go to the file, so that a segment holding the start
 * of a message longer than one segment can get its text once the message's last segment
 * (which carries the message) shows up: on any node, or already seen (done[]). A waiting
 * segment holds the queue for at most CAP_QUEUE_HOLD of simulated time (a lost last
 * segment, a reset), then goes out with zeros; so does anything the queue cannot hold. */

static void dump_head(rep_capture_t *c)
{
    assert(c->q_head != c->q_tail);
    qent_t *e = &c->q[c->q_head & (CAP_QUEUE_PKTS - 1)];
    struct pcap_pkthdr h;
    memset(&h, 0, sizeof h);
    h.ts.tv_sec = (time_t)(e->t / SIM_S);
    h.ts.tv_usec = (suseconds_t)(e->t % SIM_S);    /* ns: the dump is nano-precision */
    h.caplen = e->caplen;
    h.len = e->wire;
    /* pcap_dump is fwrite underneath and says nothing: the stream's error flag right
     * after the call keeps the real errno (ENOSPC on a full disk), not a later EIO */
    if (!c->werr) {
        errno = 0;
        pcap_dump((u_char *)c->dump, &h, c->arena + e->off);
        if (ferror(pcap_dump_file(c->dump))) c->werr = errno ? errno : EIO;
    }
    if (e->pending) c->n_pending--;
    c->q_head++;
    if (c->q_head == c->q_tail) c->q_head = c->q_tail = c->a_tail = 0;
}

/* Writes out the queue's head while it waits for nothing, or waited long enough. */
static void dump_ready(rep_capture_t *c, sim_time_t now)
{
    while (c->q_head != c->q_tail) {
        const qent_t *e = &c->q[c->q_head & (CAP_QUEUE_PKTS - 1)];
        if (e->pending && now - e->t < CAP_QUEUE_HOLD) break;
        dump_head(c);
    }
}

/* Room for n bytes in the arena (a ring of variable-size records, never split): its
 * offset, after writing out old packets when there is none. */
static uint32_t arena_take(rep_capture_t *c, uint32_t n)
{
    while (true) {
        if (c->q_head == c->q_tail) {
            c->a_tail = n;
            return 0;
        }
        uint32_t h = c->q[c->q_head & (CAP_QUEUE_PKTS - 1)].off, t = c->a_tail;
        if (c->q_tail - c->q_head < CAP_QUEUE_PKTS) {
            if (t >= h && CAP_QUEUE_BYTES - t >= n) { c->a_tail = t + n; return t; }
            if (t >= h && n < h) { c->a_tail = n; return 0; }
            if (t < h && h - t > n) { c->a_tail = t + n; return t; }
        }
        dump_head(c);
    }
}

/* Fills queued segment e from message m whose first byte has sequence number `first`. */
static void fill_entry(rep_capture_t *c, qent_t *e, net_msg_t *m, uint32_t first)
{
    assert(e->pending && c->n_pending > 0);
    const http_msg_t *hm = http_msg_from(m);
    if (hm) {
        uint8_t *b = c->arena + e->off;
        http_fill(c, hm, (int64_t)(uint32_t)(e->seq - first), b + e->pay, e->len);
        tcp_csum(b, e->wire);
    } else if (m->kind == NET_MSG_TLS) {
        uint8_t *b = c->arena + e->off;
        tls_msg_bytes(m, (uint32_t)(e->seq - first), b + e->pay, e->len);
        tcp_csum(b, e->wire);
    }
    e->pending = false;
    c->n_pending--;
}

/* A message ended (its last segment is p): fills the waiting segments it covers and
 * remembers it for segments of it that are still on their way to other nodes. */
static void msg_ended(rep_capture_t *c, const pkt_t *p)
{
    uint32_t first = p->seq + p->len - p->msg->size, end = p->seq + p->len;
    http_msg_t *hm = http_msg_from(p->msg);
    if (c->n_pending) {
        if (hm) http_head(c, hm);
        for (uint64_t i = c->q_head; i != c->q_tail; i++) {
            qent_t *e = &c->q[i & (CAP_QUEUE_PKTS - 1)];
            if (e->pending && e->flow == p->flow && (uint32_t)(e->seq - first) < end - first)
                fill_entry(c, e, p->msg, first);
        }
    }
    for (size_t i = 0; i < CAP_DONE_MSGS; i++)
        if (c->done[i].m && c->done[i].flow == p->flow && c->done[i].first == first) return;
    done_t *d = &c->done[c->done_next++ % CAP_DONE_MSGS];
    net_msg_unref(d->m);
    *d = (done_t){ p->flow, first, end, net_msg_ref(p->msg) };
}

static void write_packet(rep_capture_t *c, sim_time_t t, const char *where, const pkt_t *p,
                         bool lost)
{
    seen_t *s = &c->seen[p->id & (CAP_SEEN_SLOTS - 1)];
    bool same = s->id == p->id + 1;
    if (same && lost && strcmp(s->where, where) == 0) return;      /* written there */
    if (same && !c->every_node && s->src == p->src && s->dst == p->dst &&
        s->sport == p->sport && s->dport == p->dport)
        return;
    *s = (seen_t){ p->id + 1, where, p->src, p->dst, p->sport, p->dport };
    uint32_t wire = pkt_wire_bytes(p);
    uint32_t caplen = wire < REP_CAPTURE_SNAPLEN ? wire : REP_CAPTURE_SNAPLEN;
    if (c->st.limited || c->st.packets >= c->max_packets ||
        c->st.bytes + CAP_PCAP_REC_HDR + caplen > c->max_bytes) {
        if (!c->st.limited) {
            c->st.limited = true;
            c->st.limit_t = t;
        }
        c->st.over_limit++;
        return;
    }
    uint32_t off = arena_take(c, caplen);
    qent_t *e = &c->q[c->q_tail++ & (CAP_QUEUE_PKTS - 1)];
    *e = (qent_t){ t, wire, caplen, off, p->flow, p->seq, p->len, 0, false };
    e->pay = build_packet(c, t, p, c->arena + off);
    c->st.packets++;
    c->st.bytes += CAP_PCAP_REC_HDR + caplen;
    if (lost) c->st.lost_written++;
    if (p->proto == NET_PROTO_TCP && p->len && e->pay && e->pay + p->len <= caplen) {
        if (p->msg) {
            msg_ended(c, p);
        } else {                                /* part of a message still to come */
            e->pending = true;
            c->n_pending++;
            for (size_t i = 0; i < CAP_DONE_MSGS; i++) {
                const done_t *d = &c->done[i];
                if (d->m && d->flow == p->flow && (uint32_t)(p->seq - d->first) <
                    d->end - d->first) {
                    if (http_msg_from(d->m)) http_head(c, http_msg_from(d->m));
                    fill_entry(c, e, d->m, d->first);
                    break;
                }
            }
        }
    }
    dump_ready(c, t);
}

/* ---- the hop recorder ---------------------------------------------------------------- */

/* The slot of flow f in the set, or of the empty place where it would go. */
static size_t flow_slot(const rep_capture_t *c, uint64_t f)
{
    size_t i = lb_mix64(f) & (CAP_FLOW_SLOTS - 1);
    while (c->flows[i] && c->flows[i] != f) i = (i + 1) & (CAP_FLOW_SLOTS - 1);
    return i;
}

static bool flow_followed(const rep_capture_t *c, uint64_t f)
{
    return f && c->flows[flow_slot(c, f)] == f;
}

static uint8_t method_index(rep_capture_t *c, const char *method)
{
    for (size_t i = 0; i < c->n_methods; i++)
        if (strcmp(c->methods[i], method) == 0) return (uint8_t)i;
    if (c->n_methods == CAP_METHODS) return 0;
    snprintf(c->methods[c->n_methods], sizeof c->methods[0], "%s", method);
    return (uint8_t)c->n_methods++;
}

static void record_hop(rep_capture_t *c, sim_time_t t, const char *where, const pkt_t *p)
{
    if (c->hops_done || p->proto != NET_PROTO_TCP || !p->flow) return;
    if (c->recs.n >= REP_CAPTURE_HOP_RECORDS) return;
    size_t i = flow_slot(c, p->flow);
    if (c->flows[i] != p->flow) {
        if (c->n_flows >= REP_CAPTURE_HOP_FLOWS) return;
        c->flows[i] = p->flow;
        c->n_flows++;
    }
    hrec_t r = { p->flow, where, t, 0, p->seq, p->len, 0, p->tcp_flags, REC_PLAIN, 0 };
    http_msg_t *m = http_msg_from(p->msg);
    if (m && p->len) {
        r.kind = m->is_request ? REC_REQUEST : REC_RESPONSE;
        r.req_id = m->req_id;
        r.msg_size = m->base.size;
        if (m->is_request) r.method = method_index(c, m->method);
    }
    lb_vec_push(&c->recs, r);
}

/* ---- sink callbacks -------------------------------------------------------------------- */

static void on_packet(void *data, sim_time_t t, const char *where, const pkt_t *p)
{
    rep_capture_t *c = data;
    record_hop(c, t, where, p);
    if (!c->dump || (c->only_flow && p->flow != c->only_flow)) return;
    if (!node_on(c, where)) return;
    write_packet(c, t, where, p, false);
}

static void on_drop(void *data, sim_time_t t, const char *where, const pkt_t *p,
                    const char *reason, const char *detail)
{
    (void)reason; (void)detail;
    rep_capture_t *c = data;
    if (!c->dump || !p || (c->only_flow && p->flow != c->only_flow)) return;
    if (!where) where = "network";
    if (!node_on(c, where)) return;
    write_packet(c, t, where, p, true);
}

static void on_request(void *data, const m_request_t *q)
{
    rep_capture_t *c = data;
    if (q->cls != M_2XX || c->n_cands >= CAP_CANDIDATES || !flow_followed(c, q->flow))
        return;
    cand_t *k = &c->cands[c->n_cands++];
    memset(k, 0, sizeof *k);
    k->flow = q->flow;
    k->req_id = q->req_id;
    k->t_start = q->t_start;
    k->t_end = q->t_end;
    k->source = q->source;
    snprintf(k->path, sizeof k->path, "%s", q->path ? q->path : "/");
    /* the upstream flows serving it: the latest link of each flow is this request's,
     * since HTTP/1.1 serves one request at a time per connection */
    uint64_t f = q->flow;
    while (f && k->n_chain < CAP_CHAIN_MAX) {
        bool again = false;
        for (size_t i = 0; i < k->n_chain; i++) again |= k->chain[i] == f;
        if (again) break;
        k->chain[k->n_chain++] = f;
        f = explain_flow_up(c->ex, f);
    }
    if (c->n_cands == CAP_CANDIDATES) c->hops_done = true;
}

/* ---- life cycle ------------------------------------------------------------------------ */

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen) snprintf(err, errlen, fmt, a, b);
}

/* Splits "a,b" into globs; false on an empty item. */
static bool parse_globs(rep_capture_t *c, const char *spec)
{
    const char *s = spec;
    while (true) {
        size_t n = strcspn(s, ",");
        while (n && (*s == ' ')) { s++; n--; }
        size_t k = n;
        while (k && s[k - 1] == ' ') k--;
        if (!k) return false;
        c->globs = lb_realloc(c->globs, (c->n_globs + 1) * sizeof *c->globs);
        c->globs[c->n_globs++] = lb_strndup(s, k);
        if (!s[n]) return true;
        s += n + 1;
    }
}

static void free_fields(rep_capture_t *c)
{
    for (size_t i = 0; i < c->n_globs; i++) lb_free(c->globs[i]);
    lb_free(c->globs);
    lb_free(c->sel);
    for (size_t i = 0; i < CAP_DONE_MSGS; i++) net_msg_unref(c->done[i].m);
    lb_free(c->arena);
    lb_free(c->path);
    lb_free(c->tmp);
    lb_vec_free(&c->text);
    lb_vec_free(&c->recs);
    lb_free(c);
}

rep_capture_t *rep_capture_open(scn_run_t *r, const char *pcap_path,
                                const rep_capture_opts_t *o, char *err, size_t errlen)
{
    rep_capture_opts_t def = {0};
    if (!o) o = &def;
    if (!r || (pcap_path && !*pcap_path)) {
        set_err(err, errlen, "capture: %s%s", "no run or an empty file name", "");
        return NULL;
    }
    rep_capture_t *c = lb_calloc(1, sizeof *c);
    c->ex = scn_run_explain(r);
    c->m = scn_run_metrics(r);
    c->only_flow = o->only_flow;
    c->every_node = o->every_node;
    c->max_packets = o->max_packets ? o->max_packets : REP_CAPTURE_MAX_PACKETS;
    c->max_bytes = o->max_bytes ? o->max_bytes : REP_CAPTURE_MAX_BYTES;
    if (o->nodes && *o->nodes) {
        if (!parse_globs(c, o->nodes)) {
            set_err(err, errlen, "capture: empty node pattern in \"%s\"%s", o->nodes, "");
            free_fields(c);
            return NULL;
        }
        net_t *net = scn_run_net(r);
        c->n_sel = net_node_count(net);
        c->sel = lb_calloc(c->n_sel ? c->n_sel : 1, sizeof *c->sel);
        for (size_t i = 0; i < c->n_sel; i++) {
            const char *name = net_node_at(net, i)->name;
            c->sel[i] = (nodesel_t){ name, glob_match(c, name) };
        }
        qsort(c->sel, c->n_sel, sizeof *c->sel, sel_cmp);
    }
    if (pcap_path) {
        c->path = lb_strdup(pcap_path);
        const char *slash = strrchr(pcap_path, '/');
        size_t dl = slash ? (size_t)(slash - pcap_path + 1) : 0;
        c->tmp = lb_sprintf("%.*s.%s.tmp", (int)dl, pcap_path, pcap_path + dl);
        c->pd = pcap_open_dead_with_tstamp_precision(DLT_RAW, REP_CAPTURE_SNAPLEN,
                                                     PCAP_TSTAMP_PRECISION_NANO);
        if (!c->pd) {
            set_err(err, errlen, "%s: %s", pcap_path, "pcap_open_dead failed");
            free_fields(c);
            return NULL;
        }
        c->dump = pcap_dump_open(c->pd, c->tmp);
        if (!c->dump) {
            set_err(err, errlen, "%s: %s", pcap_path, pcap_geterr(c->pd));
            pcap_close(c->pd);
            free_fields(c);
            return NULL;
        }
        c->st.bytes = CAP_PCAP_FILE_HDR;
        c->arena = lb_malloc(CAP_QUEUE_BYTES);
    } else {
        c->closed = true;
    }
    /* the sink first (its only failure: no slot, then nothing is attached), then the
     * request hook the hop recorder needs; without that the pcap still works */
    scn_sink_t sink = {0};
    sink.packet = on_packet;
    sink.drop = on_drop;
    sink.data = c;
    if (scn_run_add_sink(r, &sink)) {
        set_err(err, errlen, "capture: %s%s", "no sink slot left on the run", "");
        if (c->dump) {
            pcap_dump_close(c->dump);
            unlink(c->tmp);
        }
        if (c->pd) pcap_close(c->pd);
        free_fields(c);
        return NULL;
    }
    c->run = r;
    m_hooks_t hooks = {0};
    hooks.request = on_request;
    hooks.data = c;
    if (!c->m || metrics_add_hooks(c->m, &hooks)) c->hops_done = true;
    return c;
}

rep_capture_t *rep_capture_new(scn_run_t *r, const char *pcap_path, uint64_t only_flow,
                               char *err, size_t errlen)
{
    rep_capture_opts_t o = {0};
    o.only_flow = only_flow;
    return rep_capture_open(r, pcap_path, &o, err, errlen);
}

void rep_capture_stats(const rep_capture_t *c, rep_capture_stats_t *out)
{
    *out = c->st;
    out->hop_flows = c->n_flows;
    out->hop_records = c->recs.n;
}

int rep_capture_close(rep_capture_t *c, char *err, size_t errlen)
{
    if (!c || c->closed) return 0;
    c->closed = true;
    int rc = 0;
    while (c->q_head != c->q_tail) dump_head(c);
    errno = 0;
    if (!c->werr && (pcap_dump_flush(c->dump) != 0 || ferror(pcap_dump_file(c->dump))))
        c->werr = errno ? errno : EIO;
    pcap_dump_close(c->dump);
    c->dump = NULL;
    pcap_close(c->pd);
    c->pd = NULL;
    if (!c->werr && rename(c->tmp, c->path) != 0) c->werr = errno;
    if (c->werr) {
        rc = LB_EIO;
        set_err(err, errlen, "%s: %s", c->path, strerror(c->werr));
        unlink(c->tmp);
        return rc;
    }
    if (c->st.limited) {
        char ts[32];
        fprintf(stderr, "sim: %s: stopped at %llu packets / %llu bytes at %s (size guard); "
                "%llu more packets not written\n", c->path,
                (unsigned long long)c->st.packets, (unsigned long long)c->st.bytes,
                sim_time_str(c->st.limit_t, ts), (unsigned long long)c->st.over_limit);
    }
    return 0;
}

void rep_capture_free(rep_capture_t *c)
{
    if (!c) return;
    scn_run_remove_sink(c->run, c);     /* the sink and the request hook */
    char err[512];
    if (rep_capture_close(c, err, sizeof err)) fprintf(stderr, "sim: %s\n", err);
    free_fields(c);
}

/* ---- hops ------------------------------------------------------------------------------ */

typedef struct hop { const char *where; sim_time_t t; } hop_t;
typedef LB_VEC(hop_t) hops_t;

static bool seq_covers(uint32_t s, uint32_t seq, uint32_t len)
{
    return (uint32_t)(s - seq) < len;
}

/* The record of the message of `kind` serving the request on flow f, first at or after
 * `from`: the one with the request's req_id, else (a proxy that made a new message) the
 * first of that kind. NULL if none. */
static const hrec_t *find_msg(const rep_capture_t *c, uint64_t f, int kind, uint64_t req_id,
                              sim_time_t from)
{
    const hrec_t *any = NULL;
    for (size_t i = 0; i < c->recs.n; i++) {
        const hrec_t *r = &c->recs.v[i];
        if (r->flow != f || r->kind != kind || r->t < from) continue;
        if (r->req_id == req_id) return r;
        if (!any) any = r;
    }
    return any;
}

/* Appends, in time order, each node that the first byte of message m (on m's flow)
 * reached at or after `from`, with the time it first did. Returns the latest time, or
 * -1 when the byte was seen nowhere. */
static sim_time_t byte_hops(const rep_capture_t *c, const hrec_t *m, sim_time_t from,
                            hops_t *out)
{
    uint32_t first = m->seq + m->len - m->msg_size;
    const char *nodes[CAP_NODES_MAX];
    size_t nn = 0;
    sim_time_t last = -1;
    for (size_t i = 0; i < c->recs.n && nn < CAP_NODES_MAX; i++) {
        const hrec_t *r = &c->recs.v[i];
        if (r->flow != m->flow || r->t < from || !r->len || !seq_covers(first, r->seq, r->len))
            continue;
        bool have = false;
        for (size_t k = 0; k < nn && !have; k++) have = strcmp(nodes[k], r->where) == 0;
        if (have) continue;
        nodes[nn++] = r->where;
        hop_t h = { r->where, r->t };
        lb_vec_push(out, h);
        last = r->t;
    }
    return last;
}

int rep_capture_hops(rep_capture_t *c, scn_run_t *r, rep_hop_t *out, size_t max, size_t *n,
                     char *title, size_t tlen)
{
    if (!c || !n || (max && !out)) return LB_EINVAL;
    (void)r;        /* everything needed was taken from the run while it executed */
    *n = 0;
    if (title && tlen) title[0] = '\0';
    hops_t req = {0}, resp = {0};
    const cand_t *k = NULL;
    const hrec_t *first_req = NULL;
    for (size_t ci = 0; ci < c->n_cands && !k; ci++) {
        req.n = resp.n = 0;
        const cand_t *cd = &c->cands[ci];
        /* forward: each flow of the chain in turn, from where the previous one ended */
        sim_time_t at = cd->t_start;
        const hrec_t *msgs[CAP_CHAIN_MAX];
        size_t depth = 0;
        for (size_t i = 0; i < cd->n_chain; i++) {
            const hrec_t *m = find_msg(c, cd->chain[i], REC_REQUEST, cd->req_id, at);
            if (!m) break;
            sim_time_t t = byte_hops(c, m, at, &req);
            if (t < 0) break;
            msgs[depth++] = m;
            at = t;
        }
        if (!depth) continue;
        /* back: the response on each of those flows, innermost first */
        for (size_t i = depth; i-- > 0;) {
            const hrec_t *m = find_msg(c, msgs[i]->flow, REC_RESPONSE, cd->req_id, at);
            if (!m) break;
            sim_time_t t = byte_hops(c, m, at, &resp);
            if (t < 0) break;
            at = t;
        }
        k = cd;
        first_req = msgs[0];
    }
    if (!k) {
        lb_vec_free(&req);
        lb_vec_free(&resp);
        return 0;
    }
    /* the client: where the response came home, else the source's name */
    const char *client = resp.n ? resp.v[resp.n - 1].where : NULL;
    char cname[64];
    if (!client) {
        const char *src = c->m ? metrics_source_name(c->m, k->source) : NULL;
        snprintf(cname, sizeof cname, "%s", src ? src : "client");
        client = cname;
    }
    size_t w = 0;
    if (w < max) {
        snprintf(out[w].where, sizeof out[w].where, "%s", client);
        out[w++].t = k->t_start;
    }
    /* a handshake before the request: the SYN-ACK home last before the data went out */
    sim_time_t sent = -1;
    sim_time_t first_t = req.n ? req.v[0].t : k->t_end;
    for (size_t i = 0; i < c->recs.n; i++) {
        const hrec_t *h = &c->recs.v[i];
        if (h->flow == k->flow && (h->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK) &&
            h->t >= k->t_start && h->t <= first_t && strcmp(h->where, client) == 0)
            sent = h->t;
    }
    if (sent > k->t_start && w < max) {
        snprintf(out[w].where, sizeof out[w].where, "%.50s (connected)", client);
        out[w++].t = sent;
    }
    for (size_t i = 0; i < req.n && w < max; i++) {
        snprintf(out[w].where, sizeof out[w].where, "%s", req.v[i].where);
        out[w++].t = req.v[i].t;
    }
    for (size_t i = 0; i < resp.n && w < max; i++) {
        snprintf(out[w].where, sizeof out[w].where, "%s", resp.v[i].where);
        out[w++].t = resp.v[i].t;
    }
    *n = w;
    if (title && tlen) {
        const char *method = c->n_methods ? c->methods[first_req->method] : "GET";
        snprintf(title, tlen, "%s %s (flow %llu): %.3f ms", method, k->path,
                 (unsigned long long)k->flow, (double)(k->t_end - k->t_start) / (double)SIM_MS);
    }
    lb_vec_free(&req);
    lb_vec_free(&resp);
    return 0;
}

int rep_capture_collect(rep_capture_t *c, scn_run_t *r, rep_variant_t *v)
{
    if (!c || !v) return LB_EINVAL;
    enum { MAX_HOPS = 2 * CAP_CHAIN_MAX * CAP_NODES_MAX + 2 };
    rep_hop_t *h = lb_calloc(MAX_HOPS, sizeof *h);
    size_t n = 0;
    int rc = rep_capture_hops(c, r, h, MAX_HOPS, &n, v->hops_title, sizeof v->hops_title);
    lb_free(v->hops);
    v->hops = NULL;
    v->n_hops = 0;
    if (rc || !n) {
        lb_free(h);
        return rc;
    }
    v->hops = lb_realloc(h, n * sizeof *h);
    v->n_hops = n;
    return 0;
}
