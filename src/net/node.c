/* node.c -- nodes, interfaces, longest-prefix routing and the packet path through a node
 * in Linux order (net/ipv4/ip_input.c, ip_forward.c, ip_output.c):
 *   rx:  PREROUTING -> route -> local ? INPUT -> protocol : FORWARD -> POSTROUTING -> tx
 *   out: route -> OUTPUT -> reroute if NATed -> POSTROUTING -> tx (or loopback)
 * Netfilter runs only on nodes that have one (node->nf); the rest take the fast path. */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "net_int.h"
#include "netfilter.h"
#include "tcp.h"

/* Nodes with more local addresses than this (a hub router) find them by hash. */
#define LOCAL_INDEX_MIN 8

net_node_t *net_node_add(net_t *n, const char *name)
{
    assert(!net_node_find(n, name));
    net_node_t *nd = lb_calloc(1, sizeof *nd);
    nd->net = n;
    nd->name = lb_strdup(name);
    nd->id = (uint32_t)n->nodes.n;
    net_icmp_limits_default(&nd->icmp);
    lb_vec_push(&n->nodes, nd);
    lb_index_add(&n->node_index, lb_hash_str(name), nd->id);
    return nd;
}

void net_node_free_(net_node_t *nd)
{
    if (nd->tcp) tcp_stack_free(nd->tcp);
    if (nd->nf) nf_free(nd->nf);
    net_icmp_rl_free_(nd);
    for (size_t i = 0; i < nd->ifaces.n; i++) {
        lb_free(nd->ifaces.v[i]->name);
        lb_free(nd->ifaces.v[i]);
    }
    lb_vec_free(&nd->ifaces);
    lb_vec_free(&nd->routes);
    lb_index_free(&nd->route_index);
    lb_vec_free(&nd->local_addrs);
    lb_index_free(&nd->local_index);
    lb_free(nd->name);
    lb_free(nd);
}

net_node_t *net_node_find(const net_t *n, const char *name)
{
    uint64_t h = lb_hash_str(name);
    for (size_t it, i = lb_index_first(&n->node_index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&n->node_index, h, &it))
        if (strcmp(n->nodes.v[i]->name, name) == 0) return n->nodes.v[i];
    return NULL;
}

size_t net_node_count(const net_t *n) { return n->nodes.n; }
net_node_t *net_node_at(const net_t *n, size_t i) { return i < n->nodes.n ? n->nodes.v[i] : NULL; }

void net_node_addr_add(net_node_t *nd, uint32_t addr)
{
    if (!addr || net_node_is_local(nd, addr)) return;
    lb_vec_push(&nd->local_addrs, addr);
    if (nd->local_index.cap) {
        lb_index_add(&nd->local_index, addr, nd->local_addrs.n - 1);
    } else if (nd->local_addrs.n > LOCAL_INDEX_MIN) {
        for (size_t i = 0; i < nd->local_addrs.n; i++)
            lb_index_add(&nd->local_index, nd->local_addrs.v[i], i);
    }
}

bool net_node_is_local(const net_node_t *nd, uint32_t addr)
{
    if ((addr >> 24) == 127) return true;
    if (nd->local_index.cap) {
        for (size_t it, i = lb_index_first(&nd->local_index, addr, &it); i != LB_INDEX_NONE;
             i = lb_index_next(&nd->local_index, addr, &it))
            if (nd->local_addrs.v[i] == addr) return true;
        return false;
    }
    for (size_t i = 0; i < nd->local_addrs.n; i++)
        if (nd->local_addrs.v[i] == addr) return true;
    return false;
}

uint32_t net_node_addr(const net_node_t *nd)
{
    for (size_t i = 0; i < nd->ifaces.n; i++)
        if (nd->ifaces.v[i]->addr) return nd->ifaces.v[i]->addr;
    return nd->local_addrs.n ? nd->local_addrs.v[0] : 0;
}

net_iface_t *net_iface_add(net_node_t *nd, const char *name, uint32_t addr, int plen)
{
    net_iface_t *ifc = lb_calloc(1, sizeof *ifc);
    ifc->node = nd;
    ifc->name = lb_strdup(name);
    ifc->addr = addr;
    ifc->plen = plen;
    lb_vec_push(&nd->ifaces, ifc);
    if (addr) {
        net_node_addr_add(nd, addr);
        uint32_t m = lb_prefix_mask(plen);
        net_route_add(nd, addr & m, plen, 0, ifc);
    }
    return ifc;
}

/* Longest-prefix match: the longest prefix wins, and among equal routes the one added
 * first. Small tables are scanned; a node with many routes (a hub router, a node with a
 * /32 per pod) looks each prefix length up in a hash of (prefix, plen), longest first. */
#define ROUTE_INDEX_MIN 8

