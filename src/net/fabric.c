/* fabric.c -- a cloud VPC/VNet: delivers by destination IP to attached interfaces, to
 * interfaces behind extra prefixes (pod CIDRs, secondary IPs), or to virtual-IP handlers
 * (cloud L4 load balancer frontends); or a shared L2 segment (params.l2), which delivers
 * to the holder of each packet's next hop, as ARP would resolve it. Each attachment
 * serialises at the fabric's per-NIC bandwidth (tail drop past queue_bytes waiting);
 * every delivery adds the fabric latency.
 * Lookup: exact address (binary search over a sorted table), then longest matching extra
 * prefix (per prefix length, a table sorted by prefix: at most 32 binary searches, however
 * many nodes route a pod range here). Also who holds an address, and the clouds'
 * first-free allocation in a subnet, which skips a run of held addresses in one binary
 * search, so that N nodes allocating one after another cost O(N log N), not O(N^2). */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "net_int.h"

typedef struct fab_addr {
    uint32_t addr;
    net_iface_t *ifc;       /* or */
    net_vip_cb vip;
    void *vip_data;
    char *owner;            /* the VIP's owner (owned); NULL for an interface */
} fab_addr_t;

typedef struct fab_route { uint32_t prefix; int plen; net_iface_t *ifc; } fab_route_t;

struct net_fabric {
    net_t *net;
    char *name;
    net_fabric_params_t p;
    LB_VEC(fab_addr_t) addrs;       /* sorted by addr */
    LB_VEC(fab_route_t) routes;     /* sorted by plen descending, then in insertion order */
    LB_VEC(fab_route_t) by_plen[32];    /* the same routes per prefix length, by prefix */
    uint32_t plens;                 /* bit p: some route has prefix length p */
    gsl_rng *rng;
};

net_fabric_t *net_fabric_new(net_t *n, const char *name, const net_fabric_params_t *p)
{
    net_fabric_t *f = lb_calloc(1, sizeof *f);
    f->net = n;
    f->name = lb_strdup(name);
    f->p = *p;
    char s[200];
    snprintf(s, sizeof s, "fabric:%s", name);
    f->rng = sim_rng(n->hdr.sim, s);
    lb_vec_push(&n->fabrics, f);
    return f;
}

void net_fabric_free_(net_fabric_t *f)
{
    for (size_t i = 0; i < f->addrs.n; i++) lb_free(f->addrs.v[i].owner);
    lb_vec_free(&f->addrs);
    lb_vec_free(&f->routes);
    for (int p = 0; p < 32; p++) lb_vec_free(&f->by_plen[p]);
    lb_free(f->name);
    lb_free(f);
}

const char *net_fabric_name(const net_fabric_t *f) { return f->name; }
const net_fabric_params_t *net_fabric_params(const net_fabric_t *f) { return &f->p; }

static fab_addr_t *addr_find(net_fabric_t *f, uint32_t a)
{
    size_t lo = 0, hi = f->addrs.n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->addrs.v[mid].addr < a) lo = mid + 1;
        else hi = mid;
    }
    return lo < f->addrs.n && f->addrs.v[lo].addr == a ? &f->addrs.v[lo] : NULL;
}

static int addr_insert(net_fabric_t *f, fab_addr_t e)
{
    if (addr_find(f, e.addr)) return LB_EEXIST;
    lb_vec_reserve(&f->addrs, f->addrs.n + 1);
    size_t i = f->addrs.n;
    while (i > 0 && f->addrs.v[i - 1].addr > e.addr) {
        f->addrs.v[i] = f->addrs.v[i - 1];
        i--;
    }
    f->addrs.v[i] = e;
    f->addrs.n++;
    return 0;
}

int net_fabric_attach(net_fabric_t *f, net_iface_t *ifc)
{
    if (ifc->link || ifc->fabric) return LB_EINVAL;
    ifc->fabric = f;
    if (!ifc->addr) return 0;
    return addr_insert(f, (fab_addr_t){.addr = ifc->addr, .ifc = ifc});
}

/* The first route of prefix length p whose prefix is >= lo (its table's size if none). */
static size_t plen_lower(const net_fabric_t *f, int p, uint32_t lo)
{
    size_t a = 0, b = f->by_plen[p].n;
    while (a < b) {
        size_t mid = (a + b) / 2;
        if (f->by_plen[p].v[mid].prefix < lo) a = mid + 1;
        else b = mid;
    }
    return a;
}

