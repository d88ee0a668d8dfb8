/* net.c -- the network object: packet pool, flow ids, observers, drop accounting and
 * per-flow tracing. Nodes, links and fabrics live in node.c, link.c and fabric.c. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "net_int.h"

#define PKT_CHUNK 1024

net_t *net_new(sim_t *sim)
{
    net_t *n = lb_calloc(1, sizeof *n);
    n->hdr.sim = sim;
    return n;
}

void net_free(net_t *n)
{
    if (!n) return;
    for (size_t i = 0; i < n->nodes.n; i++) net_node_free_(n->nodes.v[i]);
    nf_share_free_(n->nf_share);
    for (size_t i = 0; i < n->links.n; i++) net_link_free_(n->links.v[i]);
    for (size_t i = 0; i < n->fabrics.n; i++) net_fabric_free_(n->fabrics.v[i]);
    lb_vec_free(&n->nodes);
    lb_index_free(&n->node_index);
    lb_vec_free(&n->links);
    lb_vec_free(&n->fabrics);
    /* Packets still in flight (queued in events that will never run) hold message refs. */
    for (size_t i = 0; i < n->pkt_chunks.n; i++) {
        for (size_t k = 0; k < PKT_CHUNK; k++) {
            pkt_t *p = &n->pkt_chunks.v[i][k];
            if (!p->pooled) net_msg_unref(p->msg);
        }
        lb_free(n->pkt_chunks.v[i]);
    }
    lb_vec_free(&n->pkt_chunks);
    lb_vec_free(&n->drop_reasons);
    lb_vec_free(&n->drop_counts);
    lb_vec_free(&n->apps);
    lb_free(n);
}

sim_t *net_sim(const net_t *n) { return n->hdr.sim; }

void net_app_register(net_t *n, const char *kind, void *obj)
{
    struct net_app a = {kind, obj};
    lb_vec_push(&n->apps, a);
}

void net_app_unregister(net_t *n, void *obj)
{
    for (size_t i = n->apps.n; i-- > 0;)        /* newest first: frees run in reverse */
        if (n->apps.v[i].obj == obj) {
            memmove(&n->apps.v[i], &n->apps.v[i + 1], (n->apps.n - i - 1) * sizeof n->apps.v[0]);
            n->apps.n--;
            return;
        }
}

void *net_app_at(const net_t *n, const char *kind, size_t i)
{
    for (size_t k = 0; k < n->apps.n; k++)
        if (strcmp(n->apps.v[k].kind, kind) == 0 && i-- == 0) return n->apps.v[k].obj;
    return NULL;
}

void net_set_observer(net_t *n, const net_observer_t *obs)
{
    if (obs) n->obs = *obs;
    else memset(&n->obs, 0, sizeof n->obs);
}

void net_set_all_links(net_t *n, const net_all_links_t *all)
{
    if (all) n->all = *all;
    else memset(&n->all, 0, sizeof n->all);
}

uint64_t net_flow_new(net_t *n) { return ++n->next_flow; }
void net_trace_flow(net_t *n, uint64_t flow) { n->hdr.trace_flow = flow; }

/* ---- messages ---- */
void net_msg_unref(net_msg_t *m)
{
    if (!m) return;
    assert(m->refs > 0);
    if (--m->refs == 0) m->destroy(m);
}

static void raw_destroy(net_msg_t *m) { lb_free(m); }

net_msg_t *net_msg_raw(uint32_t size)
{
    net_msg_t *m = lb_calloc(1, sizeof *m);
    m->refs = 1;
    m->size = size;
    m->kind = NET_MSG_RAW;
    m->destroy = raw_destroy;
    return m;
}

/* ---- packets ---- */
pkt_t *pkt_new(net_t *n)
{
    if (!n->pkt_free) {
        pkt_t *chunk = lb_malloc(PKT_CHUNK * sizeof *chunk);
        lb_vec_push(&n->pkt_chunks, chunk);
        for (size_t i = 0; i < PKT_CHUNK; i++) {
            chunk[i].next = i + 1 < PKT_CHUNK ? &chunk[i + 1] : NULL;
            chunk[i].pooled = true;
            chunk[i].msg = NULL;
        }
        n->pkt_free = chunk;
    }
    pkt_t *p = n->pkt_free;
    n->pkt_free = p->next;
    memset(p, 0, sizeof *p);
    p->id = ++n->next_pkt_id;
    p->ttl = 64;
    p->born = sim_now(n->hdr.sim);
    return p;
}

pkt_t *pkt_clone(net_t *n, const pkt_t *src)
{
    pkt_t *p = pkt_new(n);
    uint64_t id = p->id;
    sim_time_t born = p->born;
    *p = *src;
    p->id = id;
    p->born = born;
    p->next = NULL;
    p->ct = NULL;
    p->ct_dir = 0;
    p->ct_state = 0;
    p->in_if = NULL;
    net_msg_ref(p->msg);
    return p;
}

void pkt_free(net_t *n, pkt_t *p)
{
    if (!p) return;
    net_msg_unref(p->msg);
    p->msg = NULL;
    p->pooled = true;
    p->next = n->pkt_free;
    n->pkt_free = p;
}

