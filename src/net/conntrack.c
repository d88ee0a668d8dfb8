/* conntrack.c -- connection tracking and NAT for a node's netfilter: entries, their TCP
 * state and timeouts, NAT bindings and the per-packet translation, after Linux
 * net/netfilter/nf_conntrack_core.c, nf_conntrack_proto_{tcp,udp,icmp}.c and nf_nat_core.c.
 *
 * An entry holds two tuples: the original direction as first seen, and the reply tuple a
 * packet coming back would carry (after NAT, the reply tuple is what makes the reversal
 * work). Both tuples are keys of one chained hash. Life of an entry:
 *
 *     ct_in (PREROUTING/OUTPUT)       ct_confirm (POSTROUTING/INPUT)     expiry / sweep
 *   new --------------> unconfirmed (limbo) ---------------------> confirmed (hash) --> freed
 *                          | packet dropped: ct_release_unconfirmed      | RST before any reply,
 *                          v                                             v SYN reopening TW/CLOSE
 *                        freed                                  dying (limbo) -> reaped
 *
 * Limbo entries are referenced only by the packet in flight through the node; they are
 * reaped when the next top-level traversal starts (the packet path through a node is
 * synchronous) and by the periodic sweep. Expiry is exact (checked on lookup); the sweep
 * (one event per nf, every params.sweep_interval while entries exist) only reclaims memory.
 *
 * NAT (nf_nat_core.c): the first packet of a connection walks the nat chains at each hook;
 * a DNAT/SNAT/MASQUERADE target rewrites the reply tuple (nf_nat_setup_info), otherwise a
 * null binding is made, which for source NAT still moves the port when the reply tuple is
 * taken (get_unique_tuple). Every packet then gets nf_nat_packet(): the hook's manip type
 * (DST at PREROUTING/OUTPUT, SRC at INPUT/POSTROUTING) applied from the other direction's
 * tuple, in both directions; ICMP errors also get their quoted header translated. */
#include <assert.h>
#include <stddef.h>
#include <string.h>
#include "nf_int.h"

#define CT_CHUNK 256                    /* entries allocated at a time */
#define CT_MIN_BUCKETS 64
#define CT_UDP_STREAM_AFTER (2 * SIM_S) /* nf_conntrack_proto_udp.c: "still active after
                                         * two seconds? extend timeout" */

/* ---- TCP state machine: tcp_conntracks[] of nf_conntrack_proto_tcp.c ------------------ */
enum { sNO = NF_TCP_NONE, sSS = NF_TCP_SYN_SENT, sSR = NF_TCP_SYN_RECV,
       sES = NF_TCP_ESTABLISHED, sFW = NF_TCP_FIN_WAIT, sCW = NF_TCP_CLOSE_WAIT,
       sLA = NF_TCP_LAST_ACK, sTW = NF_TCP_TIME_WAIT, sCL = NF_TCP_CLOSE,
       sS2 = NF_TCP_SYN_SENT2, sIV = NF_TCP_STATE_COUNT, sIG };
enum { TCP_SYN_SET, TCP_SYNACK_SET, TCP_FIN_SET, TCP_ACK_SET, TCP_RST_SET, TCP_NONE_SET };