/* The route of prefix length p that contains address a, or NULL (prefixes of one length
 * are distinct, so there is at most one). */
static const fab_route_t *plen_find(const net_fabric_t *f, int p, uint32_t a)
{
    uint32_t want = a & lb_prefix_mask(p);
    size_t i = plen_lower(f, p, want);
    return i < f->by_plen[p].n && f->by_plen[p].v[i].prefix == want ? &f->by_plen[p].v[i]
                                                                     : NULL;
}

/* The longest route containing a, or NULL. */
static const fab_route_t *route_covering(const net_fabric_t *f, uint32_t a)
{
    for (int p = 31; p >= 0; p--) {
        if (!(f->plens & (1u << p))) continue;
        const fab_route_t *r = plen_find(f, p, a);
        if (r) return r;
    }
    return NULL;
}

int net_fabric_route(net_fabric_t *f, uint32_t prefix, int plen, net_iface_t *ifc)
{
    if (plen == 32) {
        return addr_insert(f, (fab_addr_t){.addr = prefix, .ifc = ifc});
    }
    assert(plen >= 0 && plen < 32);
    fab_route_t r = {prefix & lb_prefix_mask(plen), plen, ifc};
    size_t k = plen_lower(f, plen, r.prefix);
    if (k < f->by_plen[plen].n && f->by_plen[plen].v[k].prefix == r.prefix) return LB_EEXIST;
    lb_vec_reserve(&f->by_plen[plen], f->by_plen[plen].n + 1);
    memmove(&f->by_plen[plen].v[k + 1], &f->by_plen[plen].v[k],
            (f->by_plen[plen].n - k) * sizeof r);
    f->by_plen[plen].v[k] = r;
    f->by_plen[plen].n++;
    f->plens |= 1u << plen;
    lb_vec_reserve(&f->routes, f->routes.n + 1);
    size_t i = f->routes.n;
    while (i > 0 && f->routes.v[i - 1].plen < plen) {
        f->routes.v[i] = f->routes.v[i - 1];
        i--;
    }
    f->routes.v[i] = r;
    f->routes.n++;
    return 0;
}

int net_fabric_vip(net_fabric_t *f, uint32_t addr, const char *owner, net_vip_cb cb, void *data)
{
    if (addr_find(f, addr)) return LB_EEXIST;
    return addr_insert(f, (fab_addr_t){.addr = addr, .vip = cb, .vip_data = data,
                                       .owner = lb_strdup(owner ? owner : "a load balancer")});
}

/* The holder's name of an exact entry: the interface's node, or the VIP's owner. */
static const char *entry_holder(const fab_addr_t *e)
{
    return e->owner ? e->owner : e->ifc->node->name;
}

const char *net_fabric_holder(const net_fabric_t *f, uint32_t prefix, int plen,
                              uint32_t *where, int *where_plen)
{
    uint32_t w;
    int wp;
    if (!where) where = &w;
    if (!where_plen) where_plen = &wp;
    uint32_t mask = lb_prefix_mask(plen), lo = prefix & mask, hi = lo | ~mask;
    size_t a = 0, b = f->addrs.n;           /* the first exact entry >= lo */
    while (a < b) {
        size_t mid = (a + b) / 2;
        if (f->addrs.v[mid].addr < lo) a = mid + 1;
        else b = mid;
    }
    if (a < f->addrs.n && f->addrs.v[a].addr <= hi) {
        *where = f->addrs.v[a].addr;
        *where_plen = 32;
        return entry_holder(&f->addrs.v[a]);
    }
    for (int p = 31; p >= 0; p--) {     /* a route overlapping [lo, hi], the longest first */
        if (!(f->plens & (1u << p))) continue;
        const fab_route_t *r = NULL;
        if (p <= plen) {
            r = plen_find(f, p, lo);        /* one containing the range */
        } else {                            /* the lowest inside it */
            size_t i = plen_lower(f, p, lo);
            if (i < f->by_plen[p].n && f->by_plen[p].v[i].prefix <= hi) r = &f->by_plen[p].v[i];
        }
        if (r) {
            *where = r->prefix;
            *where_plen = r->plen;
            return r->ifc->node->name;
        }
    }
    return NULL;
}

