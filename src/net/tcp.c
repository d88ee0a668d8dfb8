/* tcp.c -- a node's TCP stack: parameters, the connection table (4-tuple hash), listeners,
 * ephemeral ports and ISNs (Linux __inet_hash_connect, secure_tcp_seq), the application
 * API (listen, connect, send, close, abort, idle timeout), the lazy per-connection timers,
 * accessors and statistics. Segment processing: tcp_input.c; segments and the RTO and
 * delayed-ACK timers: tcp_output.c; TIME_WAIT: tcp_timewait.c.
 *
 * Connection life (who frees what): the stack owns every tcp_conn_t. tcp_conn_kill()
 * takes a connection out of the tables and stops its timers; the memory goes when no
 * stack function is still working on it (hold == 0). The app's pointer is valid until it
 * calls tcp_close()/tcp_abort() or returns from the error callback. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "tcp_int.h"

#define CTAB_MIN 64

void tcp_params_default(tcp_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->syn_retries = 6;             /* net.ipv4.tcp_syn_retries */
    p->syn_linear_timeouts = 0;     /* absent before 6.5: TCP_KERNEL_DEFAULT's value */
    p->synack_retries = 5;          /* net.ipv4.tcp_synack_retries */
    p->retries2 = 15;               /* net.ipv4.tcp_retries2 */
    p->early_retrans = 3;           /* net.ipv4.tcp_early_retrans: TLP on */
    p->rto_initial = 1 * SIM_S;     /* TCP_TIMEOUT_INIT, RFC 6298 */
    p->rto_min = 200 * SIM_MS;      /* TCP_RTO_MIN */
    p->rto_max = 120 * SIM_S;       /* TCP_RTO_MAX */
    p->delack = 40 * SIM_MS;        /* TCP_DELACK_MIN (= TCP_ATO_MIN) */
    p->time_wait = 60 * SIM_S;      /* TCP_TIMEWAIT_LEN */
    p->fin_timeout = 60 * SIM_S;    /* net.ipv4.tcp_fin_timeout */
    p->mss = 1460;                  /* 1500-byte MTU - 40 */
    p->init_cwnd = 10;              /* TCP_INIT_CWND, RFC 6928 */
    /* Receive-buffer autotuning is not modelled: the window is the autotuned maximum,
     * net.ipv4.tcp_rmem[2] = 6 MB with tcp_adv_win_scale = 1 (half for overhead). The app
     * consumes at once, so the window never shrinks. SYNs carry min(rcv_wnd, 65535). */
    p->rcv_wnd = 3u << 20;
    p->port_lo = 32768;             /* net.ipv4.ip_local_port_range */
    p->port_hi = 60999;
    p->backlog = 4096;              /* net.core.somaxconn */
    p->keepalive_time = TCP_KEEPALIVE_TIME_DEFAULT;
    p->keepalive_intvl = TCP_KEEPALIVE_INTVL_DEFAULT;
    p->keepalive_probes = TCP_KEEPALIVE_PROBES_DEFAULT;
}

/* Defaults that differ by kernel version (Documentation/networking/ip-sysctl.rst of each):
 *   tcp_syn_retries          5 before 3.7, 6 from 3.7 (commit 6c9ff979d1921)
 *   tcp_syn_linear_timeouts  absent before 6.5, 4 from 6.5 (commit ccce324dabfe,
 *                            "tcp: make the first N SYN RTO backoffs linear")
 *   tcp_early_retrans        absent before 3.5 (0), 2 in 3.5 .. 3.9 (early retransmit,
 *                            no probe), 3 from 3.10 (commit 6ba8a3b19e76, "tcp: Tail loss
 *                            probe (TLP)")
 * Everything else in tcp_params_t has kept its value across the versions node images
 * ship (4.14 .. 6.12). Returns 0, or LB_EINVAL when version is not "MAJOR.MINOR[...]". */