pkt_t *pkt_rst_reply(net_t *n, const pkt_t *in)
{
    if (in->proto != NET_PROTO_TCP || (in->tcp_flags & TCP_RST)) return NULL;
    pkt_t *r = pkt_new(n);
    r->flow = in->flow;
    r->proto = NET_PROTO_TCP;
    r->src = in->dst;
    r->dst = in->src;
    r->sport = in->dport;
    r->dport = in->sport;
    if (in->tcp_flags & TCP_ACK) {
        r->tcp_flags = TCP_RST;
        r->seq = in->ack;
    } else {
        r->tcp_flags = TCP_RST | TCP_ACK;
        r->ack = in->seq + in->len + !!(in->tcp_flags & TCP_SYN) + !!(in->tcp_flags & TCP_FIN);
    }
    return r;
}

uint32_t pkt_wire_bytes(const pkt_t *p)
{
    uint32_t hdr = NET_IP_HDR;
    if (p->proto == NET_PROTO_TCP)
        hdr += NET_TCP_HDR + ((p->tcp_flags & TCP_SYN) ? NET_TCP_SYN_OPTS : NET_TCP_OPTS);
    else if (p->proto == NET_PROTO_UDP)
        hdr += 8;
    else if (p->proto == NET_PROTO_ICMP)
        hdr += 8 + NET_IP_HDR + 8;      /* type/code/checksum + quoted header */
    return hdr + p->len;
}

const char *pkt_str(const pkt_t *p, char *buf, size_t n)
{
    char s[16], d[16];
    lb_ip_str(p->src, s);
    lb_ip_str(p->dst, d);
    if (p->proto == NET_PROTO_TCP) {
        char fl[8];
        int k = 0;
        if (p->tcp_flags & TCP_SYN) fl[k++] = 'S';
        if (p->tcp_flags & TCP_FIN) fl[k++] = 'F';
        if (p->tcp_flags & TCP_RST) fl[k++] = 'R';
        if (p->tcp_flags & TCP_PSH) fl[k++] = 'P';
        if (p->tcp_flags & TCP_ACK) fl[k++] = '.';
        fl[k] = '\0';
        snprintf(buf, n, "%s:%u > %s:%u TCP [%s] seq=%u ack=%u len=%u", s, p->sport, d,
                 p->dport, fl, p->seq, p->ack, p->len);
    } else if (p->proto == NET_PROTO_ICMP) {
        char is[16], id[16];
        snprintf(buf, n, "%s > %s ICMP type=%u code=%u about %s:%u > %s:%u", s, d,
                 p->icmp_type, p->icmp_code, lb_ip_str(p->inner.src, is), p->inner.sport,
                 lb_ip_str(p->inner.dst, id), p->inner.dport);
    } else {
        snprintf(buf, n, "%s:%u > %s:%u proto=%u len=%u", s, p->sport, d, p->dport,
                 p->proto, p->len);
    }
    return buf;
}

/* ---- drops and tracing ---- */
static void count_drop(net_t *n, const char *reason)
{
    n->drops_total++;
    for (size_t i = 0; i < n->drop_reasons.n; i++)
        if (n->drop_reasons.v[i] == reason || strcmp(n->drop_reasons.v[i], reason) == 0) {
            n->drop_counts.v[i]++;
            return;
        }
    lb_vec_push(&n->drop_reasons, reason);
    lb_vec_push(&n->drop_counts, 1);
}

void net_drop(net_t *n, const net_node_t *where, pkt_t *p, const char *reason,
              const char *fmt, ...)
{
    count_drop(n, reason);
    bool tracing = net_tracing(n, p->flow);
    if (n->obs.drop || tracing) {
        char detail[256] = "";
        if (fmt) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(detail, sizeof detail, fmt, ap);
            va_end(ap);
        }
        if (n->obs.drop) n->obs.drop(n->obs.data, where, p, reason, detail);
        if (tracing) {
            char ps[160];
            net_tracef(n, where ? where->name : "-", p, "DROP %s (%s): %s", reason, detail,
                       pkt_str(p, ps, sizeof ps));
        }
    }
    pkt_free(n, p);
}

static void trace_emit(net_t *n, const char *where, uint64_t flow, const char *fmt,
                       va_list ap)
{
    char text[1024];                    /* room for an nftables rule with its verdict map */
    vsnprintf(text, sizeof text, fmt, ap);
    if (n->obs.trace) {
        n->obs.trace(n->obs.data, sim_now(n->hdr.sim), flow, where, text);
    } else {
        char t[32];
        fprintf(stderr, "%14s  %-12s %s\n", sim_time_str(sim_now(n->hdr.sim), t), where, text);
    }
}

void net_tracef(net_t *n, const char *where, const pkt_t *p, const char *fmt, ...)
{
    if (!net_tracing(n, p->flow)) return;
    va_list ap;
    va_start(ap, fmt);
    trace_emit(n, where, p->flow, fmt, ap);
    va_end(ap);
}

void net_tracef_flow(net_t *n, const char *where, uint64_t flow, const char *fmt, ...)
{
    if (!net_tracing(n, flow)) return;
    va_list ap;
    va_start(ap, fmt);
    trace_emit(n, where, flow, fmt, ap);
    va_end(ap);
}

void net_notef(net_t *n, const char *where, uint64_t flow, const char *fmt, ...)
{
    if (!n->obs.note) return;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    n->obs.note(n->obs.data, where, flow, text);
}

size_t net_drop_reasons(const net_t *n, const char ***reasons, const uint64_t **counts)
{
    *reasons = n->drop_reasons.v;
    *counts = n->drop_counts.v;
    return n->drop_reasons.n;
}

uint64_t net_drops_total(const net_t *n) { return n->drops_total; }
