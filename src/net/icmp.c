/* icmp.c -- the kernel's ICMP error rate limits (Linux 6.18): ip_error()'s per-source
 * bucket (net/ipv4/route.c), icmpv4_global_allow()/icmp_global_consume() and
 * icmpv4_xrlim_allow() (net/ipv4/icmp.c) over inet_peer_xrlim_allow()
 * (net/ipv4/inetpeer.c), and their sysctls' defaults by kernel version. See
 * net_icmp_limits_t in net.h.
 *
 * By version (net_icmp_limits_kernel):
 *   6.12   icmp_global_credit / icmp_global_stamp moved into struct netns_ipv4, and
 *          icmp_msgs_per_sec / icmp_msgs_burst became per-netns sysctls (Eric Dumazet's
 *          series "icmp: avoid possible side-channels attacks", net-next, August 2024).
 *          Before, one bucket per host (icmp_global) and the two sysctls only in the
 *          initial netns: modelled by icmp_host (a pod shares its node's).
 *   8c2bd38b95f7 "icmp: change the order of rate limits" (6.12; CVE-2024-47678): the
 *          per-destination check before the global bucket is consumed, the credit allowed
 *          below zero. Backported to stable 6.1.113 and 6.6.54 (October 2024), whose
 *          point releases node images ship; modelled for every version. For 5.10 and 5.15
 *          the backport is not verified: their older order (icmp_global_allow() taking
 *          the credit, floored at 0, before the per-destination check) is not modelled.
 *   After 6.18, icmp_sk_init() sets icmp_msgs_per_sec and icmp_msgs_burst to 10000; the
 *          release that has it is not verified, so every version keeps 1000 / 50. */
#include <stdarg.h>
#include <stdio.h>
#include "net_int.h"

#define HZ 1000                         /* a jiffy is a millisecond */
#define XRLIM_BURST_FACTOR 6            /* net/ipv4/inetpeer.c */
#define IP_RT_ERROR_COST HZ             /* net/ipv4/route.c ip_rt_error_cost */
#define IP_RT_ERROR_BURST (5 * HZ)      /* ip_rt_error_burst */
#define ICMP_FRAG_NEEDED 4

/* An inet_peer: the rate tokens a node keeps for one remote address. Peers are never
 * garbage-collected here; the kernel's inet_peer_gc() only drops peers idle for minutes,
 * whose bucket is full again anyway. */
typedef struct icmp_peer {
    uint32_t addr;
    int64_t tokens;                     /* jiffies */
    int64_t last;                       /* jiffies */
} icmp_peer_t;

struct net_icmp_rl {
    LB_VEC(icmp_peer_t) peers;
    lb_index_t index;                   /* address -> peers position */
    int64_t credit;                     /* icmp_global_credit */
    int64_t stamp;                      /* icmp_global_stamp */
    bool stamped;                       /* false: the stamp is long past (boot) */
    gsl_rng *rng;                       /* icmp_global_consume()'s draws */
    net_icmp_stats_t st;
};

void net_icmp_limits_default(net_icmp_limits_t *l)
{
    l->ratelimit = 1 * SIM_S;           /* icmp_sk_init(): 1 * HZ */
    l->ratemask = 0x1818;
    l->msgs_per_sec = 1000;             /* 6.18's defaults (10000 after it: see above) */
    l->msgs_burst = 50;
    l->global_per_netns = true;         /* 6.12 and later */
}

int net_icmp_limits_kernel(net_icmp_limits_t *l, const char *version)
{
    int major = 0, minor = 0, n = 0;
    if (!version || sscanf(version, "%d.%d%n", &major, &minor, &n) != 2 || major < 2 ||
        major > 99 || minor < 0 || minor > 999 || (version[n] && version[n] != '.' &&
        version[n] != '-'))
        return LB_EINVAL;
    net_icmp_limits_default(l);
    l->global_per_netns = major * 1000 + minor >= 6012;
    return 0;
}

static int64_t jiffies(const net_node_t *nd)
{
    return sim_now(nd->net->hdr.sim) / (SIM_S / HZ);
}

static struct net_icmp_rl *rl_get(net_node_t *nd)
{
    if (!nd->icmp_rl) nd->icmp_rl = lb_calloc(1, sizeof *nd->icmp_rl);
    return nd->icmp_rl;
}

void net_icmp_rl_free_(net_node_t *nd)
{
    if (!nd->icmp_rl) return;
    lb_vec_free(&nd->icmp_rl->peers);
    lb_index_free(&nd->icmp_rl->index);
    lb_free(nd->icmp_rl);
    nd->icmp_rl = NULL;
}

net_icmp_stats_t net_node_icmp_stats(const net_node_t *nd)
{
    net_icmp_stats_t z = {0};
    return nd->icmp_rl ? nd->icmp_rl->st : z;
}

/* A suppressed error: a trace line for a traced flow and a note for the explanations
 * (a connect that timed out because its ICMP error was refused says so). */