int tcp_params_kernel(tcp_params_t *p, const char *version)
{
    int major = 0, minor = 0, n = 0;
    if (!version || sscanf(version, "%d.%d%n", &major, &minor, &n) != 2 || major < 2 ||
        major > 99 || minor < 0 || minor > 999 || (version[n] && version[n] != '.' &&
        version[n] != '-'))
        return LB_EINVAL;
    tcp_params_default(p);
    int v = major * 1000 + minor;
    p->syn_retries = v >= 3007 ? 6 : 5;
    p->syn_linear_timeouts = v >= 6005 ? 4 : 0;
    p->early_retrans = v >= 3010 ? 3 : v >= 3005 ? 2 : 0;
    return 0;
}

const char *tcp_state_name(int s)
{
    static const char *names[] = {"CLOSED", "LISTEN", "SYN_SENT", "SYN_RECV", "ESTABLISHED",
                                  "FIN_WAIT1", "FIN_WAIT2", "CLOSING", "TIME_WAIT",
                                  "CLOSE_WAIT", "LAST_ACK"};
    return s >= 0 && s < (int)(sizeof names / sizeof names[0]) ? names[s] : "?";
}

/* ---- the stack ------------------------------------------------------------------------ */

tcp_stack_t *tcp_stack_get(net_node_t *node)
{
    if (node->tcp) return node->tcp;
    tcp_stack_t *st = lb_calloc(1, sizeof *st);
    st->node = node;
    st->net = node->net;
    st->sim = net_sim(node->net);
    tcp_params_default(&st->p);
    char *name = lb_sprintf("tcp:%s", node->name);
    gsl_rng *r = sim_rng(st->sim, name);
    lb_free(name);
    st->secret = (uint64_t)gsl_rng_get(r) << 32 | (uint64_t)gsl_rng_get(r);
    st->ctab = lb_calloc(CTAB_MIN, sizeof *st->ctab);
    st->cmask = CTAB_MIN - 1;
    st->tw_tmr.at = SIM_TIME_MAX;
    node->tcp = st;
    return st;
}

static void conn_destroy(tcp_conn_t *c);

void tcp_stack_free(tcp_stack_t *st)
{
    if (!st) return;
    for (size_t i = 0; i <= st->cmask; i++) {
        tcp_conn_t *c = st->ctab[i];
        while (c) {
            tcp_conn_t *n = c->hnext;
            for (int k = 0; k < TT_COUNT; k++)
                if (c->tmr[k].at != SIM_TIME_MAX) sim_cancel(st->sim, &c->tmr[k].h);
            conn_destroy(c);
            c = n;
        }
    }
    lb_free(st->ctab);
    for (size_t i = 0; i < st->lst.n; i++) lb_free(st->lst.v[i]);
    lb_vec_free(&st->lst);
    tcp_tw_free_all(st);
    if (st->node && st->node->tcp == st) st->node->tcp = NULL;
    lb_free(st);
}

void tcp_stack_set_params(net_node_t *node, const tcp_params_t *p)
{
    tcp_stack_t *st = tcp_stack_get(node);
    st->p = *p;
    /* A zero window would need persist-timer probing, which is not modelled. */
    if (st->p.rcv_wnd < st->p.mss) st->p.rcv_wnd = st->p.mss;
    if (st->p.mss < 64) st->p.mss = 64;
    if (st->p.init_cwnd < 1) st->p.init_cwnd = 1;
}

const tcp_params_t *tcp_stack_params(net_node_t *node) { return &tcp_stack_get(node)->p; }

void tcp_stack_stats(net_node_t *node, tcp_stats_t *out)
{
    if (!node->tcp) {
        memset(out, 0, sizeof *out);
        return;
    }
    *out = node->tcp->stats;
}

/* ---- tables --------------------------------------------------------------------------- */

uint64_t tcp_tuple_hash(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport)
{
    return lb_mix64(((uint64_t)laddr << 32 | raddr) ^
                    lb_mix64((uint64_t)lport << 16 | rport | 0x5bd1e99500000000ULL));
}