int net_fabric_alloc(const net_fabric_t *f, uint32_t subnet, int plen, uint32_t *out)
{
    if (plen < 0 || plen > NET_FABRIC_ALLOC_MAX_PLEN) return LB_EINVAL;
    uint32_t mask = lb_prefix_mask(plen), lo = (subnet & mask) + NET_FABRIC_RESERVED_LOW,
             hi = (subnet | ~mask) - NET_FABRIC_RESERVED_HIGH;
    uint64_t a = lo;
    while (a <= hi) {
        /* a run of held addresses a, a+1, ...: the table is sorted and has no duplicates,
         * so entry i0+j holds a+j exactly up to the run's end -- found by binary search */
        size_t n = f->addrs.n, i0 = 0, b = n;
        while (i0 < b) {
            size_t mid = (i0 + b) / 2;
            if (f->addrs.v[mid].addr < a) i0 = mid + 1;
            else b = mid;
        }
        if (i0 < n && f->addrs.v[i0].addr == a) {
            size_t j = 1, e = n - i0;           /* first j that breaks the run */
            while (j < e) {
                size_t mid = (j + e) / 2;
                if (f->addrs.v[i0 + mid].addr == a + mid) j = mid + 1;
                else e = mid;
            }
            a += j;
            continue;
        }
        const fab_route_t *r = route_covering(f, (uint32_t)a);
        if (r) {                                /* a routed prefix: skip all of it */
            a = (uint64_t)(r->prefix | ~lb_prefix_mask(r->plen)) + 1;
            continue;
        }
        *out = (uint32_t)a;
        return 0;
    }
    return LB_ENOMEM;
}

static net_iface_t *route_find(net_fabric_t *f, uint32_t a)
{
    const fab_route_t *r = route_covering(f, a);
    return r ? r->ifc : NULL;
}

static void deliver_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    net_iface_t *ifc = a;
    net_node_rx(ifc->node, ifc, b);
}


static void vip_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    net_fabric_t *f = a;
    pkt_t *p = b;
    fab_addr_t *e = addr_find(f, p->dst);   /* table may have grown: look up again */
    if (!e || !e->vip) {
        char d[16];
        net_drop(f->net, NULL, p, "fabric-no-destination", "%s: nothing owns %s", f->name,
                 lb_ip_str(p->dst, d));
        return;
    }
    e->vip(f, p, e->vip_data);
}

/* Schedules delivery of p after `extra` + latency, to ifc or to the VIP owner. */
static void deliver(net_fabric_t *f, net_iface_t *ifc, bool vip, sim_time_t extra, pkt_t *p)
{
    sim_t *sim = f->net->hdr.sim;
    double loss = net_loss_(f->p.loss, f->net->all.loss);
    if (loss > 0 && gsl_rng_uniform(f->rng) < loss) {
        net_drop(f->net, NULL, p, "fabric-loss", "lost in %s", f->name);
        return;
    }
    if (vip) sim_schedule(sim, extra + f->p.latency, vip_cb, f, p);
    else sim_schedule(sim, extra + f->p.latency, deliver_cb, ifc, p);
}

/* A segment's neighbour that never answered: the packet is dropped and the sending node
 * reports it to the packet's source (ipv4_link_failure: ICMP host unreachable). */
static void neigh_fail_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    net_iface_t *from = a;
    pkt_t *p = b;
    char d[16];
    net_icmp_error(from->node, p, ICMP_DEST_UNREACH, ICMP_HOST_UNREACH);
    net_drop(from->node->net, from->node, p, "neigh-failed", "%s/%s: neighbour resolution "
             "failed on %s for a packet to %s", from->node->name, from->name,
             net_fabric_name(from->fabric), lb_ip_str(p->dst, d));
}

/* Segment delivery (params.l2): to whoever holds the next hop. */
static void l2_deliver(net_fabric_t *f, net_iface_t *from, uint32_t nexthop, sim_time_t extra,
                       pkt_t *p)
{
    fab_addr_t *e = addr_find(f, nexthop);
    if (!e || !e->ifc) {
        if (net_tracing(f->net, p->flow)) {
            char h[16];
            net_tracef(f->net, f->name, p, "no neighbour holds %s: dropped after %.0f s of "
                       "neighbour resolution", lb_ip_str(nexthop, h),
                       (double)NET_NEIGH_FAIL_DELAY / SIM_S);
        }
        if (!from) {
            char h[16];
            net_drop(f->net, NULL, p, "neigh-failed", "%s: nothing holds %s", f->name,
                     lb_ip_str(nexthop, h));
            return;
        }
        sim_schedule(f->net->hdr.sim, NET_NEIGH_FAIL_DELAY, neigh_fail_cb, from, p);
        return;
    }
    if (net_tracing(f->net, p->flow))
        net_tracef(f->net, f->name, p, "deliver to %s/%s", e->ifc->node->name, e->ifc->name);
    deliver(f, e->ifc, false, extra, p);
}

