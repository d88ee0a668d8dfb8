/* net.h -- the packet network: packets and the application messages they carry, nodes
 * with interfaces and longest-prefix routing, point-to-point links (latency, bandwidth,
 * queue, loss), cloud fabrics that deliver by IP (VPC/VNet) with virtual-IP handlers for
 * cloud L4 load balancers, drop accounting and per-flow tracing.
 *
 * Path of a packet through a node (Linux order; see src/net/node.c):
 *   rx:  PREROUTING (conntrack, nat DNAT) -> route -> local? INPUT -> protocol (tcp_input)
 *                                                   : FORWARD -> POSTROUTING (SNAT) -> tx
 *   out: route -> OUTPUT (conntrack, nat DNAT, filter) -> reroute -> POSTROUTING -> tx
 * Ownership: a function that takes a pkt_t* consumes it (forwards, queues or frees it). */
#ifndef NET_H
#define NET_H

#include <stdio.h>
#include "lb.h"
#include "engine.h"

typedef struct net net_t;
typedef struct net_node net_node_t;
typedef struct net_iface net_iface_t;
typedef struct net_link net_link_t;
typedef struct net_fabric net_fabric_t;
typedef struct pkt pkt_t;
typedef struct net_msg net_msg_t;
struct nf;          /* netfilter.h */
struct tcp_stack;   /* tcp.h */
struct ct_entry;    /* netfilter.h */

/* ---- application messages ------------------------------------------------------------
 * A message (an HTTP request, say) travels as a TCP byte count; the last segment of the
 * message carries a reference to it, so the receiver gets the object when all its bytes
 * have arrived in order. Reference counted; destroy() runs when refs reaches 0. */
struct net_msg {
    int refs;
    uint32_t size;                  /* bytes on the wire */
    int kind;                       /* NET_MSG_* */
    void (*destroy)(net_msg_t *m);  /* frees the containing object */
};
enum { NET_MSG_RAW = 0, NET_MSG_HTTP = 1 };
static inline net_msg_t *net_msg_ref(net_msg_t *m) { if (m) m->refs++; return m; }
void net_msg_unref(net_msg_t *m);   /* NULL-safe */
/* A plain message of `size` bytes with no content (tests, bulk data). refs = 1. */
net_msg_t *net_msg_raw(uint32_t size);

/* ---- packets ------------------------------------------------------------------------- */
enum { NET_PROTO_ICMP = 1, NET_PROTO_TCP = 6, NET_PROTO_UDP = 17 };
enum { TCP_FIN = 0x01, TCP_SYN = 0x02, TCP_RST = 0x04, TCP_PSH = 0x08, TCP_ACK = 0x10 };
enum { ICMP_DEST_UNREACH = 3, ICMP_TIME_EXCEEDED = 11 };
enum { ICMP_NET_UNREACH = 0, ICMP_HOST_UNREACH = 1, ICMP_PORT_UNREACH = 3,
       ICMP_ADMIN_PROHIBITED = 13 };
#define NET_IP_HDR 20
#define NET_TCP_HDR 20
#define NET_TCP_SYN_OPTS 20     /* MSS, SACK-permitted, timestamps, wscale on a SYN */
#define NET_TCP_OPTS 12         /* timestamps on every other segment */