static uint64_t route_key(uint32_t prefix, int plen)
{
    return ((uint64_t)prefix << 6) | (uint64_t)plen;
}

static void route_push(net_node_t *nd, net_route_t r)
{
    int plen = r.plen;
    lb_vec_push(&nd->routes, r);
    nd->route_plens |= 1ull << plen;
    if (nd->route_index.cap) {
        lb_index_add(&nd->route_index, route_key(r.prefix, plen), nd->routes.n - 1);
    } else if (nd->routes.n > ROUTE_INDEX_MIN) {
        for (size_t i = 0; i < nd->routes.n; i++)
            lb_index_add(&nd->route_index, route_key(nd->routes.v[i].prefix, nd->routes.v[i].plen), i);
    }
}

void net_route_add(net_node_t *nd, uint32_t prefix, int plen, uint32_t gw, net_iface_t *ifc)
{
    assert(plen >= 0 && plen <= 32 && ifc && ifc->node == nd);
    route_push(nd, (net_route_t){prefix & lb_prefix_mask(plen), plen, gw, ifc, NET_RT_UNICAST});
}

void net_route_add_type(net_node_t *nd, uint32_t prefix, int plen, int type)
{
    assert(plen >= 0 && plen <= 32 && type > NET_RT_UNICAST && type <= NET_RT_PROHIBIT);
    route_push(nd, (net_route_t){prefix & lb_prefix_mask(plen), plen, 0, NULL, (uint8_t)type});
}

const net_route_t *net_route_find(const net_node_t *nd, uint32_t prefix, int plen)
{
    prefix &= lb_prefix_mask(plen);
    if (!nd->route_index.cap) {
        for (size_t i = 0; i < nd->routes.n; i++)
            if (nd->routes.v[i].prefix == prefix && nd->routes.v[i].plen == plen)
                return &nd->routes.v[i];
        return NULL;
    }
    uint64_t h = route_key(prefix, plen);
    size_t best = LB_INDEX_NONE;
    for (size_t it, i = lb_index_first(&nd->route_index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&nd->route_index, h, &it))
        if (nd->routes.v[i].prefix == prefix && nd->routes.v[i].plen == plen && i < best)
            best = i;
    return best != LB_INDEX_NONE ? &nd->routes.v[best] : NULL;
}

int net_route_error(const net_route_t *r)
{
    if (!r) return LB_ENETUNREACH;
    switch (r->type) {
    case NET_RT_BLACKHOLE: return LB_EINVAL;
    case NET_RT_UNREACHABLE: return LB_EHOSTUNREACH;
    case NET_RT_PROHIBIT: return LB_EACCES;
    default: return 0;
    }
}

const char *net_route_type_name(int type)
{
    switch (type) {
    case NET_RT_BLACKHOLE: return "blackhole";
    case NET_RT_UNREACHABLE: return "unreachable";
    case NET_RT_PROHIBIT: return "prohibit";
    default: return "unicast";
    }
}

const char *net_route_str(const net_route_t *r, char *buf, size_t n)
{
    if (!r) {
        snprintf(buf, n, "no route");
        return buf;
    }
    char pfx[24], gw[16];
    if (r->plen == 0) snprintf(pfx, sizeof pfx, "default");
    else snprintf(pfx, sizeof pfx, "%s/%d", lb_ip_str(r->prefix, gw), r->plen);
    if (r->type != NET_RT_UNICAST)
        snprintf(buf, n, "%s %s", net_route_type_name(r->type), pfx);
    else if (r->gw)
        snprintf(buf, n, "%s via %s dev %s", pfx, lb_ip_str(r->gw, gw), r->ifc->name);
    else
        snprintf(buf, n, "%s dev %s", pfx, r->ifc->name);
    return buf;
}

const net_route_t *net_route_lookup(const net_node_t *nd, uint32_t dst)
{
    if (!nd->route_index.cap) {
        const net_route_t *best = NULL;
        for (size_t i = 0; i < nd->routes.n; i++) {
            const net_route_t *r = &nd->routes.v[i];
            if ((dst & lb_prefix_mask(r->plen)) == r->prefix && (!best || r->plen > best->plen))
                best = r;
        }
        return best;
    }
    for (int plen = 32; plen >= 0; plen--) {
        if (!(nd->route_plens >> plen & 1)) continue;
        uint32_t prefix = dst & lb_prefix_mask(plen);
        uint64_t h = route_key(prefix, plen);
        size_t best = LB_INDEX_NONE;
        for (size_t it, i = lb_index_first(&nd->route_index, h, &it); i != LB_INDEX_NONE;
             i = lb_index_next(&nd->route_index, h, &it))
            if (nd->routes.v[i].prefix == prefix && nd->routes.v[i].plen == plen && i < best)
                best = i;
        if (best != LB_INDEX_NONE) return &nd->routes.v[best];
    }
    return NULL;
}