static const uint8_t tcp_conntracks[2][6][NF_TCP_STATE_COUNT] = {
    {   /* ORIGINAL: sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2 */
/*syn*/    { sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2 },
/*synack*/ { sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR },
/*fin*/    { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
/*ack*/    { sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV },
/*rst*/    { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
/*none*/   { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV }
    }, {    /* REPLY */
/*syn*/    { sIV, sS2, sIV, sIV, sIV, sIV, sIV, sSS, sIV, sS2 },
/*synack*/ { sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR },
/*fin*/    { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
/*ack*/    { sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG },
/*rst*/    { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
/*none*/   { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV }
    }
};

static const char *const tcp_state_names[NF_TCP_STATE_COUNT] = {
    "NONE", "SYN_SENT", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "CLOSE_WAIT", "LAST_ACK",
    "TIME_WAIT", "CLOSE", "SYN_SENT2" };

const char *nf_ct_tcp_state_name(int s)
{
    return s >= 0 && s < NF_TCP_STATE_COUNT ? tcp_state_names[s] : "?";
}

const char *nf_ct_state_name(int s)
{
    static const char *const n[] = { "NONE", "NEW", "ESTABLISHED", "RELATED", "INVALID",
                                      "UNTRACKED" };
    return s >= 0 && s <= CT_UNTRACKED ? n[s] : "?";
}

static int tcp_index(uint8_t f)
{
    if (f & TCP_RST) return TCP_RST_SET;
    if (f & TCP_SYN) return (f & TCP_ACK) ? TCP_SYNACK_SET : TCP_SYN_SET;
    if (f & TCP_FIN) return TCP_FIN_SET;
    if (f & TCP_ACK) return TCP_ACK_SET;
    return TCP_NONE_SET;
}

static const char *const tcp_index_names[] = { "SYN", "SYN-ACK", "FIN", "ACK", "RST",
                                               "no-flags" };

static sim_time_t tcp_timeout(const nf_params_t *pp, int st)
{
    switch (st) {
    case sSS: case sS2: return pp->to_syn_sent;
    case sSR: return pp->to_syn_recv;
    case sES: return pp->to_established;
    case sFW: return pp->to_fin_wait;
    case sCW: return pp->to_close_wait;
    case sLA: return pp->to_last_ack;
    case sTW: return pp->to_time_wait;
    default: return pp->to_close;
    }
}

static inline bool seq_after(uint32_t a, uint32_t b) { return (int32_t)(a - b) > 0; }

/* ---- tuples and the hash ------------------------------------------------------------------- */

static inline nf_tuple_t tuple_invert(nf_tuple_t t)
{
    nf_tuple_t r = { t.dst, t.src, t.dport, t.sport, t.proto };
    return r;
}

static inline bool tuple_eq(const nf_tuple_t *a, const nf_tuple_t *b)
{
    return a->src == b->src && a->dst == b->dst && a->sport == b->sport &&
           a->dport == b->dport && a->proto == b->proto;
}

static inline uint64_t tuple_hash(const nf_tuple_t *t)
{
    uint64_t x = ((uint64_t)t->src << 32) | t->dst;
    uint64_t y = ((uint64_t)t->sport << 24) | ((uint64_t)t->dport << 8) | t->proto;
    return lb_mix64(x ^ lb_mix64(y));
}

static inline ct_entry_t *hn_entry(struct ct_hn *h)
{
    return (ct_entry_t *)(void *)((char *)(h - h->dir) - offsetof(ct_entry_t, hn));
}

static void hash_link(nf_t *nf, ct_entry_t *e, int dir)
{
    size_t b = tuple_hash(&e->t[dir]) & (nf->nbuckets - 1);
    e->hn[dir].dir = (uint8_t)dir;
    e->hn[dir].next = nf->buckets[b];
    nf->buckets[b] = &e->hn[dir];
}

static void hash_unlink(nf_t *nf, ct_entry_t *e, int dir)
{
    size_t b = tuple_hash(&e->t[dir]) & (nf->nbuckets - 1);
    for (struct ct_hn **pp = &nf->buckets[b]; *pp; pp = &(*pp)->next)
        if (*pp == &e->hn[dir]) {
            *pp = e->hn[dir].next;
            return;
        }
    assert(0);
}

static struct ct_hn *hash_find(const nf_t *nf, const nf_tuple_t *t)
{
    size_t b = tuple_hash(t) & (nf->nbuckets - 1);
    for (struct ct_hn *h = nf->buckets[b]; h; h = h->next)
        if (tuple_eq(&hn_entry(h)->t[h->dir], t)) return h;
    return NULL;
}

static void hash_grow(nf_t *nf)
{
    size_t want = nf->nbuckets;
    while (nf->nconfirmed * 2 > want) want *= 2;
    if (want == nf->nbuckets) return;
    lb_free(nf->buckets);
    nf->buckets = lb_calloc(want, sizeof *nf->buckets);
    nf->nbuckets = want;
    for (ct_entry_t *e = nf->head; e; e = e->next) {
        hash_link(nf, e, CT_DIR_ORIGINAL);
        hash_link(nf, e, CT_DIR_REPLY);
    }
}

/* ---- entries and lists ---------------------------------------------------------------------- */

static ct_entry_t *entry_alloc(nf_t *nf)
{
    if (!nf->pool) {
        ct_entry_t *chunk = lb_malloc(CT_CHUNK * sizeof *chunk);
        lb_vec_push(&nf->chunks, chunk);
        for (size_t i = 0; i < CT_CHUNK; i++) chunk[i].next = i + 1 < CT_CHUNK ? &chunk[i + 1] : NULL;
        nf->pool = chunk;
    }
    ct_entry_t *e = nf->pool;
    nf->pool = e->next;
    memset(e, 0, sizeof *e);
    return e;
}

static void entry_release(nf_t *nf, ct_entry_t *e)
{
    e->next = nf->pool;
    nf->pool = e;
}

static void limbo_push(nf_t *nf, ct_entry_t *e)
{
    e->prev = NULL;
    e->next = nf->limbo;
    if (nf->limbo) nf->limbo->prev = e;
    nf->limbo = e;
    e->on_limbo = true;
}

static void limbo_unlink(nf_t *nf, ct_entry_t *e)
{
    assert(e->on_limbo);
    if (e->prev) e->prev->next = e->next;
    else nf->limbo = e->next;
    if (e->next) e->next->prev = e->prev;
    e->on_limbo = false;
}

static void confirmed_unlink(nf_t *nf, ct_entry_t *e)
{
    if (e->prev) e->prev->next = e->next;
    else nf->head = e->next;
    if (e->next) e->next->prev = e->prev;
    else nf->tail = e->prev;
    hash_unlink(nf, e, CT_DIR_ORIGINAL);
    hash_unlink(nf, e, CT_DIR_REPLY);
    nf->nconfirmed--;
}

static void entry_destroy(nf_t *nf, ct_entry_t *e)
{
    if (e->on_limbo) limbo_unlink(nf, e);
    else confirmed_unlink(nf, e);
    entry_release(nf, e);
}

/* nf_ct_kill(): out of the hash at once; the packet holding it may still use it. */
static void entry_kill(nf_t *nf, ct_entry_t *e)
{
    if (e->on_limbo) return;
    confirmed_unlink(nf, e);
    e->status |= CTS_DYING;
    limbo_push(nf, e);
}

static void reap_limbo(nf_t *nf)
{
    while (nf->limbo) {
        ct_entry_t *e = nf->limbo;
        limbo_unlink(nf, e);
        entry_release(nf, e);
    }
}

static inline bool expired(const nf_t *nf, const ct_entry_t *e)
{
    return e->expires <= sim_now(nf->sim);
}

static void note_expiry(nf_t *nf, const ct_entry_t *e);

/* Removes an entry that timed out (noting it when that is news). */
static void entry_expire(nf_t *nf, ct_entry_t *e)
{
    note_expiry(nf, e);
    entry_destroy(nf, e);
}

static void sweep_cb(sim_t *sim, void *a, void *b);

static void sweep_arm(nf_t *nf)
{
    if (nf->sweep_armed) return;
    sim_time_t every = nf->params.sweep_interval > 0 ? nf->params.sweep_interval : 10 * SIM_S;
    nf->sweep = sim_schedule(nf->sim, every, sweep_cb, nf, NULL);
    nf->sweep_armed = true;
}

static void sweep_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    (void)b;
    nf_t *nf = a;
    nf->sweep_armed = false;
    for (ct_entry_t *e = nf->head, *next; e; e = next) {
        next = e->next;
        if (expired(nf, e)) entry_expire(nf, e);
    }
    reap_limbo(nf);
    if (nf->head) sweep_arm(nf);
}

void ct_init(nf_t *nf)
{
    nf->nbuckets = CT_MIN_BUCKETS;
    nf->buckets = lb_calloc(nf->nbuckets, sizeof *nf->buckets);
}

void ct_fini(nf_t *nf)
{
    if (nf->sweep_armed) sim_cancel(nf->sim, &nf->sweep);
    nf->sweep_armed = false;
    for (size_t i = 0; i < nf->chunks.n; i++) lb_free(nf->chunks.v[i]);
    lb_vec_free(&nf->chunks);
    lb_free(nf->buckets);
    nf->buckets = NULL;
    nf->head = nf->tail = nf->limbo = nf->pool = NULL;
    nf->nconfirmed = 0;
}

/* A live confirmed entry with tuple t, and its direction; expired ones are removed. */
static ct_entry_t *lookup(nf_t *nf, const nf_tuple_t *t, int *dir)
{
    struct ct_hn *h = hash_find(nf, t);
    if (!h) return NULL;
    ct_entry_t *e = hn_entry(h);
    if (expired(nf, e)) {
        entry_expire(nf, e);
        return NULL;
    }
    *dir = h->dir;
    return e;
}

/* ---- formatting ---------------------------------------------------------------------------- */

static const char *ep_str(uint32_t a, uint16_t port, uint8_t proto, char buf[24]);

/* An ESTABLISHED TCP entry that timed out forgets a connection both ends may still hold
 * (nf_conntrack_tcp_timeout_established; kube-proxy's 24 h): a note for the explanations,
 * with the NAT it forgets. Rare: other entries time out in closing states. */
static void note_expiry(nf_t *nf, const ct_entry_t *e)
{
    if (e->t[0].proto != NET_PROTO_TCP || e->tcp_state != sES || !e->flow || e->on_limbo)
        return;
    char a[24], b[24], c[24], d[24], nat[96] = "";
    const nf_tuple_t *o = &e->t[CT_DIR_ORIGINAL], *r = &e->t[CT_DIR_REPLY];
    if (e->status & (CTS_SRC_NAT | CTS_DST_NAT))
        snprintf(nat, sizeof nat, " and its NAT (to %s, from %s)",
                 ep_str(r->src, r->sport, r->proto, c), ep_str(r->dst, r->dport, r->proto, d));
    sim_time_t idle = nf->params.to_established;
    net_notef(nf->net, nf->node->name, e->flow, "conntrack forgets %s > %s%s: ESTABLISHED "
              "without a packet for %lld s (nf_conntrack_tcp_timeout_established), since %.3f s",
              ep_str(o->src, o->sport, o->proto, a), ep_str(o->dst, o->dport, o->proto, b), nat,
              (long long)(idle / SIM_S), (double)(e->expires - idle) / SIM_S);
}

static const char *proto_str(uint8_t p)
{
    return p == NET_PROTO_TCP ? "tcp" : p == NET_PROTO_UDP ? "udp" : p == NET_PROTO_ICMP ? "icmp"
                                                                                            : "unknown";
}

/* One `conntrack -L` line; remaining seconds when now >= 0, else the absolute expiry.
 * pad: the column padding conntrack-tools prints (not wanted inside trace lines). */
static void ct_format_(const ct_entry_t *e, sim_time_t now, bool pad, char *buf, size_t n)
{
    char s0[16], d0[16], s1[16], d1[16], ts[40];
    const nf_tuple_t *o = &e->t[0], *r = &e->t[1];
    if (now >= 0) {
        long long left = e->expires > now ? (long long)((e->expires - now) / SIM_S) : 0;
        snprintf(ts, sizeof ts, "%lld", left);
    } else {
        char tb[32];
        snprintf(ts, sizeof ts, "expires=%s", sim_time_str(e->expires, tb));
    }
    int k = snprintf(buf, n, pad ? "%-8s %u %s " : "%s %u %s ", proto_str(o->proto), o->proto, ts);
    if (k < 0 || (size_t)k >= n) return;
    if (o->proto == NET_PROTO_TCP)
        k += snprintf(buf + k, n - (size_t)k, "%s ", tcp_state_names[e->tcp_state]);
    if ((size_t)k >= n) return;
    const char *unrep = (e->status & CTS_SEEN_REPLY) ? "" : " [UNREPLIED]";
    if (o->proto == NET_PROTO_ICMP)
        snprintf(buf + k, n - (size_t)k,
                 "src=%s dst=%s type=8 code=0 id=0%s src=%s dst=%s type=0 code=0 id=0%s%s%s",
                 lb_ip_str(o->src, s0), lb_ip_str(o->dst, d0), unrep, lb_ip_str(r->src, s1),
                 lb_ip_str(r->dst, d1), (e->status & CTS_ASSURED) ? " [ASSURED]" : "",
                 " mark=0", " use=1");
    else
        snprintf(buf + k, n - (size_t)k,
                 "src=%s dst=%s sport=%u dport=%u%s src=%s dst=%s sport=%u dport=%u%s mark=0 use=1",
                 lb_ip_str(o->src, s0), lb_ip_str(o->dst, d0), o->sport, o->dport, unrep,
                 lb_ip_str(r->src, s1), lb_ip_str(r->dst, d1), r->sport, r->dport,
                 (e->status & CTS_ASSURED) ? " [ASSURED]" : "");
}

static void ct_format(const ct_entry_t *e, sim_time_t now, char *buf, size_t n)
{
    ct_format_(e, now, true, buf, n);
}

static void ct_format_trace(const ct_entry_t *e, sim_time_t now, char *buf, size_t n)
{
    ct_format_(e, now, false, buf, n);
}

static const char *ep_str(uint32_t a, uint16_t port, uint8_t proto, char buf[24])
{
    char s[16];
    if (proto == NET_PROTO_TCP || proto == NET_PROTO_UDP)
        snprintf(buf, 24, "%s:%u", lb_ip_str(a, s), port);
    else
        snprintf(buf, 24, "%s", lb_ip_str(a, s));
    return buf;
}

/* ---- protocol trackers ------------------------------------------------------------------------ */

enum { TRACK_OK = 0, TRACK_IGNORE = 1, TRACK_KILLED = 2, TRACK_INVALID = -1 };

/* tcp_packet(): state transition, then the timeout of the new state, shortened to the
 * unacknowledged/retransmission timeout when data is outstanding or the same segment
 * keeps coming, and to the CLOSE timeout after a RST. Sequence windows (tcp_in_window)
 * are not checked: the model behaves like nf_conntrack_tcp_be_liberal for them. */
static int tcp_track(nf_t *nf, ct_entry_t *e, const pkt_t *p, int dir)
{
    const nf_params_t *pp = &nf->params;
    int index = tcp_index(p->tcp_flags);
    int old = e->tcp_state;
    int ns = tcp_conntracks[dir][index][old];
    if (ns == sIG) return TRACK_IGNORE;
    if (ns == sIV) return TRACK_INVALID;
    uint32_t end = p->seq + p->len + !!(p->tcp_flags & TCP_SYN) + !!(p->tcp_flags & TCP_FIN);
    if (!e->end_valid[dir]) {
        e->end[dir] = end;
        e->end_valid[dir] = 1;
    } else if (seq_after(end, e->end[dir])) {
        e->end[dir] = end;
        e->unack[dir] = 1;              /* IP_CT_TCP_FLAG_DATA_UNACKNOWLEDGED */
    }
    int odir = !dir;
    if ((p->tcp_flags & TCP_ACK) && e->end_valid[odir] && !seq_after(e->end[odir], p->ack))
        e->unack[odir] = 0;
    if (index == TCP_ACK_SET) {
        if (e->last_dir == dir && e->last_seq == p->seq && e->last_ack == p->ack &&
            e->last_end == end && e->last_win == p->win) {
            e->retrans++;
        } else {
            e->last_dir = (uint8_t)dir;
            e->last_seq = p->seq;
            e->last_ack = p->ack;
            e->last_end = end;
            e->last_win = p->win;
            e->retrans = 0;
        }
    }
    e->tcp_state = (uint8_t)ns;
    sim_time_t st = tcp_timeout(pp, ns), to;
    if (e->retrans >= pp->tcp_max_retrans && st > pp->to_unacknowledged)
        to = pp->to_unacknowledged;
    else if (index == TCP_RST_SET)
        to = pp->to_close;
    else if ((e->unack[0] | e->unack[1]) && st > pp->to_unacknowledged)
        to = pp->to_unacknowledged;
    else
        to = st;
    if (!(e->status & CTS_SEEN_REPLY)) {
        /* "If only reply is a RST, we can consider ourselves not to have an established
         * connection: ... delete the conntrack immediately." */
        if (p->tcp_flags & TCP_RST) {
            e->expires = sim_now(nf->sim);
            return TRACK_KILLED;
        }
        if (ns == sES && to > pp->to_unacknowledged) to = pp->to_unacknowledged;
    } else if (!(e->status & CTS_ASSURED) && (old == sSR || old == sES) && ns == sES) {
        e->status |= CTS_ASSURED;
    }
    e->expires = sim_now(nf->sim) + to;
    return TRACK_OK;
}

static void udp_track(nf_t *nf, ct_entry_t *e)
{
    sim_time_t now = sim_now(nf->sim), to = nf->params.to_udp;
    if ((e->status & CTS_SEEN_REPLY) && now - e->created > CT_UDP_STREAM_AFTER) {
        to = nf->params.to_udp_stream;
        e->status |= CTS_ASSURED;
    }
    e->expires = now + to;
}

static bool icmp_is_error(uint8_t type)
{
    return type == ICMP_DEST_UNREACH || type == 4 || type == 5 || type == ICMP_TIME_EXCEEDED ||
           type == 12;
}

/* icmp_error_message(): the quoted header, inverted, names the connection the error is
 * about; the error travels in the direction that tuple was found in. Entries not yet
 * confirmed are searched too, which stands in for nf_ct_attach() of locally generated
 * errors (icmp_send attaches the offending packet's conntrack). */
static void ct_related(nf_t *nf, pkt_t *p, bool tracing)
{
    nf_tuple_t in = { p->inner.src, p->inner.dst, p->inner.sport, p->inner.dport,
                      p->inner.proto };
    nf_tuple_t t = tuple_invert(in);
    int dir = 0;
    ct_entry_t *e = lookup(nf, &t, &dir);
    for (ct_entry_t *x = nf->limbo; !e && x; x = x->next)
        for (int d = 0; d < 2 && !e; d++)
            if (tuple_eq(&x->t[d], &t)) {
                e = x;
                dir = d;
            }
    if (!e) {
        p->ct_state = CT_INVALID;
        if (tracing)
            net_tracef(nf->net, nf->node->name, p,
                       "ct: ICMP error about an untracked connection: INVALID");
        return;
    }
    p->ct = e;
    p->ct_dir = (uint8_t)dir;
    p->ct_state = CT_RELATED;
    if (tracing) {
        char b[256];
        ct_format_trace(e, sim_now(nf->sim), b, sizeof b);
        net_tracef(nf->net, nf->node->name, p, "ct: RELATED (%s) to %s",
                   dir ? "reply" : "original", b);
    }
}

static void mark_invalid(nf_t *nf, pkt_t *p, bool tracing, const char *why)
{
    p->ct = NULL;
    p->ct_state = CT_INVALID;
    if (tracing) net_tracef(nf->net, nf->node->name, p, "ct: INVALID: %s", why);
}

void ct_in(nf_t *nf, pkt_t *p, enum nf_hook h)
{
    (void)h;
    bool tracing = net_tracing(nf->net, p->flow);
    if (nf->attach_pkt && p->id == nf->attach_pkt) {      /* nf_ct_attach() */
        p->ct = nf->attach_ct;
        p->ct_dir = nf->attach_dir;
        p->ct_state = CT_RELATED;
        nf->attach_pkt = 0;
        if (tracing) net_tracef(nf->net, nf->node->name, p, "ct: RELATED (attached)");
        return;
    }
    bool icmp_err = p->proto == NET_PROTO_ICMP && icmp_is_error(p->icmp_type);
    if (icmp_err) {
        ct_related(nf, p, tracing);
        return;
    }
    if (nf->limbo) reap_limbo(nf);         /* a new traversal: earlier ones are over */
    if (p->proto != NET_PROTO_TCP && p->proto != NET_PROTO_UDP && p->proto != NET_PROTO_ICMP) {
        p->ct_state = CT_UNTRACKED;
        return;
    }
    bool echo = p->proto == NET_PROTO_ICMP;
    if (echo && p->icmp_type != 8 && p->icmp_type != 0) {
        mark_invalid(nf, p, tracing, "ICMP type is not tracked");
        return;
    }
    nf_tuple_t t = { p->src, p->dst, echo ? 0 : p->sport, echo ? 0 : p->dport, p->proto };
    int dir = 0;
    ct_entry_t *e = lookup(nf, &t, &dir);
    int index = p->proto == NET_PROTO_TCP ? tcp_index(p->tcp_flags) : 0;
    if (e && p->proto == NET_PROTO_TCP && dir == CT_DIR_ORIGINAL && index == TCP_SYN_SET &&
        (e->tcp_state == sTW || e->tcp_state == sCL)) {
        /* "Attempt to reopen a closed/aborted connection. Delete this connection and look
         * up again." */
        if (tracing)
            net_tracef(nf->net, nf->node->name, p, "ct: SYN reopens a %s entry: replaced",
                       tcp_state_names[e->tcp_state]);
        entry_destroy(nf, e);
        e = NULL;
    }
    enum ct_state state;
    bool created = false;
    if (!e) {
        if (p->proto == NET_PROTO_TCP) {
            int ns = tcp_conntracks[0][index][sNO];
            if (ns == sIV) {
                char why[64];
                snprintf(why, sizeof why, "TCP %s without a conntrack entry",
                         tcp_index_names[index]);
                mark_invalid(nf, p, tracing, why);
                return;
            }
            if (ns != sSS && !nf->params.tcp_loose) {
                mark_invalid(nf, p, tracing,
                             "TCP ACK without a conntrack entry (nf_conntrack_tcp_loose=0)");
                return;
            }
        } else if (echo && p->icmp_type != 8) {
            mark_invalid(nf, p, tracing, "ICMP echo reply without a request");
            return;
        }
        e = entry_alloc(nf);
        e->t[0] = t;
        e->t[1] = tuple_invert(t);
        if (p->proto == NET_PROTO_TCP && tcp_conntracks[0][index][sNO] != sSS) {
            /* tcp_new() with nf_conntrack_tcp_loose: a connection seen mid-stream is taken
             * as ESTABLISHED; the packet is NEW, so the nat table chooses its NAT afresh */
            e->status |= CTS_PICKUP;
            char a[24], b[24];
            net_notef(nf->net, nf->node->name, p->flow, "conntrack has no entry for %s > %s "
                      "(TCP %s mid-stream): picked up as a new connection "
                      "(nf_conntrack_tcp_loose=1), its NAT chosen afresh by the rules",
                      ep_str(p->src, p->sport, p->proto, a), ep_str(p->dst, p->dport, p->proto, b),
                      tcp_index_names[index]);
        }
        e->created = sim_now(nf->sim);
        e->flow = p->flow;
        e->owner_pkt = p->id;
        limbo_push(nf, e);
        dir = CT_DIR_ORIGINAL;
        state = CT_NEW;
        created = true;
    } else {
        state = (dir == CT_DIR_REPLY || (e->status & CTS_SEEN_REPLY)) ? CT_ESTABLISHED : CT_NEW;
    }
    int tr = TRACK_OK;
    if (p->proto == NET_PROTO_TCP) {
        tr = tcp_track(nf, e, p, dir);
        if (tr == TRACK_INVALID) {
            assert(!created);
            char why[96];
            snprintf(why, sizeof why, "TCP %s not valid in state %s", tcp_index_names[index],
                     tcp_state_names[e->tcp_state]);
            mark_invalid(nf, p, tracing, why);
            return;
        }
    } else if (p->proto == NET_PROTO_UDP) {
        udp_track(nf, e);
    } else {
        e->expires = sim_now(nf->sim) + nf->params.to_icmp;
    }
    if (dir == CT_DIR_REPLY) e->status |= CTS_SEEN_REPLY;
    if (tr == TRACK_KILLED) entry_kill(nf, e);
    p->ct = e;
    p->ct_dir = (uint8_t)dir;
    p->ct_state = (uint8_t)state;
    sweep_arm(nf);
    if (tracing) {
        char b[256];
        ct_format_trace(e, sim_now(nf->sim), b, sizeof b);
        net_tracef(nf->net, nf->node->name, p, "ct: %s%s%s: %s", nf_ct_state_name(state),
                   dir ? " (reply)" : "", created ? ", new entry" :
                   tr == TRACK_KILLED ? ", entry deleted (RST before any reply)" :
                   tr == TRACK_IGNORE ? ", ignored by the state machine" : "", b);
    }
}

int ct_confirm(nf_t *nf, pkt_t *p)
{
    ct_entry_t *e = p->ct;
    if (!e || !e->on_limbo || (e->status & (CTS_CONFIRMED | CTS_DYING)) ||
        p->ct_state == CT_RELATED || e->owner_pkt != p->id)
        return NF_ACCEPT;
    for (int d = 0; d < 2; d++) {
        struct ct_hn *h = hash_find(nf, &e->t[d]);
        if (!h) continue;
        ct_entry_t *x = hn_entry(h);
        if (expired(nf, x)) {
            entry_destroy(nf, x);
            continue;
        }
        /* __nf_conntrack_confirm(): the tuple was taken meanwhile -> NF_DROP */
        char b[256];
        ct_format_trace(x, sim_now(nf->sim), b, sizeof b);
        limbo_unlink(nf, e);
        entry_release(nf, e);
        net_drop(nf->net, nf->node, p, "ct-clash", "conntrack insert failed: clashes with %s", b);
        return NF_STOLEN;
    }
    if (nf->params.ct_max > 0 && nf->nconfirmed >= (size_t)nf->params.ct_max) {
        /* __nf_conntrack_alloc(): "nf_conntrack: table full, dropping packet" (early_drop
         * of an unreplied entry first is not modelled) */
        limbo_unlink(nf, e);
        entry_release(nf, e);
        net_drop(nf->net, nf->node, p, "ct-table-full", "nf_conntrack: table full (%d "
                 "entries, nf_conntrack_max), dropping packet", nf->params.ct_max);
        return NF_STOLEN;
    }
    limbo_unlink(nf, e);
    e->status |= CTS_CONFIRMED;
    e->prev = nf->tail;
    e->next = NULL;
    if (nf->tail) nf->tail->next = e;
    else nf->head = e;
    nf->tail = e;
    nf->nconfirmed++;
    if (nf->nconfirmed * 2 > nf->nbuckets) hash_grow(nf);
    else {
        hash_link(nf, e, CT_DIR_ORIGINAL);
        hash_link(nf, e, CT_DIR_REPLY);
    }
    sweep_arm(nf);
    return NF_ACCEPT;
}

void ct_release_unconfirmed(nf_t *nf, ct_entry_t *e, uint64_t pkt_id)
{
    if (!e->on_limbo || (e->status & (CTS_CONFIRMED | CTS_DYING)) || e->owner_pkt != pkt_id)
        return;
    limbo_unlink(nf, e);
    entry_release(nf, e);
}

uint16_t ct_state_bits(const pkt_t *p)
{
    uint16_t b;
    switch (p->ct_state) {
    case CT_NEW: b = NF_CTS_NEW; break;
    case CT_ESTABLISHED: b = NF_CTS_ESTABLISHED; break;
    case CT_RELATED: b = NF_CTS_RELATED; break;
    case CT_INVALID: b = NF_CTS_INVALID; break;
    default: b = NF_CTS_UNTRACKED; break;
    }
    if (p->ct) {
        if (p->ct->status & CTS_SRC_NAT) b |= NF_CTS_SNAT;
        if (p->ct->status & CTS_DST_NAT) b |= NF_CTS_DNAT;
    }
    return b;
}

/* ---- NAT ------------------------------------------------------------------------------------- */

/* nf_nat_used_tuple(): would `reply` collide with another live entry? */
static bool tuple_taken(nf_t *nf, const nf_tuple_t *reply, const ct_entry_t *self)
{
    struct ct_hn *h = hash_find(nf, reply);
    if (!h) return false;
    ct_entry_t *x = hn_entry(h);
    if (x == self) return false;
    if (expired(nf, x)) {
        entry_destroy(nf, x);
        return false;
    }
    return true;
}

static uint32_t done_bit(enum nf_manip m) { return m == NF_MANIP_SRC ? CTS_SRC_NAT_DONE : CTS_DST_NAT_DONE; }

bool ct_nat_done(const ct_entry_t *e, enum nf_hook h)
{
    return e->status & done_bit(nf_hook_manip(h));
}

/* nf_nat_setup_info() + get_unique_tuple(): the original-direction tuple as it will
 * leave, with the manip applied; for source NAT the port is kept when the resulting reply
 * tuple is free (unless --random-fully), else the next free port of the range is taken. */
static void setup_info(nf_t *nf, ct_entry_t *e, enum nf_manip manip, uint32_t addr,
                       uint8_t flags, uint16_t plo, uint16_t phi, pkt_t *p, bool null)
{
    nf_tuple_t cur = tuple_invert(e->t[CT_DIR_REPLY]);
    nf_tuple_t nt = cur;
    bool ports = nt.proto == NET_PROTO_TCP || nt.proto == NET_PROTO_UDP;
    if (manip == NF_MANIP_DST) {
        nt.dst = addr;
        if (ports && (flags & NF_NAT_HAS_PORT) && (nt.dport < plo || nt.dport > phi))
            nt.dport = plo;
    } else {
        nt.src = addr;
        if (ports) {
            uint16_t lo = nf->params.nat_port_lo, hi = nf->params.nat_port_hi;
            if (flags & NF_NAT_HAS_PORT) {
                lo = plo;
                hi = phi;
            }
            bool random = flags & (NF_NAT_RANDOM | NF_NAT_RANDOM_FULLY);
            bool keep = !random && (!(flags & NF_NAT_HAS_PORT) || (nt.sport >= lo && nt.sport <= hi));
            nf_tuple_t rt = tuple_invert(nt);
            if (!keep || tuple_taken(nf, &rt, e)) {
                /* the brief's deterministic rule: the next free port after the original
                 * (Linux starts at a random offset); --random/--random-fully draw the
                 * offset from the node's stream */
                uint32_t size = (uint32_t)hi - lo + 1;
                uint32_t off = random ? (uint32_t)(gsl_rng_get(nf->rng) % size)
                             : (nt.sport >= lo && nt.sport <= hi) ? (uint32_t)(nt.sport - lo + 1) % size
                                                                 : 0;
                for (uint32_t i = 0; i < size; i++) {
                    nt.sport = (uint16_t)(lo + (off + i) % size);
                    rt = tuple_invert(nt);
                    if (!tuple_taken(nf, &rt, e)) break;
                }
            }
        }
    }
    e->t[CT_DIR_REPLY] = tuple_invert(nt);
    e->status |= done_bit(manip);
    if (!tuple_eq(&nt, &cur)) e->status |= manip == NF_MANIP_SRC ? CTS_SRC_NAT : CTS_DST_NAT;
    if ((e->status & CTS_PICKUP) && !tuple_eq(&nt, &cur)) {
        char a[24], b[24];
        if (manip == NF_MANIP_DST)
            net_notef(nf->net, nf->node->name, p->flow, "picked-up connection: DNAT %s -> %s",
                      ep_str(cur.dst, cur.dport, cur.proto, a),
                      ep_str(nt.dst, nt.dport, nt.proto, b));
        else
            net_notef(nf->net, nf->node->name, p->flow, "picked-up connection: SNAT %s -> %s",
                      ep_str(cur.src, cur.sport, cur.proto, a),
                      ep_str(nt.src, nt.sport, nt.proto, b));
    }
    if (net_tracing(nf->net, p->flow) && !tuple_eq(&nt, &cur)) {
        char a[24], b[24];
        if (manip == NF_MANIP_DST)
            net_tracef(nf->net, nf->node->name, p, "NAT binding: DNAT %s -> %s",
                       ep_str(cur.dst, cur.dport, cur.proto, a),
                       ep_str(nt.dst, nt.dport, nt.proto, b));
        else
            net_tracef(nf->net, nf->node->name, p, "NAT binding: SNAT %s -> %s%s",
                       ep_str(cur.src, cur.sport, cur.proto, a),
                       ep_str(nt.src, nt.sport, nt.proto, b),
                       null ? " (port clash: source port moved)" : "");
    }
}

int ct_nat_setup(nf_t *nf, pkt_t *p, const nf_rule_t *r, enum nf_hook h, const net_iface_t *out)
{
    ct_entry_t *e = p->ct;
    enum nf_manip manip = nf_hook_manip(h);
    uint32_t addr;
    switch (r->target) {
    case NFT_DNAT:
        assert(manip == NF_MANIP_DST);
        addr = r->nat_addr;
        break;
    case NFT_SNAT:
        assert(manip == NF_MANIP_SRC);
        addr = r->nat_addr;
        break;
    case NFT_MASQ:
        /* nf_nat_masquerade_ipv4(): inet_select_addr(out, ...) -- the out device's address,
         * or, when it has none (a pod's host-side veth), the first universe-scope address of
         * another device in the netns: here the node's primary address. */
        assert(manip == NF_MANIP_SRC);
        addr = out && out->addr ? out->addr : net_node_addr(nf->node);
        if (!addr) return -1;
        break;
    default:
        assert(0);
        return -1;
    }
    setup_info(nf, e, manip, addr, r->nat_flags, r->nat_port[0], r->nat_port[1], p, false);
    return 0;
}

/* nf_nat_icmp_reply_translation(): the quoted header gets the opposite manip from the
 * other direction's tuple (so it looks like the packet the receiver sent), the outer
 * header the hook's manip. */
static void icmp_translate(nf_t *nf, pkt_t *p, const ct_entry_t *e, enum nf_manip manip)
{
    const nf_tuple_t *o = &e->t[!p->ct_dir];
    char a[24], b[24];
    uint32_t before_outer = manip == NF_MANIP_SRC ? p->src : p->dst;
    if (manip == NF_MANIP_DST) {
        p->inner.src = o->src;
        p->inner.sport = o->sport;
        p->dst = o->src;
    } else {
        p->inner.dst = o->dst;
        p->inner.dport = o->dport;
        p->src = o->dst;
    }
    if (net_tracing(nf->net, p->flow)) {
        const char *what = p->ct_dir == CT_DIR_ORIGINAL
                               ? (manip == NF_MANIP_DST ? "DNAT" : "SNAT")
                               : (manip == NF_MANIP_DST ? "un-SNAT" : "un-DNAT");
        net_tracef(nf->net, nf->node->name, p, "ICMP error %s %s %s -> %s, quoted header now "
                   "%s > %s", what, manip == NF_MANIP_DST ? "dst" : "src",
                   ep_str(before_outer, 0, NET_PROTO_ICMP, a),
                   ep_str(manip == NF_MANIP_SRC ? p->src : p->dst, 0, NET_PROTO_ICMP, b),
                   ep_str(p->inner.src, p->inner.sport, p->inner.proto, a),
                   ep_str(p->inner.dst, p->inner.dport, p->inner.proto, b));
    }
}

/* nf_nat_packet(): apply the hook's manip when the entry has NAT of that kind for this
 * direction (source NAT of the original is undone as a DST manip on replies, and so on). */
void ct_nat_packet(nf_t *nf, pkt_t *p, enum nf_hook h)
{
    ct_entry_t *e = p->ct;
    if (!e) return;
    enum nf_manip manip = nf_hook_manip(h);
    uint32_t bit = manip == NF_MANIP_SRC ? CTS_SRC_NAT : CTS_DST_NAT;
    if (p->ct_dir == CT_DIR_REPLY) bit = bit == CTS_SRC_NAT ? CTS_DST_NAT : CTS_SRC_NAT;
    if (!(e->status & bit)) return;
    if (p->proto == NET_PROTO_ICMP && p->ct_state == CT_RELATED && icmp_is_error(p->icmp_type)) {
        icmp_translate(nf, p, e, manip);
        return;
    }
    nf_tuple_t target = tuple_invert(e->t[!p->ct_dir]);
    bool ports = p->proto == NET_PROTO_TCP || p->proto == NET_PROTO_UDP;
    char a[24], b[24];
    bool tracing = net_tracing(nf->net, p->flow);
    if (tracing) {
        if (manip == NF_MANIP_SRC) ep_str(p->src, p->sport, p->proto, a);
        else ep_str(p->dst, p->dport, p->proto, a);
    }
    if (manip == NF_MANIP_SRC) {
        p->src = target.src;
        if (ports) p->sport = target.sport;
    } else {
        p->dst = target.dst;
        if (ports) p->dport = target.dport;
    }
    if (tracing) {
        const char *what = p->ct_dir == CT_DIR_ORIGINAL
                               ? (manip == NF_MANIP_DST ? "DNAT" : "SNAT")
                               : (manip == NF_MANIP_DST ? "un-SNAT" : "un-DNAT");
        if (manip == NF_MANIP_SRC) ep_str(p->src, p->sport, p->proto, b);
        else ep_str(p->dst, p->dport, p->proto, b);
        net_tracef(nf->net, nf->node->name, p, "%s %s %s -> %s", what,
                   manip == NF_MANIP_DST ? "dst" : "src", a, b);
    }
}

void ct_nat_finish(nf_t *nf, pkt_t *p, enum nf_hook h)
{
    ct_entry_t *e = p->ct;
    if (!e) return;
    enum nf_manip manip = nf_hook_manip(h);
    if (!(e->status & done_bit(manip))) {       /* nf_nat_alloc_null_binding() */
        nf_tuple_t cur = tuple_invert(e->t[CT_DIR_REPLY]);
        setup_info(nf, e, manip, manip == NF_MANIP_SRC ? cur.src : cur.dst, 0, 0, 0, p, true);
    }
    ct_nat_packet(nf, p, h);
}

/* ---- public conntrack API -------------------------------------------------------------------- */

size_t nf_ct_count(const nf_t *nf)
{
    size_t n = 0;
    for (const ct_entry_t *e = nf->head; e; e = e->next)
        if (!expired(nf, e)) n++;
    return n;
}

void nf_ct_dump(const nf_t *nf, FILE *out)
{
    sim_time_t now = sim_now(nf->sim);
    for (const ct_entry_t *e = nf->head; e; e = e->next) {
        if (expired(nf, e)) continue;
        char b[320];
        ct_format(e, now, b, sizeof b);
        fprintf(out, "%s\n", b);
    }
}

const ct_entry_t *nf_ct_lookup(const nf_t *nf, uint8_t proto, uint32_t src, uint16_t sport,
                               uint32_t dst, uint16_t dport)
{
    nf_tuple_t t = { src, dst, sport, dport, proto };
    struct ct_hn *h = hash_find(nf, &t);
    if (!h) return NULL;
    const ct_entry_t *e = hn_entry(h);
    return expired(nf, e) ? NULL : e;
}

const char *nf_ct_str(const ct_entry_t *e, char *buf, size_t n)
{
    char b[320];
    ct_format(e, -1, b, sizeof b);
    const char *nat = (e->status & CTS_SRC_NAT) && (e->status & CTS_DST_NAT) ? " [SNAT+DNAT]" :
                      (e->status & CTS_SRC_NAT) ? " [SNAT]" : (e->status & CTS_DST_NAT) ? " [DNAT]"
                                                                                       : "";
    snprintf(buf, n, "%s%s", b, nat);
    return buf;
}

void nf_ct_flush(nf_t *nf)
{
    while (nf->head) entry_destroy(nf, nf->head);
    reap_limbo(nf);
}

int nf_ct_tcp_state(const ct_entry_t *e) { return e->t[0].proto == NET_PROTO_TCP ? e->tcp_state : NF_TCP_NONE; }
nf_tuple_t nf_ct_tuple(const ct_entry_t *e, int dir) { return e->t[dir ? 1 : 0]; }
sim_time_t nf_ct_expires(const ct_entry_t *e) { return e->expires; }
bool nf_ct_is_snat(const ct_entry_t *e) { return e->status & CTS_SRC_NAT; }
bool nf_ct_is_dnat(const ct_entry_t *e) { return e->status & CTS_DST_NAT; }
bool nf_ct_seen_reply(const ct_entry_t *e) { return e->status & CTS_SEEN_REPLY; }
bool nf_ct_assured(const ct_entry_t *e) { return e->status & CTS_ASSURED; }