struct pkt {
    pkt_t *next;                /* free list / queue link; not on the wire */
    uint64_t id;                /* unique per packet, in creation order */
    uint64_t flow;              /* trace id: the connection this packet belongs to */
    uint32_t src, dst;          /* IPv4, host order */
    uint16_t sport, dport;      /* TCP/UDP ports; ICMP: 0 */
    uint8_t proto, ttl;
    uint8_t tcp_flags;          /* TCP_* */
    uint8_t icmp_type, icmp_code;
    bool dsack;                 /* TCP: the ACK reports a duplicate segment (RFC 2883
                                 * D-SACK; its option bytes are not counted) */
    uint16_t mss;               /* MSS option on SYN / SYN-ACK, else 0 */
    uint32_t seq, ack, win;
    uint32_t len;               /* payload bytes */
    uint32_t mark;              /* skb->mark, set by netfilter MARK */
    net_msg_t *msg;             /* message ending in this segment (owned ref) or NULL */
    struct {                    /* ICMP errors quote the offending packet's header */
        uint32_t src, dst;
        uint16_t sport, dport;
        uint8_t proto;
    } inner;
    /* per-node traversal state, reset when the packet leaves a node */
    struct ct_entry *ct;        /* conntrack entry (borrowed) */
    uint8_t ct_dir;             /* 0 original, 1 reply */
    uint8_t ct_state;           /* CT_NEW, CT_ESTABLISHED, CT_RELATED, CT_INVALID, CT_UNTRACKED */
    bool pooled;                /* in the pool's free list (net_free releases the others) */
    net_iface_t *in_if;         /* interface it arrived on (NULL when locally generated) */
    sim_time_t born;            /* creation time */
};
/* Allocates a zeroed packet from the network's pool (ttl 64, id and born set). */
pkt_t *pkt_new(net_t *net);
/* Copies header fields (not id, not traversal state) and takes a new ref on msg. */
pkt_t *pkt_clone(net_t *net, const pkt_t *p);
/* Returns a packet to the pool, dropping its msg ref. NULL-safe. */
void pkt_free(net_t *net, pkt_t *p);
/* The RST that answers TCP segment `in` from its destination (RFC 793 "Reset
 * Generation", as Linux's tcp_v4_send_reset and nf_send_reset build it): addresses and
 * ports swapped, same flow; if `in` has ACK: RST with seq = in's ack; else RST|ACK with
 * seq 0 and ack = in's seq + len (+1 for SYN and for FIN). NULL for a RST or non-TCP. */
pkt_t *pkt_rst_reply(net_t *net, const pkt_t *in);
/* Bytes on the wire: IP + transport headers + payload. */
uint32_t pkt_wire_bytes(const pkt_t *p);
/* "10.0.0.1:1234 > 10.0.0.2:80 TCP [S] seq=.. ack=.. len=.." into buf (>= 128 bytes). */
const char *pkt_str(const pkt_t *p, char *buf, size_t n);

/* ---- observers: drops, trace lines, captured packets ----------------------------------
 * The report layer installs one observer; the network calls it. Every dropped packet has a
 * reason slug (static string, e.g. "no-route", "nf-drop", "ct-invalid", "queue-full") and
 * a detail text (which rule, which LB). */
typedef struct net_observer {
    void (*drop)(void *data, const net_node_t *where, const pkt_t *p,
                 const char *reason, const char *detail);
    void (*trace)(void *data, sim_time_t t, uint64_t flow, const char *where,
                  const char *text);
    void (*capture)(void *data, sim_time_t t, const char *where, const pkt_t *p);
    /* a notable decision about a flow (an RST for an unknown connection, a SYN given up),
     * for the explanation layer; cheap: rare events only */
    void (*note)(void *data, const char *where, uint64_t flow, const char *text);
    void *data;
} net_observer_t;

