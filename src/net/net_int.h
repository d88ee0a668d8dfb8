/* net_int.h -- private to src/net: the network object behind net_t and helpers shared by
 * net.c, node.c, link.c and fabric.c. */
#ifndef NET_INT_H
#define NET_INT_H

#include "net.h"

struct net {
    net_hdr_t hdr;                      /* public prefix: sim, trace_flow (net.h) */
    LB_VEC(net_node_t *) nodes;
    lb_index_t node_index;              /* hash of a node's name -> nodes position */
    LB_VEC(net_link_t *) links;
    LB_VEC(net_fabric_t *) fabrics;
    pkt_t *pkt_free;                    /* pool free list */
    LB_VEC(pkt_t *) pkt_chunks;
    uint64_t next_pkt_id, next_flow;
    net_observer_t obs;
    LB_VEC(const char *) drop_reasons;  /* static slugs, first-seen order */
    LB_VEC(uint64_t) drop_counts;
    uint64_t drops_total;
    LB_VEC(struct net_app { const char *kind; void *obj; }) apps;  /* net_app_register */
    net_all_links_t all;                /* run-wide impairment (net_set_all_links) */
    struct nf_share *nf_share;          /* netfilter tables shared between nodes (owned;
                                         * netfilter.c) */
};
/* netfilter.c: frees the shared tables (after every node's netfilter is freed). */
void nf_share_free_(struct nf_share *sh);

/* A link's or fabric's own cap combined with the run-wide one: the smaller non-zero wins
 * (0 means none). */
static inline uint64_t net_cap_(uint64_t own, uint64_t all)
{
    return !all ? own : (!own || all < own) ? all : own;
}
/* Its own loss combined with the run-wide loss: a packet must survive both draws. */
static inline double net_loss_(double own, double all)
{
    return all > 0 ? 1.0 - (1.0 - own) * (1.0 - all) : own;
}

static inline sim_t *net_sim_(const net_t *n) { return n->hdr.sim; }

/* Transmits p out of ifc toward nexthop (link peer or fabric owner). Consumes p. */
void net_iface_tx(net_iface_t *ifc, uint32_t nexthop, pkt_t *p);
/* Link and fabric transmit paths. */
void net_link_tx(net_link_t *l, int side, pkt_t *p);
void net_fabric_tx(net_fabric_t *fab, net_iface_t *from, uint32_t nexthop, pkt_t *p);
void net_link_free_(net_link_t *l);
void net_fabric_free_(net_fabric_t *f);
void net_node_free_(net_node_t *n);
/* icmp.c: the ICMP error rate limits (net_icmp_limits_t). ip_error()'s bucket for a
 * forwarded packet p without a route; __icmp_send()'s global and per-destination checks
 * for an error about `about` (in_lo: it came in on loopback; dst_local: the error goes to
 * a local address; routed: the node has a route for it). False: suppressed, traced. */
bool net_ip_error_allow_(net_node_t *nd, const pkt_t *p);
bool net_icmp_allow_(net_node_t *nd, const pkt_t *about, uint8_t type, uint8_t code,
                     bool in_lo, bool dst_local, bool routed);
void net_icmp_sent_(net_node_t *nd);
void net_icmp_rl_free_(net_node_t *nd);

#endif
