/* util.h -- helpers shared by the unit tests: small topologies built through the public
 * C API, so every suite exercises the same calls the scenario builder uses. */
#ifndef TESTS_UTIL_H
#define TESTS_UTIL_H

#include "net.h"
#include "tcp.h"
#include "http.h"
#include "explain.h"
#include "k8s.h"

/* Two hosts "a" (10.0.0.1/24) and "b" (10.0.0.2/24) on one link with the given params. */
typedef struct tu_pair { sim_t *sim; net_t *net; net_node_t *a, *b; net_link_t *link; } tu_pair_t;
void tu_pair_new(tu_pair_t *t, uint64_t seed, sim_time_t latency, uint64_t bw_bps, double loss);
void tu_pair_free(tu_pair_t *t);
/* Records every packet each node sees on the wire (for assertions), via the observer. */
typedef struct tu_capture { int n; struct { sim_time_t t; pkt_t p; char where[32]; } rec[4096]; } tu_capture_t;
void tu_capture_start(net_t *net, tu_capture_t *cap);
/* The ip of "10.x.y.z" as a uint32 (asserting it parses). */
uint32_t tu_ip(const char *s);

/* ---- a cloud network: a fabric (VNet/VPC) and hosts on it ------------------------------ */
/* A new simulation (seed), its network and one fabric `name` with the given one-way latency;
 * free with net_free(*net) and sim_free(*sim). */
void tu_fabric_new(uint64_t seed, const char *name, sim_time_t latency, sim_t **sim,
                   net_t **net, net_fabric_t **fab);
/* Adds node `name` with eth0 = ip/plen attached to fab (asserting it attaches), and with
 * default_route a default route out of eth0. Returns eth0 (its node: ->node). */
net_iface_t *tu_fabric_host(net_t *net, net_fabric_t *fab, const char *name,
                            const char *ip, int plen, bool default_route);
/* A TCP segment src:sport -> dst:dport with the given flags, fresh from the network's pool
 * (not sent: net_fabric_send or similar consumes it). */
pkt_t *tu_tcp_pkt(net_t *net, const char *src, uint16_t sport, const char *dst,
                  uint16_t dport, uint8_t flags);

/* ---- HTTP results, as an http_pool_request callback records them ------------------------ */
#define TU_RES_MAX 64
/* Result k goes to slot k % TU_RES_MAX; resp is cleared, and what the tests look at is
 * copied: body, Server and Location headers, the proxy's detail ("" when absent). */
typedef struct tu_res {
    int n;                                          /* results so far */
    http_result_t r[TU_RES_MAX];
    char body[TU_RES_MAX][400], server[TU_RES_MAX][64], detail[TU_RES_MAX][200],
        location[TU_RES_MAX][128];
} tu_res_t;
/* The http_result_cb: data is the tu_res_t. */
void tu_res_cb(const http_result_t *r, void *data);

/* ---- explanations ---------------------------------------------------------------------- */
/* explain_print(ex, NULL) into a string, asserting it printed `chains` chains; free() it. */
char *tu_explain_text(const explain_t *ex, size_t chains);

/* ---- everything the network observer reports --------------------------------------------- */
/* Packets arriving at nodes, drops with their reason and detail, and trace lines
 * "where: text"; each list stops filling when full. Large: allocate it (lb_calloc). */
typedef struct tu_obs {
    tu_capture_t cap;           /* the packets, as tu_capture_start records them */
    int ndrop;
    struct { char where[16], reason[32], detail[400]; } drop[64];
    int ntrace;
    char trace[128][256];
} tu_obs_t;
/* Clears o and makes it the network's observer. */
void tu_obs_start(net_t *net, tu_obs_t *o);
/* The i-th (0-based) packet captured arriving at node `where`, or NULL. */
const pkt_t *tu_obs_cap(const tu_obs_t *o, const char *where, int i);
int tu_obs_cap_count(const tu_obs_t *o, const char *where);
/* Index of the first drop at `where` with `reason`, or -1. */
int tu_obs_drop_find(const tu_obs_t *o, const char *where, const char *reason);
/* Whether some trace line contains needle. */
bool tu_obs_trace_has(const tu_obs_t *o, const char *needle);

/* ---- a TCP endpoint that records its callbacks ---------------------------------------------- */
/* Counts and times of each callback, the bytes received, and optionally an answer or a close.
 * Active side: tcp_connect(..., &tu_side_cbs, side, ...); passive side: tcp_listen(...,
 * tu_side_accept, side). `sim` must be set (the times come from it). */
typedef struct tu_side {
    sim_t *sim;
    tcp_conn_t *c;              /* the connection; NULL once this side closed it or it failed */
    int connected, accepted, eofs, errors, recvs;
    int rc;                     /* the error reported */
    sim_time_t t_connected, t_accepted, t_eof, t_error, t_recv;
    uint64_t bytes;
    net_msg_t *last;            /* the last message received (borrowed: may be gone) */
    uint32_t peer;              /* accepted: the peer's address and port */
    uint16_t peer_port;
    uint32_t reply;             /* answer each message with this many bytes */
    bool close_on_eof;          /* close when the peer's FIN arrives */
    bool close_after_reply;     /* close right after replying */
    bool close_on_recv;         /* close when a message arrives (when not replying) */
} tu_side_t;
extern const tcp_cbs_t tu_side_cbs;
/* The tcp_accept_cb: data is the tu_side_t; sets tu_side_cbs on the new connection. */
void tu_side_accept(tcp_conn_t *c, void *side);
/* tu_side_cbs's error callback alone (for callback sets of a test's own). */
void tu_side_error(tcp_conn_t *c, int rc, void *side);

/* ---- TCP statistics and hand-made segments ------------------------------------------------- */
/* The node's TCP stack statistics (tcp_stack_stats) by value. */
tcp_stats_t tu_tcp_stats(net_node_t *n);
/* tu_tcp_pkt with sequence and acknowledgement numbers and a full window (65535). */
pkt_t *tu_tcp_seg(net_t *net, const char *src, uint16_t sport, const char *dst,
                  uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack);

/* ---- Kubernetes objects ---------------------------------------------------------------- */
/* Service port p is named `name`, on `port`, with appProtocol app_protocol. */
/* The kube-proxy suites' network: client -- n1 (eth1 203.0.113.1, eth0 10.240.0.4, cbr0
 * 10.244.0.0/24 with pod-a .10) -- n2 (eth0 10.240.0.5, cbr0 10.244.1.0/24 with pod-b .10),
 * forwarding on both nodes, pod routes between them, an observer on everything.
 * n1_default: n1 also routes everything else (ClusterIPs) to n2. */
typedef struct tu_kp_net {
    sim_t *sim;
    net_t *net;
    net_node_t *client, *n1, *n2, *pa, *pb;
    tu_obs_t *obs;              /* lb_free it after net_free */
} tu_kp_net_t;
void tu_kp_net_new(tu_kp_net_t *k, bool n1_default);
/* NODE's nftables ruleset as `nft list ruleset` prints it (to free). */
char *tu_nft_list(net_node_t *node);

/* The index of the line of text equal to l, or -1. */
int tu_line_at(const char *text, const char *l);
/* Exact text equality, reporting the first line that differs (full texts overflow Check's
 * 4 KB messages). */
void tu_assert_text_eq(const char *got, const char *want);
void tu_assert_svc_port(const k8s_service_port_t *p, const char *name, int port,
                        const char *app_protocol);

#endif