/* ---- the network ---------------------------------------------------------------------- */
net_t *net_new(sim_t *sim);
void net_free(net_t *net);                  /* frees nodes, links, fabrics, pools */
sim_t *net_sim(const net_t *net);
void net_set_observer(net_t *net, const net_observer_t *obs);
/* A new flow (trace) id; ids are 1, 2, 3... in request order, so deterministic. */
uint64_t net_flow_new(net_t *net);
/* Trace every hop decision of one flow (0: none). */
void net_trace_flow(net_t *net, uint64_t flow);
static inline bool net_tracing(const net_t *net, uint64_t flow);
/* Emits a trace line for p's flow when that flow is traced. `where` is a node or element. */
void net_tracef(net_t *net, const char *where, const pkt_t *p, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same for code that has a flow id but no packet (timers, app decisions). */
void net_tracef_flow(net_t *net, const char *where, uint64_t flow, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Reports a notable decision about a flow to the observer's note callback (no-op without
 * one). For rare events only: it formats text. */
void net_notef(net_t *net, const char *where, uint64_t flow, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Records a drop with its reason and frees the packet. */
void net_drop(net_t *net, const net_node_t *where, pkt_t *p, const char *reason,
              const char *detail_fmt, ...) __attribute__((format(printf, 5, 6)));
/* Drop totals by reason slug (for metrics), in first-seen order. */
size_t net_drop_reasons(const net_t *net, const char ***reasons, const uint64_t **counts);
uint64_t net_drops_total(const net_t *net);

/* ---- what runs on the network -----------------------------------------------------------
 * Models register the active parts they start (health checkers, traffic clients) under a
 * kind tag (a static string: "health", "http-client"), so that another executor -- real
 * mode, which plays a built scenario on real sockets -- can enumerate them instead of
 * keeping a second description. The network only keeps the pointers; an object
 * unregisters itself when it is freed (before net_free). */
void net_app_register(net_t *net, const char *kind, void *obj);
void net_app_unregister(net_t *net, void *obj);     /* no-op for an unknown object */
/* The i-th registered object of `kind`, in registration order; NULL past the end. */
void *net_app_at(const net_t *net, const char *kind, size_t i);

/* ---- nodes and interfaces ------------------------------------------------------------- */
/* Route types, as Linux's rtm_type (include/uapi/linux/rtnetlink.h) and what the kernel
 * does with each (fib_props[] in net/ipv4/fib_semantics.c, ip_error() in
 * net/ipv4/route.c):
 *   type         a connect() from the node   a packet the node forwards
 *   unicast      goes out (via gw, dev)      forwarded
 *   blackhole    EINVAL                      dropped silently
 *   unreachable  EHOSTUNREACH                dropped, ICMP host unreachable to the sender
 *   prohibit     EACCES                      dropped, ICMP admin prohibited (code 13)
 *   (no route)   ENETUNREACH                 dropped, ICMP net unreachable
 * A locally generated packet that meets one of them is dropped without ICMP. */
enum { NET_RT_UNICAST = 0, NET_RT_BLACKHOLE, NET_RT_UNREACHABLE, NET_RT_PROHIBIT };
typedef struct net_route {
    uint32_t prefix;
    int plen;
    uint32_t gw;                /* 0: destination is on-link */
    net_iface_t *ifc;           /* NULL for the types other than unicast */
    uint8_t type;               /* NET_RT_* */
} net_route_t;

typedef int (*net_proto_rx_cb)(net_node_t *node, pkt_t *p, void *data); /* consumes p */

/* The ICMP error rate limits of a node's kernel (Linux 6.18, net/ipv4/icmp.c, route.c,
 * inetpeer.c; the node's sysctls, defaults set by net_node_add):
 *   ip_error()               forwarded packets without a route: a per-source bucket
 *                            (ip_rt_error_cost = 1 s, ip_rt_error_burst = 5 s) ahead of
 *                            icmp_send();
 *   icmpv4_global_allow()    types in ratemask: the icmp_msgs_per_sec / icmp_msgs_burst
 *                            bucket, each error sent taking 0, 1 or 2 credits at random
 *                            (icmp_global_consume(); stream "icmp:<node>"); the node's
 *                            own (per network namespace since 6.12), or with icmp_host set
 *                            the host's, whose sysctls it then follows (before 6.12 the
 *                            bucket and the two sysctls were the initial netns's, shared
 *                            by every netns of the host: a pod and its node);
 *   icmpv4_xrlim_allow()     types in ratemask, not to a local destination: the
 *                            per-destination bucket inet_peer_xrlim_allow(), icmp_ratelimit
 *                            per error, up to 6 (XRLIM_BURST_FACTOR) saved up.
 * ip_error() and icmpv4_xrlim_allow() share the destination's inet_peer tokens, so a
 * forwarded packet without a route costs 2 s of them: a fresh sender gets two errors at
 * once, then one per 2 s of tokens. Jiffies are milliseconds (HZ 1000). */
typedef struct net_icmp_limits {
    sim_time_t ratelimit;       /* net.ipv4.icmp_ratelimit (1 s; whole ms, 0 to INT_MAX) */
    uint32_t ratemask;          /* net.ipv4.icmp_ratemask (0x1818: types 3, 4, 11, 12) */
    int msgs_per_sec;           /* net.ipv4.icmp_msgs_per_sec (1000; 0 to INT_MAX) */
    int msgs_burst;             /* net.ipv4.icmp_msgs_burst (50; 0 to INT_MAX) */
    bool global_per_netns;      /* the global bucket and its two sysctls are per netns
                                 * (6.12 and later); false: one per host */
} net_icmp_limits_t;
void net_icmp_limits_default(net_icmp_limits_t *l);
/* The defaults of Linux `version` ("MAJOR.MINOR[...]", as tcp_params_kernel reads it):
 * the four sysctls' values are the same in every version (ratelimit and ratemask for
 * decades, 1000 / 50 since the global limit came, commit 4cdf507d5452, 2014; kernels
 * before it are not told apart); global_per_netns from 6.12. Returns 0, or LB_EINVAL
 * (l untouched) for an unreadable version. */
int net_icmp_limits_kernel(net_icmp_limits_t *l, const char *version);
/* ICMP errors a node did not send, by the limit that suppressed them (ip_error()'s bucket
 * has no kernel counter; the other two are Icmp RateLimitHost / RateLimitGlobal of nstat). */
typedef struct net_icmp_stats {
    uint64_t sent, ratelimit_host, ratelimit_global, ip_error;
} net_icmp_stats_t;
net_icmp_stats_t net_node_icmp_stats(const net_node_t *node);

struct net_node {
    net_t *net;
    char *name;
    uint32_t id;                /* index in creation order */
    bool forwarding;            /* net.ipv4.ip_forward */
    LB_VEC(net_iface_t *) ifaces;
    LB_VEC(net_route_t) routes; /* in the order added (net_route_lookup finds the longest) */
    lb_index_t route_index;     /* with many routes: (prefix, plen) -> position */
    uint64_t route_plens;       /* bit p: some route has prefix length p */
    LB_VEC(uint32_t) local_addrs;/* addresses this node owns (all ifaces + extra) */
    lb_index_t local_index;     /* with many addresses (a hub router): address -> position */
    struct nf *nf;              /* netfilter + conntrack; NULL until first used */
    struct tcp_stack *tcp;      /* NULL until first used */
    net_proto_rx_cb udp_rx;     /* optional handler for local UDP */
    void *udp_rx_data;
    void *data;                 /* owner's slot (the model that built the node) */
    net_icmp_limits_t icmp;     /* the kernel's ICMP error rate limits (net_icmp_error) */
    struct net_icmp_rl *icmp_rl;/* their state; NULL until the first ICMP error */
    net_node_t *icmp_host;      /* NULL, or the node (the host's initial netns) whose global
                                 * ICMP bucket and msgs sysctls this one shares (a pod on a
                                 * kernel before 6.12) */
};

struct net_iface {
    net_node_t *node;
    char *name;                 /* "eth0" */
    uint32_t addr;
    int plen;
    net_link_t *link;           /* attached to a link, or */
    net_fabric_t *fabric;       /* attached to a fabric, or neither (down) */
    int link_side;              /* 0 or 1 on its link */
    uint64_t tx_pkts, rx_pkts, tx_bytes, rx_bytes;
    sim_time_t busy_until;      /* fabric attachments: serialisation of the last packet */
};

net_node_t *net_node_add(net_t *net, const char *name);       /* name must be unique */
net_node_t *net_node_find(const net_t *net, const char *name);
size_t net_node_count(const net_t *net);
net_node_t *net_node_at(const net_t *net, size_t i);
/* Adds an interface with addr/plen and its connected route. addr may be 0 (unnumbered). */
net_iface_t *net_iface_add(net_node_t *node, const char *name, uint32_t addr, int plen);
/* Makes addr local to the node (a secondary address; replies may use it as source). */
void net_node_addr_add(net_node_t *node, uint32_t addr);
bool net_node_is_local(const net_node_t *node, uint32_t addr);
/* The node's primary address: the first numbered interface's address (0 if none). */
uint32_t net_node_addr(const net_node_t *node);
/* Adds a route; plen 0 is the default route. */
void net_route_add(net_node_t *node, uint32_t prefix, int plen, uint32_t gw, net_iface_t *ifc);
/* Adds a route of type NET_RT_BLACKHOLE, NET_RT_UNREACHABLE or NET_RT_PROHIBIT. */
void net_route_add_type(net_node_t *node, uint32_t prefix, int plen, int type);
/* Longest-prefix match; NULL when no route. The cost does not grow with the number of
 * routes (a hash per prefix length in use, once there are more than a few). */
const net_route_t *net_route_lookup(const net_node_t *node, uint32_t dst);
/* The route of exactly prefix/plen (the first added), or NULL. */
const net_route_t *net_route_find(const net_node_t *node, uint32_t prefix, int plen);
/* What a connect() from the node gets for route r (net_route_lookup's answer): 0 for a
 * unicast route, LB_ENETUNREACH for none, LB_EINVAL (blackhole), LB_EHOSTUNREACH
 * (unreachable), LB_EACCES (prohibit). */
int net_route_error(const net_route_t *r);
/* "blackhole", "unreachable", "prohibit" or "unicast". */
const char *net_route_type_name(int type);
/* The route as `ip route` prints it: "10.1.0.0/16 via 10.0.0.1 dev eth0",
 * "default via 10.0.0.1 dev eth0", "10.0.0.0/30 dev eth0", "blackhole 10.9.0.0/16";
 * "no route" for NULL. buf >= 80 bytes. Returns buf. */
const char *net_route_str(const net_route_t *r, char *buf, size_t n);
/* Source address the node uses toward dst (the outgoing interface's address). */
uint32_t net_node_src_for(const net_node_t *node, uint32_t dst);

/* Entry points of the packet path (src/net/node.c). */
void net_node_rx(net_node_t *node, net_iface_t *in, pkt_t *p);  /* arrival from the wire */
void net_node_output(net_node_t *node, pkt_t *p);               /* locally generated */
/* Sends an ICMP error about `about` from node, unless the node's ICMP rate limits
 * (net_icmp_limits_t) suppress it: then a trace line says which one, nothing is sent. */
void net_icmp_error(net_node_t *node, const pkt_t *about, uint8_t type, uint8_t code);

/* ---- links -----------------------------------------------------------------------------
 * Full duplex; each direction serialises packets at `bandwidth_bps`, holds up to
 * `queue_bytes` waiting, then adds `latency`. Loss is Bernoulli per packet from the
 * random stream "link:<a>-<b>". */
typedef struct net_link_params {
    sim_time_t latency;         /* one-way propagation delay */
    uint64_t bandwidth_bps;     /* 0: infinite */
    uint64_t queue_bytes;       /* 0: unlimited */
    double loss;                /* 0..1 */
} net_link_params_t;
net_link_t *net_link_new(net_t *net, net_iface_t *a, net_iface_t *b,
                         const net_link_params_t *params);
/* Changes loss or latency at run time (fault injection). */
void net_link_set_params(net_link_t *l, const net_link_params_t *params);
const net_link_params_t *net_link_params(const net_link_t *l);
/* The interface at the other end of ifc's link (NULL when ifc is not on a link). */
net_iface_t *net_link_peer(const net_iface_t *ifc);

/* ---- every link at once ------------------------------------------------------------------
 * A run-wide impairment that every link and every fabric of the network obeys on top of
 * its own parameters, whoever created it (scenario links, cluster veths, vnets): `loss` is
 * drawn in addition to the link's own (a packet must survive both), `queue_bytes` and
 * `bandwidth_bps` cap the link's (the smaller non-zero value wins). Zero: no change, and
 * then nothing differs from a network without it (no extra random draws). */
typedef struct net_all_links {
    double loss;                /* 0..1 */
    uint64_t queue_bytes;       /* 0: no cap */
    uint64_t bandwidth_bps;     /* 0: no cap */
} net_all_links_t;
void net_set_all_links(net_t *net, const net_all_links_t *all);

/* ---- fabrics (cloud VPC / VNet) --------------------------------------------------------
 * Every attached interface is reachable by its address; extra prefixes (pod CIDRs,
 * secondary IPs) can point at an interface. A virtual IP (a cloud L4 LB frontend) hands
 * packets to its handler instead, which forwards them with net_fabric_send. */
typedef struct net_fabric_params {
    sim_time_t latency;         /* one-way, between any two attachments */
    uint64_t bandwidth_bps;     /* per attachment, 0: infinite */
    uint64_t queue_bytes;       /* per attachment, bytes that may wait; 0: unlimited */
    double loss;
    /* A shared L2 segment (a switch) instead of a cloud network: a packet goes to the
     * attachment that holds its next hop (the route's gateway, or the destination for an
     * on-link route), as an Ethernet frame goes to the MAC that ARP resolved -- without ARP
     * packets. No holder: after NET_NEIGH_FAIL_DELAY the packet is dropped
     * ("neigh-failed") and the sending node answers its source with ICMP host unreachable
     * (arp_error_report -> ipv4_link_failure), so a connect() to an absent neighbour fails
     * with EHOSTUNREACH after about 3 s, as on Linux. */
    bool l2;
} net_fabric_params_t;
/* Neighbour resolution gives up after mcast_solicit (3) probes retrans_time (1 s) apart
 * (net/ipv4/arp.c arp_tbl defaults); measured: connect() to an absent address on the
 * local subnet fails with EHOSTUNREACH after 3.08 s (Linux 6.18, network namespaces). */
#define NET_NEIGH_FAIL_DELAY (3 * SIM_S)
typedef void (*net_vip_cb)(net_fabric_t *fab, pkt_t *p, void *data);   /* consumes p */
net_fabric_t *net_fabric_new(net_t *net, const char *name, const net_fabric_params_t *params);
const char *net_fabric_name(const net_fabric_t *fab);
const net_fabric_params_t *net_fabric_params(const net_fabric_t *fab);
int net_fabric_attach(net_fabric_t *fab, net_iface_t *ifc);
/* Routes prefix/plen to ifc (plen 32: an exact entry). LB_EEXIST for a prefix routed
 * already (an exact address held already). */
int net_fabric_route(net_fabric_t *fab, uint32_t prefix, int plen, net_iface_t *ifc);
/* A load balancer frontend: packets to addr go to cb. owner names it in error messages
 * (the element's name; copied). LB_EEXIST when something in fab holds addr already. */
int net_fabric_vip(net_fabric_t *fab, uint32_t addr, const char *owner, net_vip_cb cb,
                   void *data);
/* Who in fab holds an address of prefix/plen (plen 32: the address itself): an attached
 * interface's or routed prefix's node name, or a VIP's owner; NULL when nothing does.
 * *where and *where_plen (each may be NULL) get the address (32) or route found. */
const char *net_fabric_holder(const net_fabric_t *fab, uint32_t prefix, int plen,
                              uint32_t *where, int *where_plen);
/* Dynamic allocation as Azure and AWS do it: the first address of subnet/plen that nothing
 * in fab holds, after the first four and before the last, which both clouds reserve
 * (learn.microsoft.com/azure/virtual-network/ip-services/private-ip-addresses: "the next
 * available unassigned or unreserved IP address in the subnet's address range";
 * docs.aws.amazon.com/vpc/latest/userguide/subnet-sizing.html). Returns 0 and *out,
 * LB_ENOMEM when the subnet is full, LB_EINVAL for a subnet smaller than /29. */
#define NET_FABRIC_RESERVED_LOW 4
#define NET_FABRIC_RESERVED_HIGH 1
#define NET_FABRIC_ALLOC_MAX_PLEN 29
int net_fabric_alloc(const net_fabric_t *fab, uint32_t subnet, int plen, uint32_t *out);
/* Delivers p to whatever owns p->dst (after the fabric latency); drop if nobody does.
 * Used by interfaces transmitting into the fabric and by VIP handlers forwarding. */
void net_fabric_send(net_fabric_t *fab, pkt_t *p);
/* Delivers p to a specific interface, bypassing address lookup (L2-style forwarding of
 * an LB that keeps the destination address: floating IP / DSR). */
void net_fabric_send_to(net_fabric_t *fab, net_iface_t *ifc, pkt_t *p);
/* Read-only views for descriptions (--describe): the network's fabrics in creation order;
 * entry i of a fabric's address table (sorted by address), *ifc NULL for a virtual IP;
 * route i of its extra prefixes (longest first). Each returns false past the end. */
size_t net_fabric_count(const net_t *net);
net_fabric_t *net_fabric_at(const net_t *net, size_t i);
bool net_fabric_addr_at(const net_fabric_t *fab, size_t i, uint32_t *addr, net_iface_t **ifc);
bool net_fabric_route_at(const net_fabric_t *fab, size_t i, uint32_t *prefix, int *plen,
                         net_iface_t **ifc);

/* ---- inline ------------------------------------------------------------------------- */
/* net_t starts with this public prefix so that the hot-path check inlines. */
typedef struct net_hdr_ { sim_t *sim; uint64_t trace_flow; } net_hdr_t;
static inline bool net_tracing(const net_t *net, uint64_t flow) {
    uint64_t f = ((const net_hdr_t *)(const void *)net)->trace_flow;
    return f != 0 && f == flow;
}

#endif