uint32_t net_node_src_for(const net_node_t *nd, uint32_t dst)
{
    if (net_node_is_local(nd, dst)) return dst;
    const net_route_t *r = net_route_lookup(nd, dst);
    if (r && r->ifc && r->ifc->addr) return r->ifc->addr;
    return net_node_addr(nd);
}

/* ---- the packet path ---- */

static void local_deliver(net_node_t *nd, pkt_t *p)
{
    p->ct = NULL;
    switch (p->proto) {
    case NET_PROTO_TCP:
        tcp_input(nd, p);
        return;
    case NET_PROTO_ICMP:
        if ((p->icmp_type == ICMP_DEST_UNREACH || p->icmp_type == ICMP_TIME_EXCEEDED) &&
            p->inner.proto == NET_PROTO_TCP) {
            tcp_icmp_error(nd, p);
            return;
        }
        pkt_free(nd->net, p);
        return;
    case NET_PROTO_UDP:
        if (nd->udp_rx) {
            nd->udp_rx(nd, p, nd->udp_rx_data);
            return;
        }
        net_icmp_error(nd, p, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH);
        net_drop(nd->net, nd, p, "udp-no-listener", "no UDP socket on port %u", p->dport);
        return;
    default:
        net_drop(nd->net, nd, p, "unknown-protocol", "protocol %u", p->proto);
    }
}

static void local_in(net_node_t *nd, net_iface_t *in, pkt_t *p)
{
    if (nd->nf && nf_hook(nd->nf, NF_INPUT, p, in, NULL) == NF_STOLEN) return;
    if (net_tracing(nd->net, p->flow)) {
        char ps[160];
        net_tracef(nd->net, nd->name, p, "deliver locally: %s", pkt_str(p, ps, sizeof ps));
    }
    local_deliver(nd, p);
}

/* A packet whose route is missing or not unicast (r NULL or a blackhole, unreachable or
 * prohibit route). Forwarded (ip_error(), net/ipv4/route.c): ICMP net unreachable for no
 * route, host unreachable for `unreachable`, admin prohibited for `prohibit`, nothing for
 * a blackhole, each only when ip_error()'s per-source bucket allows (icmp.c). Locally
 * generated: the caller's send fails, nothing goes out. */
static void route_fail(net_node_t *nd, pkt_t *p, const net_route_t *r, bool forwarded)
{
    net_t *n = nd->net;
    char d[16], rs[96];
    lb_ip_str(p->dst, d);
    if (net_tracing(n, p->flow)) {
        if (r) net_tracef(n, nd->name, p, "%s %s: route %s", forwarded ? "forward to" : "send to",
                          d, net_route_str(r, rs, sizeof rs));
        else net_tracef(n, nd->name, p, "%s %s: no route", forwarded ? "forward to" : "send to",
                        d);
    }
    int type = r ? r->type : -1;
    if (forwarded && type != NET_RT_BLACKHOLE && net_ip_error_allow_(nd, p))
        net_icmp_error(nd, p, ICMP_DEST_UNREACH, type < 0 ? ICMP_NET_UNREACH
                       : type == NET_RT_UNREACHABLE ? ICMP_HOST_UNREACH : ICMP_ADMIN_PROHIBITED);
    if (type < 0) {
        net_drop(n, nd, p, "no-route", "%s has no route to %s", nd->name, d);
        return;
    }
    net_route_str(r, rs, sizeof rs);
    net_drop(n, nd, p, type == NET_RT_BLACKHOLE ? "route-blackhole" : type == NET_RT_UNREACHABLE
             ? "route-unreachable" : "route-prohibit", "%s: %s matches %s", nd->name, rs, d);
}

static void loopback_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    net_node_rx(a, NULL, b);
}

void net_node_rx(net_node_t *nd, net_iface_t *in, pkt_t *p)
{
    net_t *n = nd->net;
    if (in) {
        in->rx_pkts++;
        in->rx_bytes += pkt_wire_bytes(p);
    }
    p->in_if = in;
    if (n->obs.capture) n->obs.capture(n->obs.data, sim_now(n->hdr.sim), nd->name, p);
    if (nd->nf && nf_hook(nd->nf, NF_PREROUTING, p, in, NULL) == NF_STOLEN) return;
    if (net_node_is_local(nd, p->dst)) {
        local_in(nd, in, p);
        return;
    }
    if (!nd->forwarding) {
        net_drop(n, nd, p, "not-forwarding", "%s does not forward (ip_forward=0)", nd->name);
        return;
    }
    /* ip_route_input_slow() decides before ip_forward() looks at the TTL */
    const net_route_t *r = net_route_lookup(nd, p->dst);
    if (!r || r->type != NET_RT_UNICAST) {
        route_fail(nd, p, r, true);
        return;
    }
    if (p->ttl <= 1) {
        net_icmp_error(nd, p, ICMP_TIME_EXCEEDED, 0);
        net_drop(n, nd, p, "ttl-exceeded", "TTL expired at %s", nd->name);
        return;
    }
    p->ttl--;
    if (net_tracing(n, p->flow)) {
        char d[16], rs[96];
        net_tracef(n, nd->name, p, "forward to %s: route %s", lb_ip_str(p->dst, d),
                   net_route_str(r, rs, sizeof rs));
    }
    if (nd->nf) {
        if (nf_hook(nd->nf, NF_FORWARD, p, in, r->ifc) == NF_STOLEN) return;
        if (nf_hook(nd->nf, NF_POSTROUTING, p, in, r->ifc) == NF_STOLEN) return;
    }
    net_iface_tx(r->ifc, r->gw ? r->gw : p->dst, p);
}