static void route_and_deliver(net_fabric_t *f, uint32_t nexthop, sim_time_t extra, pkt_t *p)
{
    fab_addr_t *e = addr_find(f, p->dst);
    net_iface_t *ifc = e ? e->ifc : route_find(f, p->dst);
    if (!e && !ifc && nexthop != p->dst) {  /* a node acting as router for this prefix */
        e = addr_find(f, nexthop);
        ifc = e ? e->ifc : NULL;
    }
    if (e && e->vip) {
        if (net_tracing(f->net, p->flow))
            net_tracef(f->net, f->name, p, "to load balancer frontend");
        deliver(f, NULL, true, extra, p);
        return;
    }
    if (!ifc) {
        char d[16];
        net_drop(f->net, NULL, p, "fabric-no-destination", "%s: nothing owns %s", f->name,
                 lb_ip_str(p->dst, d));
        return;
    }
    if (net_tracing(f->net, p->flow))
        net_tracef(f->net, f->name, p, "deliver to %s/%s", ifc->node->name, ifc->name);
    deliver(f, ifc, false, extra, p);
}

void net_fabric_tx(net_fabric_t *f, net_iface_t *from, uint32_t nexthop, pkt_t *p)
{
    sim_time_t now = sim_now(f->net->hdr.sim), extra = 0;
    uint64_t bw = net_cap_(f->p.bandwidth_bps, f->net->all.bandwidth_bps),
             queue = net_cap_(f->p.queue_bytes, f->net->all.queue_bytes);
    if (bw) {           /* the NIC serialises; tail drop as on a link (link.c) */
        uint64_t bytes = pkt_wire_bytes(p);
        sim_time_t start = from->busy_until > now ? from->busy_until : now;
        if (queue && start > now) {
            uint64_t waiting = (uint64_t)(start - now) * bw / 8 / SIM_S;
            if (waiting + bytes > queue) {
                net_drop(f->net, from->node, p, "queue-full", "%s: %llu bytes queued into %s, "
                         "limit %llu", from->name, (unsigned long long)waiting, f->name,
                         (unsigned long long)queue);
                return;
            }
        }
        sim_time_t ser = (sim_time_t)((bytes * 8 * (uint64_t)SIM_S + bw - 1) / bw);
        from->busy_until = start + ser;
        extra = start + ser - now;
    }
    if (f->p.l2) l2_deliver(f, from, nexthop, extra, p);
    else route_and_deliver(f, nexthop, extra, p);
}

void net_fabric_send(net_fabric_t *f, pkt_t *p)
{
    route_and_deliver(f, p->dst, 0, p);
}

void net_fabric_send_to(net_fabric_t *f, net_iface_t *ifc, pkt_t *p)
{
    assert(ifc->fabric == f);
    if (net_tracing(f->net, p->flow))
        net_tracef(f->net, f->name, p, "deliver to %s/%s (destination kept)", ifc->node->name,
                   ifc->name);
    deliver(f, ifc, false, 0, p);
}

size_t net_fabric_count(const net_t *n) { return n->fabrics.n; }
net_fabric_t *net_fabric_at(const net_t *n, size_t i) { return i < n->fabrics.n ? n->fabrics.v[i] : NULL; }

bool net_fabric_addr_at(const net_fabric_t *f, size_t i, uint32_t *addr, net_iface_t **ifc)
{
    if (i >= f->addrs.n) return false;
    *addr = f->addrs.v[i].addr;
    *ifc = f->addrs.v[i].vip ? NULL : f->addrs.v[i].ifc;
    return true;
}

bool net_fabric_route_at(const net_fabric_t *f, size_t i, uint32_t *prefix, int *plen,
                         net_iface_t **ifc)
{
    if (i >= f->routes.n) return false;
    *prefix = f->routes.v[i].prefix;
    *plen = f->routes.v[i].plen;
    *ifc = f->routes.v[i].ifc;
    return true;
}