tcp_conn_t *tcp_conn_lookup(tcp_stack_t *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
                            uint16_t rport)
{
    tcp_conn_t *c = st->ctab[tcp_tuple_hash(laddr, lport, raddr, rport) & st->cmask];
    for (; c; c = c->hnext)
        if (c->lport == lport && c->rport == rport && c->laddr == laddr && c->raddr == raddr)
            return c;
    return NULL;
}

static void ctab_grow(tcp_stack_t *st)
{
    size_t n = (st->cmask + 1) * 2;
    tcp_conn_t **t = lb_calloc(n, sizeof *t);
    for (size_t i = 0; i <= st->cmask; i++) {
        tcp_conn_t *c = st->ctab[i];
        while (c) {
            tcp_conn_t *next = c->hnext;
            size_t b = tcp_tuple_hash(c->laddr, c->lport, c->raddr, c->rport) & (n - 1);
            c->hnext = t[b];
            t[b] = c;
            c = next;
        }
    }
    lb_free(st->ctab);
    st->ctab = t;
    st->cmask = n - 1;
}

static void ctab_remove(tcp_stack_t *st, tcp_conn_t *c)
{
    tcp_conn_t **pp = &st->ctab[tcp_tuple_hash(c->laddr, c->lport, c->raddr, c->rport) &
                                st->cmask];
    while (*pp && *pp != c) pp = &(*pp)->hnext;
    assert(*pp == c);
    *pp = c->hnext;
    c->hnext = NULL;
    st->nconn--;
}

tcp_listener_t *tcp_listener_lookup(tcp_stack_t *st, uint32_t addr, uint16_t port)
{
    tcp_listener_t *any = NULL;
    for (size_t i = 0; i < st->lst.n; i++) {
        tcp_listener_t *l = st->lst.v[i];
        if (l->port != port) continue;
        if (l->addr == addr) return l;
        if (l->addr == 0) any = l;
    }
    return any;
}

tcp_conn_t *tcp_conn_new(tcp_stack_t *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
                         uint16_t rport, uint64_t flow)
{
    tcp_conn_t *c = lb_calloc(1, sizeof *c);
    c->st = st;
    c->laddr = laddr;
    c->lport = lport;
    c->raddr = raddr;
    c->rport = rport;
    c->flow = flow;
    c->state = TCP_CLOSED;
    c->mss = st->p.mss > NET_TCP_OPTS ? st->p.mss - NET_TCP_OPTS : st->p.mss;
    c->cwnd = st->p.init_cwnd * c->mss;
    c->ssthresh = UINT32_MAX;   /* TCP_INFINITE_SSTHRESH */
    c->rto = st->p.rto_initial;
    c->rcv_wnd = st->p.rcv_wnd;
    for (int k = 0; k < TT_COUNT; k++) c->tmr[k].at = SIM_TIME_MAX;
    c->rtx_deadline = c->delack_deadline = SIM_TIME_MAX;
    c->connect_deadline = c->fw2_deadline = SIM_TIME_MAX;
    c->ka_deadline = SIM_TIME_MAX;
    c->last_activity = sim_now(st->sim);
    if (st->nconn >= st->cmask + 1) ctab_grow(st);
    size_t b = tcp_tuple_hash(laddr, lport, raddr, rport) & st->cmask;
    c->hnext = st->ctab[b];
    st->ctab[b] = c;
    st->nconn++;
    st->stats.conns_now++;
    return c;
}

/* Linux secure_tcp_seq(): a keyed hash of the 4-tuple plus a clock ticking every 64 ns,
 * so a new incarnation of a tuple starts above the old one's sequence numbers (what lets
 * a SYN reopen a TIME_WAIT tuple). The key comes from the stream "tcp:<node>". */
uint32_t tcp_isn(tcp_stack_t *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
                 uint16_t rport)
{
    uint32_t h = (uint32_t)lb_mix64(st->secret ^ tcp_tuple_hash(laddr, lport, raddr, rport));
    return h + (uint32_t)((uint64_t)sim_now(st->sim) >> 6);
}