void net_node_output(net_node_t *nd, pkt_t *p)
{
    net_t *n = nd->net;
    p->in_if = NULL;
    bool local = net_node_is_local(nd, p->dst);
    const net_route_t *r = local ? NULL : net_route_lookup(nd, p->dst);
    if (!local && (!r || r->type != NET_RT_UNICAST)) {
        route_fail(nd, p, r, false);
        return;
    }
    if (!p->src) p->src = local ? p->dst : (r->ifc->addr ? r->ifc->addr : net_node_addr(nd));
    if (nd->nf) {
        uint32_t dst = p->dst;
        if (nf_hook(nd->nf, NF_OUTPUT, p, NULL, r ? r->ifc : NULL) == NF_STOLEN) return;
        if (p->dst != dst) {                /* DNAT in OUTPUT: route again */
            local = net_node_is_local(nd, p->dst);
            r = local ? NULL : net_route_lookup(nd, p->dst);
            if (!local && (!r || r->type != NET_RT_UNICAST)) {
                route_fail(nd, p, r, false);
                return;
            }
        }
        if (nf_hook(nd->nf, NF_POSTROUTING, p, NULL, r ? r->ifc : NULL) == NF_STOLEN) return;
    }
    if (net_tracing(n, p->flow)) {
        char d[16], rs[96];
        net_tracef(n, nd->name, p, "send to %s: %s%s", lb_ip_str(p->dst, d),
                   local ? "local" : "route ", local ? "" : net_route_str(r, rs, sizeof rs));
    }
    if (local) {                            /* loopback: back in through PREROUTING */
        p->ct = NULL;
        sim_schedule(n->hdr.sim, 0, loopback_cb, nd, p);
        return;
    }
    net_iface_tx(r->ifc, r->gw ? r->gw : p->dst, p);
}

void net_iface_tx(net_iface_t *ifc, uint32_t nexthop, pkt_t *p)
{
    net_t *n = ifc->node->net;
    p->ct = NULL;
    p->ct_state = 0;
    p->ct_dir = 0;
    p->in_if = NULL;
    p->mark = 0;                            /* skb->mark never crosses the wire */
    ifc->tx_pkts++;
    ifc->tx_bytes += pkt_wire_bytes(p);
    if (ifc->link) {
        net_link_tx(ifc->link, ifc->link_side, p);
    } else if (ifc->fabric) {
        net_fabric_tx(ifc->fabric, ifc, nexthop, p);
    } else {
        net_drop(n, ifc->node, p, "iface-down", "%s/%s is not connected", ifc->node->name,
                 ifc->name);
    }
}

void net_icmp_error(net_node_t *nd, const pkt_t *about, uint8_t type, uint8_t code)
{
    if (about->proto == NET_PROTO_ICMP) return;      /* never an error about an error */
    net_t *n = nd->net;
    /* A packet that came in on loopback: delivered locally without an interface. */
    bool in_lo = !about->in_if && net_node_is_local(nd, about->src) &&
                 net_node_is_local(nd, about->dst);
    bool dst_local = net_node_is_local(nd, about->src);
    const net_route_t *r = dst_local ? NULL : net_route_lookup(nd, about->src);
    bool routed = dst_local || (r && r->type == NET_RT_UNICAST);
    if (!net_icmp_allow_(nd, about, type, code, in_lo, dst_local, routed)) return;
    if (routed) net_icmp_sent_(nd);
    pkt_t *p = pkt_new(n);
    p->proto = NET_PROTO_ICMP;
    p->icmp_type = type;
    p->icmp_code = code;
    p->dst = about->src;
    p->src = net_node_src_for(nd, about->src);
    p->flow = about->flow;
    p->inner.src = about->src;
    p->inner.dst = about->dst;
    p->inner.sport = about->sport;
    p->inner.dport = about->dport;
    p->inner.proto = about->proto;
    if (net_tracing(n, p->flow))
        net_tracef(n, nd->name, p, "send ICMP type %u code %u to the sender", type, code);
    net_node_output(nd, p);
}