static void refused(net_node_t *nd, const pkt_t *about, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refused(net_node_t *nd, const pkt_t *about, const char *fmt, ...)
{
    net_t *n = nd->net;
    bool tr = net_tracing(n, about->flow);
    if (!tr && !n->obs.note) return;
    char text[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (tr) net_tracef(n, nd->name, about, "%s", text);
    net_notef(n, nd->name, about->flow, "%s", text);
}

/* inet_getpeer(): a new peer starts with no tokens and rate_last 60 s back, so that its
 * first calculation of tokens is at the maximum. */
static icmp_peer_t *peer_get(net_node_t *nd, uint32_t addr)
{
    struct net_icmp_rl *rl = rl_get(nd);
    for (size_t it, i = lb_index_first(&rl->index, addr, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&rl->index, addr, &it))
        if (rl->peers.v[i].addr == addr) return &rl->peers.v[i];
    icmp_peer_t p = {.addr = addr, .tokens = 0, .last = jiffies(nd) - 60 * HZ};
    lb_vec_push(&rl->peers, p);
    lb_index_add(&rl->index, addr, rl->peers.n - 1);
    return &rl->peers.v[rl->peers.n - 1];
}

/* inet_peer_xrlim_allow() */
static bool peer_xrlim_allow(icmp_peer_t *peer, int64_t now, int64_t timeout)
{
    int64_t token = peer->tokens, delta = now - peer->last;
    bool rc = false;
    if (delta) {
        peer->last = now;
        token += delta;
        if (token > XRLIM_BURST_FACTOR * timeout) token = XRLIM_BURST_FACTOR * timeout;
    }
    if (token >= timeout) {
        token -= timeout;
        rc = true;
    }
    peer->tokens = token;
    return rc;
}

bool net_ip_error_allow_(net_node_t *nd, const pkt_t *p)
{
    icmp_peer_t *peer = peer_get(nd, p->src);
    int64_t now = jiffies(nd);
    peer->tokens += now - peer->last;
    if (peer->tokens > IP_RT_ERROR_BURST) peer->tokens = IP_RT_ERROR_BURST;
    peer->last = now;
    if (peer->tokens >= IP_RT_ERROR_COST) {
        peer->tokens -= IP_RT_ERROR_COST;
        return true;
    }
    nd->icmp_rl->st.ip_error++;
    char a[16];
    refused(nd, p, "no ICMP error to %s: ip_error() rate limit (%d ms of %s's tokens per "
            "error, %d ms saved up at most)", lb_ip_str(p->src, a), IP_RT_ERROR_COST * 1000 / HZ,
            a, IP_RT_ERROR_BURST * 1000 / HZ);
    return false;
}

/* icmpv4_mask_allow(): true when the type is not rate limited at all */
static bool mask_allow(const net_node_t *nd, uint8_t type, uint8_t code)
{
    if (type > 18) return true;                     /* NR_ICMP_TYPES */
    if (type == ICMP_DEST_UNREACH && code == ICMP_FRAG_NEEDED) return true;
    return !((1u << type) & nd->icmp.ratemask);
}

/* Whose global bucket nd uses: its own netns's, or its host's (icmp_host). */
static net_node_t *global_of(net_node_t *nd)
{
    return nd->icmp_host ? nd->icmp_host : nd;
}

/* icmp_global_allow(); nd: the owner of the bucket (global_of) */
static bool global_allow(net_node_t *nd)
{
    struct net_icmp_rl *rl = rl_get(nd);
    if (rl->credit > 0) return true;
    int64_t now = jiffies(nd);
    int64_t delta = rl->stamped && now - rl->stamp < HZ ? now - rl->stamp : HZ;
    if (delta < HZ / 50) return false;
    int64_t incr = (int64_t)nd->icmp.msgs_per_sec * delta / HZ;
    if (!incr) return false;
    rl->stamp = now;
    rl->stamped = true;
    rl->credit = rl->credit + incr < nd->icmp.msgs_burst ? rl->credit + incr
                                                         : nd->icmp.msgs_burst;
    return true;
}

/* icmp_global_consume(): get_random_u32_below(3) credits; the credit may go negative */
static void global_consume(net_node_t *nd)
{
    struct net_icmp_rl *rl = rl_get(nd);
    if (!rl->rng) {
        char name[160];
        snprintf(name, sizeof name, "icmp:%s", nd->name);
        rl->rng = sim_rng(nd->net->hdr.sim, name);
    }
    rl->credit -= (int64_t)gsl_rng_uniform_int(rl->rng, 3);
}

/* __icmp_send()'s two checks, in its order: icmpv4_global_allow() before the route
 * lookup (skipped when the packet came in on loopback), icmpv4_xrlim_allow() after it
 * (only when the global check applied, and not toward a local address, which routes via
 * lo). dst_local/routed: where the error goes. */
bool net_icmp_allow_(net_node_t *nd, const pkt_t *about, uint8_t type, uint8_t code,
                     bool in_lo, bool dst_local, bool routed)
{
    bool apply = false;
    net_node_t *host = global_of(nd);
    if (!in_lo && !mask_allow(nd, type, code)) {
        if (!global_allow(host)) {
            rl_get(nd)->st.ratelimit_global++;
            refused(nd, about, "no ICMP type %u code %u: global ICMP rate limit "
                    "(icmp_msgs_per_sec %d, icmp_msgs_burst %d%s%s)", type, code,
                    host->icmp.msgs_per_sec, host->icmp.msgs_burst,
                    host != nd ? ", shared with the host " : "", host != nd ? host->name : "");
            return false;
        }
        apply = true;
    }
    if (!routed) return true;           /* no route back: the output path drops it */
    if (!apply) return true;
    if (!dst_local) {
        int64_t timeout = nd->icmp.ratelimit / (SIM_S / HZ);
        if (!peer_xrlim_allow(peer_get(nd, about->src), jiffies(nd), timeout)) {
            rl_get(nd)->st.ratelimit_host++;
            char a[16];
            refused(nd, about, "no ICMP type %u code %u to %s: per-destination ICMP rate "
                    "limit (icmp_ratelimit %lld ms, burst %d)", type, code,
                    lb_ip_str(about->src, a), (long long)(nd->icmp.ratelimit / SIM_MS),
                    XRLIM_BURST_FACTOR);
            return false;
        }
    }
    global_consume(host);
    return true;
}

void net_icmp_sent_(net_node_t *nd)
{
    rl_get(nd)->st.sent++;
}