static bool tuple_in_use(tcp_stack_t *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
                         uint16_t rport)
{
    return tcp_conn_lookup(st, laddr, lport, raddr, rport) ||
           tcp_tw_exists(st, laddr, lport, raddr, rport);
}

static int port_cmp(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

/* Ephemeral port, as Linux __inet_hash_connect(): start at a keyed hash of the
 * destination plus a per-bucket perturbation, walk even offsets then odd ones, skip
 * tuples in use (connections and TIME_WAIT) and listening ports, then advance the
 * perturbation by i + 2. Returns 0 or LB_EADDRNOTAVAIL. Each port tried costs two hash
 * lookups (connections, TIME_WAIT) and a binary search of the listening ports, sorted
 * once per call, so a walk over many ports in use does not multiply by the listeners. */
static int pick_port(tcp_stack_t *st, uint32_t laddr, uint32_t raddr, uint16_t rport,
                     uint16_t *out)
{
    uint32_t lo = st->p.port_lo, hi = st->p.port_hi;
    if (lo == 0 || lo > hi) return LB_EADDRNOTAVAIL;
    uint32_t range = hi - lo + 1;
    uint64_t h = lb_mix64(st->secret ^ ((uint64_t)laddr << 32 | raddr) ^
                          ((uint64_t)rport << 17));
    uint32_t idx = (uint32_t)h & 255;
    uint32_t offset = ((uint32_t)(h >> 32) + st->perturb[idx]) % range;
    offset &= ~1u;
    uint16_t lbuf[16], *lp = lbuf;          /* ports listening on laddr or any address */
    size_t nl = 0;
    if (st->lst.n > sizeof lbuf / sizeof lbuf[0]) lp = lb_malloc(st->lst.n * sizeof *lp);
    for (size_t i = 0; i < st->lst.n; i++)
        if (st->lst.v[i]->addr == 0 || st->lst.v[i]->addr == laddr) lp[nl++] = st->lst.v[i]->port;
    if (nl > 1) qsort(lp, nl, sizeof *lp, port_cmp);
    int rc = LB_EADDRNOTAVAIL;
    for (uint32_t pass = 0; pass < 2 && rc; pass++) {
        for (uint32_t i = pass; i < range; i += 2) {
            uint16_t port = (uint16_t)(lo + (offset + i) % range);
            if (nl && bsearch(&port, lp, nl, sizeof *lp, port_cmp)) continue;
            if (tuple_in_use(st, laddr, port, raddr, rport)) continue;
            st->perturb[idx] += i + 2;
            *out = port;
            rc = 0;
            break;
        }
    }
    if (lp != lbuf) lb_free(lp);
    return rc;
}

/* ---- lifetime ----------------------------------------------------------------------- */

void tcp_set_state(tcp_conn_t *c, int state)
{
    if (c->state == state) return;
    TCP_TRACE(c, "%s -> %s", tcp_state_name(c->state), tcp_state_name(state));
    c->state = (uint8_t)state;
    if (state == TCP_ESTABLISHED) tcp_keepalive_established(c);
}

static void conn_destroy(tcp_conn_t *c)
{
    for (uint64_t k = c->sq_head; k < c->sq_tail; k++)
        net_msg_unref(c->sq[k & (c->sq_cap - 1)].msg);
    lb_free(c->sq);
    for (size_t i = 0; i < c->ooo.n; i++) net_msg_unref(c->ooo.v[i].msg);
    lb_vec_free(&c->ooo);
    lb_free(c);
}

void tcp_conn_hold(tcp_conn_t *c) { c->hold++; }

void tcp_conn_release(tcp_conn_t *c)
{
    assert(c->hold > 0);
    if (--c->hold > 0) return;
    if (c->flags & CF_DEAD) {
        conn_destroy(c);
        return;
    }
    if (c->flags & CF_WANT_OUTPUT) tcp_output(c);
}

void tcp_conn_kill(tcp_conn_t *c)
{
    if (c->flags & CF_DEAD) return;
    tcp_stack_t *st = c->st;
    c->flags |= CF_DEAD | CF_ORPHAN;
    if (c->lst) {
        c->lst->synq--;
        c->lst = NULL;
    }
    ctab_remove(st, c);
    st->stats.conns_now--;
    for (int k = 0; k < TT_COUNT; k++)
        if (c->tmr[k].at != SIM_TIME_MAX) {
            sim_cancel(st->sim, &c->tmr[k].h);
            c->tmr[k].at = SIM_TIME_MAX;
        }
    TCP_TRACE(c, "connection freed in %s", tcp_state_name(c->state));
    if (c->hold == 0) conn_destroy(c);
}

void tcp_conn_fail(tcp_conn_t *c, int rc)
{
    if (c->flags & CF_DEAD) return;
    TCP_TRACE(c, "error in %s: %s", tcp_state_name(c->state), lb_strerror(rc));
    if (!(c->flags & CF_ORPHAN) && c->cbs.error) {
        c->flags |= CF_IN_ERROR;
        c->hold++;
        c->cbs.error(c, rc, c->data);
        c->hold--;
        c->flags &= ~CF_IN_ERROR;
    }
    c->flags |= CF_ORPHAN;
    tcp_conn_kill(c);
}

/* ---- lazy timers ------------------------------------------------------------------------ */

static sim_time_t user_deadline(const tcp_conn_t *c)
{
    sim_time_t d = c->connect_deadline < c->fw2_deadline ? c->connect_deadline : c->fw2_deadline;
    if (c->idle > 0 && c->last_activity + c->idle < d) d = c->last_activity + c->idle;
    return d;
}

static sim_time_t timer_deadline(const tcp_conn_t *c, int k)
{
    switch (k) {
    case TT_RTX: return c->rtx_deadline;
    case TT_DELACK: return c->delack_deadline;
    case TT_KEEPALIVE: return c->ka_deadline;
    default: return user_deadline(c);
    }
}

static void close_core(tcp_conn_t *c);
static void abort_core(tcp_conn_t *c, const char *why);

/* Connect timeout, app idle timeout, orphaned FIN_WAIT2 timeout. */
static void user_timer(tcp_conn_t *c)
{
    sim_time_t now = sim_now(c->st->sim);
    char b[32];
    if (c->fw2_deadline <= now && c->state == TCP_FIN_WAIT2) {
        TCP_TRACE(c, "FIN_WAIT2 timeout (tcp_fin_timeout %s): connection dropped",
                  tcp_dur_str(c->st->p.fin_timeout, b, sizeof b));
        tcp_conn_kill(c);
        return;
    }
    if (c->connect_deadline <= now) {
        c->connect_deadline = SIM_TIME_MAX;
        if (c->state == TCP_SYN_SENT) {
            TCP_TRACE(c, "connect timeout: no handshake by the app's deadline");
            c->st->stats.timeouts++;
            tcp_conn_fail(c, LB_ETIMEDOUT);
            return;
        }
    }
    if (c->idle > 0 && c->last_activity + c->idle <= now && !(c->flags & CF_ORPHAN)) {
        TCP_TRACE(c, "idle timeout (%s without a segment)", tcp_dur_str(c->idle, b, sizeof b));
        c->st->stats.timeouts++;
        c->idle = 0;
        if (c->cbs.error) {
            c->flags |= CF_IN_ERROR;
            c->cbs.error(c, LB_ETIMEDOUT, c->data);
            c->flags &= ~CF_IN_ERROR;
        }
        if (c->flags & CF_DEAD) return;
        if (c->flags & CF_ABORT_REQ) abort_core(c, "abort after idle timeout");
        else close_core(c);
        return;
    }
    sim_time_t d = user_deadline(c);
    if (d != SIM_TIME_MAX) tcp_timer_ensure(c, TT_USER, d);
}

static void timer_fire(sim_t *sim, void *a, void *b)
{
    tcp_conn_t *c = a;
    int k = (int)(intptr_t)b;
    c->tmr[k].at = SIM_TIME_MAX;
    sim_time_t d = timer_deadline(c, k);
    if (d == SIM_TIME_MAX) return;
    if (d > sim_now(sim)) {
        tcp_timer_ensure(c, k, d);
        return;
    }
    tcp_conn_hold(c);
    switch (k) {
    case TT_RTX: c->rtx_deadline = SIM_TIME_MAX; tcp_rtx_timer(c); break;
    case TT_DELACK: c->delack_deadline = SIM_TIME_MAX; tcp_delack_timer(c); break;
    case TT_KEEPALIVE: c->ka_deadline = SIM_TIME_MAX; tcp_keepalive_timer(c); break;
    default: user_timer(c); break;
    }
    tcp_conn_release(c);
}

void tcp_timer_ensure(tcp_conn_t *c, int k, sim_time_t when)
{
    if (c->flags & CF_DEAD) return;
    tcp_timer_t *t = &c->tmr[k];
    if (t->at <= when) return;
    if (t->at != SIM_TIME_MAX) sim_cancel(c->st->sim, &t->h);
    sim_time_t now = sim_now(c->st->sim);
    if (when < now) when = now;
    t->h = sim_schedule_at(c->st->sim, when, timer_fire, c, (void *)(intptr_t)k);
    t->at = when;
}

void tcp_user_timer_arm(tcp_conn_t *c)
{
    sim_time_t d = user_deadline(c);
    if (d != SIM_TIME_MAX) tcp_timer_ensure(c, TT_USER, d);
}

/* ---- tracing ------------------------------------------------------------------------- */

const char *tcp_dur_str(sim_time_t t, char *buf, size_t n)
{
    if (t % SIM_S == 0) snprintf(buf, n, "%llds", (long long)(t / SIM_S));
    else if (t % SIM_MS == 0) snprintf(buf, n, "%lldms", (long long)(t / SIM_MS));
    else snprintf(buf, n, "%.3fms", (double)t / (double)SIM_MS);
    return buf;
}

void tcp_tracef(const tcp_conn_t *c, const char *fmt, ...)
{
    char text[384], l[16], r[16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    pkt_t fake;
    memset(&fake, 0, sizeof fake);
    fake.flow = c->flow;
    net_tracef(c->st->net, c->st->node->name, &fake, "tcp %s:%u>%s:%u %s",
               lb_ip_str(c->laddr, l), c->lport, lb_ip_str(c->raddr, r), c->rport, text);
}

/* ---- the application API --------------------------------------------------------------- */

int tcp_listen(net_node_t *node, uint32_t addr, uint16_t port, tcp_accept_cb cb, void *data)
{
    if (!cb || port == 0) return LB_EINVAL;
    tcp_stack_t *st = tcp_stack_get(node);
    for (size_t i = 0; i < st->lst.n; i++) {
        const tcp_listener_t *l = st->lst.v[i];
        if (l->port == port && (l->addr == addr || l->addr == 0 || addr == 0))
            return LB_EADDRINUSE;
    }
    tcp_listener_t *l = lb_calloc(1, sizeof *l);
    l->addr = addr;
    l->port = port;
    l->cb = cb;
    l->data = data;
    lb_vec_push(&st->lst, l);
    return 0;
}

int tcp_unlisten(net_node_t *node, uint32_t addr, uint16_t port)
{
    tcp_stack_t *st = tcp_stack_get(node);
    for (size_t i = 0; i < st->lst.n; i++) {
        tcp_listener_t *l = st->lst.v[i];
        if (l->addr != addr || l->port != port) continue;
        /* Request sockets die with the listener (inet_csk_listen_stop); the client's
         * final ACK then meets no socket and gets a RST. */
        if (l->synq > 0)
            for (size_t b = 0; b <= st->cmask; b++) {
                tcp_conn_t *c = st->ctab[b];
                while (c) {
                    tcp_conn_t *n = c->hnext;
                    if (c->lst == l) tcp_conn_kill(c);
                    c = n;
                }
            }
        assert(l->synq == 0);
        lb_free(l);
        st->lst.v[i] = st->lst.v[--st->lst.n];
        return 0;
    }
    return LB_ENOENT;
}

tcp_conn_t *tcp_connect(net_node_t *node, uint32_t dst, uint16_t dport,
                        const tcp_connect_opts_t *opts, const tcp_cbs_t *cbs, void *data,
                        int *rc)
{
    tcp_stack_t *st = tcp_stack_get(node);
    tcp_connect_opts_t o = {0};
    if (opts) o = *opts;
    int dummy;
    if (!rc) rc = &dummy;
    *rc = 0;
    if (dport == 0 || dst == 0) {
        *rc = LB_EINVAL;
        return NULL;
    }
    /* connect() fails at once when the route lookup does (ip_route_connect(): ENETUNREACH
     * without a route; EINVAL, EHOSTUNREACH, EACCES for blackhole, unreachable and
     * prohibit routes: fib_props[]). */
    if (!net_node_is_local(node, dst)) {
        int e = net_route_error(net_route_lookup(node, dst));
        if (e) {
            *rc = e;
            return NULL;
        }
    }
    uint32_t src = o.src ? o.src : net_node_src_for(node, dst);
    if (!src) {
        *rc = LB_EADDRNOTAVAIL;
        return NULL;
    }
    uint16_t sport = o.sport;
    if (sport) {
        if (tuple_in_use(st, src, sport, dst, dport)) {
            *rc = LB_EADDRINUSE;
            return NULL;
        }
    } else {
        int r = pick_port(st, src, dst, dport, &sport);
        if (r < 0) {
            *rc = r;
            return NULL;
        }
    }
    uint64_t flow = o.flow ? o.flow : net_flow_new(st->net);
    tcp_conn_t *c = tcp_conn_new(st, src, sport, dst, dport, flow);
    if (cbs) c->cbs = *cbs;
    c->data = data;
    c->iss = tcp_isn(st, src, sport, dst, dport);
    c->snd_una = c->iss;
    c->snd_nxt = c->snd_max = c->write_seq = c->iss + 1;
    c->recover = c->iss + 1;
    c->state = TCP_SYN_SENT;
    st->stats.active_opens++;
    TCP_TRACE(c, "connect: CLOSED -> SYN_SENT, iss=%u", c->iss);
    /* The SYN leaves from a zero-delay timer event, so no callback can run before
     * tcp_connect() returns. */
    c->rtx_deadline = sim_now(st->sim);
    tcp_timer_ensure(c, TT_RTX, c->rtx_deadline);
    if (o.timeout > 0) {
        c->connect_deadline = sim_now(st->sim) + o.timeout;
        tcp_user_timer_arm(c);
    }
    return c;
}

void tcp_conn_set_cbs(tcp_conn_t *c, const tcp_cbs_t *cbs, void *data)
{
    if (cbs) c->cbs = *cbs;
    else memset(&c->cbs, 0, sizeof c->cbs);
    c->data = data;
}

static void sq_push(tcp_conn_t *c, net_msg_t *m, uint32_t end)
{
    if (c->sq_tail - c->sq_head == c->sq_cap) {
        uint32_t ncap = c->sq_cap ? c->sq_cap * 2 : 4;
        tcp_sqent_t *n = lb_malloc(ncap * sizeof *n);
        for (uint64_t k = c->sq_head; k < c->sq_tail; k++)
            n[k & (ncap - 1)] = c->sq[k & (c->sq_cap - 1)];
        lb_free(c->sq);
        c->sq = n;
        c->sq_cap = ncap;
    }
    c->sq[c->sq_tail & (c->sq_cap - 1)] = (tcp_sqent_t){m, end};
    c->sq_tail++;
}

int tcp_send(tcp_conn_t *c, net_msg_t *msg)
{
    if (!c || !msg) return LB_EINVAL;
    if (c->flags & (CF_DEAD | CF_ORPHAN | CF_FIN_QUEUED | CF_IN_ERROR)) return LB_ESTATE;
    if (c->state != TCP_SYN_SENT && c->state != TCP_ESTABLISHED && c->state != TCP_CLOSE_WAIT)
        return LB_ESTATE;
    if (msg->size == 0) return LB_EINVAL;      /* a message must occupy sequence space */
    c->write_seq += msg->size;
    sq_push(c, net_msg_ref(msg), c->write_seq);
    tcp_output(c);
    return 0;
}

/* The app lets go gracefully (tcp_close, or an idle timeout). */
static void close_core(tcp_conn_t *c)
{
    c->flags |= CF_ORPHAN;
    c->idle = 0;
    c->connect_deadline = SIM_TIME_MAX;
    switch (c->state) {
    case TCP_ESTABLISHED:
    case TCP_CLOSE_WAIT:
        c->flags |= CF_FIN_QUEUED;
        tcp_set_state(c, c->state == TCP_ESTABLISHED ? TCP_FIN_WAIT1 : TCP_LAST_ACK);
        tcp_output(c);
        break;
    case TCP_SYN_SENT:
    case TCP_SYN_RECV:
    case TCP_CLOSED:
        /* tcp_close() in SYN_SENT just drops the socket: nothing on the wire. */
        tcp_conn_kill(c);
        break;
    default:
        break;                  /* already closing */
    }
}

/* Abortive close: tcp_send_active_reset() where Linux sends one (tcp_need_reset()). */
static void abort_core(tcp_conn_t *c, const char *why)
{
    c->flags |= CF_ORPHAN;
    switch (c->state) {
    case TCP_ESTABLISHED:
    case TCP_CLOSE_WAIT:
    case TCP_FIN_WAIT1:
    case TCP_FIN_WAIT2:
    case TCP_SYN_RECV:
        tcp_send_rst_conn(c, why);
        break;
    case TCP_CLOSING:
    case TCP_LAST_ACK:
        if (c->snd_max != c->write_seq + 1) tcp_send_rst_conn(c, why);
        break;
    default:
        break;
    }
    tcp_conn_kill(c);
}

void tcp_close(tcp_conn_t *c)
{
    if (!c || (c->flags & (CF_DEAD | CF_ORPHAN | CF_IN_ERROR))) return;
    TCP_TRACE(c, "app close in %s", tcp_state_name(c->state));
    tcp_conn_hold(c);
    close_core(c);
    tcp_conn_release(c);
}

void tcp_abort(tcp_conn_t *c)
{
    if (!c || (c->flags & (CF_DEAD | CF_ORPHAN))) return;
    if (c->flags & CF_IN_ERROR) {
        c->flags |= CF_ABORT_REQ;
        return;
    }
    TCP_TRACE(c, "app abort in %s", tcp_state_name(c->state));
    tcp_conn_hold(c);
    abort_core(c, "app abort");
    tcp_conn_release(c);
}

void tcp_conn_set_idle_timeout(tcp_conn_t *c, sim_time_t t)
{
    if (!c || (c->flags & (CF_DEAD | CF_ORPHAN))) return;
    c->idle = t > 0 ? t : 0;
    if (c->idle) tcp_user_timer_arm(c);
}

/* ---- accessors ------------------------------------------------------------------------- */

int tcp_conn_state(const tcp_conn_t *c) { return c->state; }
net_node_t *tcp_conn_node(const tcp_conn_t *c) { return c->st->node; }
uint32_t tcp_conn_laddr(const tcp_conn_t *c) { return c->laddr; }
uint16_t tcp_conn_lport(const tcp_conn_t *c) { return c->lport; }
uint32_t tcp_conn_raddr(const tcp_conn_t *c) { return c->raddr; }
uint16_t tcp_conn_rport(const tcp_conn_t *c) { return c->rport; }
uint64_t tcp_conn_flow(const tcp_conn_t *c) { return c->flow; }
uint32_t tcp_conn_retransmits(const tcp_conn_t *c) { return c->retransmits; }
sim_time_t tcp_conn_srtt(const tcp_conn_t *c) { return c->srtt; }
