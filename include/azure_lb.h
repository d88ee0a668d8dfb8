/* azure_lb.h -- Azure Standard Load Balancer with an internal frontend: a frontend IP in
 * the VNet fabric, load-balancing rules, a backend pool of node NICs probed from
 * 168.63.129.16 by the shared health checker, and a 5-tuple flow table.
 *
 * New flows go to a backend healthy for the rule's probe; established flows keep theirs,
 * healthy or not; with no healthy backend a new flow's SYN is dropped. Replies never pass
 * through the LB (the backend answers the client directly: DSR). The scenario builder
 * feeds it cloud-provider-azure's probe choice (azure_lb_probe_from_cpa); the behaviour
 * and its sources are described in models/azure/azure_lb.c. */
#ifndef AZURE_LB_H
#define AZURE_LB_H

#include "net.h"
#include "metrics.h"
#include "health.h"
#include "cloud_provider_azure.h"

/* The Azure platform address health probes come from (load-balancer-custom-probe-overview.md
 * "Probe source IP address"; virtual-network/what-is-ip-address-168-63-129-16.md). */
#define AZURE_LB_PROBE_SRC "168.63.129.16"
/* The node that sends every Azure LB probe of a fabric (printf format: the fabric's name). */
#define AZURE_LB_PROBE_NODE_FMT "azure-lb-probe@%s"
/* Load-balancing rule idle timeout default: 4 minutes (load-balancer-tcp-idle-timeout.md). */
#define AZURE_LB_IDLE_TIMEOUT_DEFAULT (4 * 60 * SIM_S)
/* Probe defaults as cloud-provider-azure sets them (consts.go, see cloud_provider_azure.h). */
#define AZURE_LB_PROBE_INTERVAL_DEFAULT (CPA_PROBE_INTERVAL_DEFAULT_S * SIM_S)
#define AZURE_LB_PROBE_THRESHOLD_DEFAULT CPA_PROBE_NUM_DEFAULT

typedef struct azure_lb azure_lb_t;

/* An Azure LB health probe. HTTPS is probed like HTTP (the simulator has no TLS). */
typedef enum { AZURE_PROBE_NONE, AZURE_PROBE_TCP, AZURE_PROBE_HTTP, AZURE_PROBE_HTTPS }
    azure_probe_proto_t;
typedef struct azure_lb_probe {
    const char *name;               /* NULL: "<proto>-<port>" (e.g. "http-30080") */
    azure_probe_proto_t protocol;   /* NONE: the rule has no probe: every backend counts
                                     * as healthy */
    uint16_t port;                  /* probed on each backend NIC's address */
    const char *path;               /* HTTP(S): request path ("/") */
    sim_time_t interval;            /* 0: AZURE_LB_PROBE_INTERVAL_DEFAULT */
    int threshold;                  /* probeThreshold, consecutive results to change
                                     * state; 0: AZURE_LB_PROBE_THRESHOLD_DEFAULT */
} azure_lb_probe_t;

/* The probe cloud-provider-azure chose for a service port. out->path points into cp.
 * LB_ENOENT when cp has no LB rule (port_{port}_no_lb_rule). */
int azure_lb_probe_from_cpa(const cpa_probe_t *cp, azure_lb_probe_t *out);

typedef struct azure_lb_rule {
    const char *name;               /* NULL: "<proto>-<frontend port>" */
    uint8_t protocol;               /* NET_PROTO_TCP or NET_PROTO_UDP */
    uint16_t frontend_port;
    uint16_t backend_port;          /* must equal frontend_port with floating IP */
    bool floating_ip;               /* on: the backend sees the frontend IP:port as
                                     * destination. Off: the backend's IP and backend_port;
                                     * Azure's host agent also rewrites the replies' source
                                     * back to the frontend, which is NOT modelled yet (net.h
                                     * has no per-NIC egress hook): replies leave with the
                                     * node's address and the client resets them */
    sim_time_t idle_timeout;        /* 0: AZURE_LB_IDLE_TIMEOUT_DEFAULT */
    bool tcp_reset;                 /* RST both ends when a TCP flow idles out (else silent) */
    azure_lb_probe_t probe;
} azure_lb_rule_t;
/* TCP, port -> port, floating IP on (cloud-provider-azure's default), idle 4 min, no TCP
 * reset, a TCP probe on `port`. */
void azure_lb_rule_init(azure_lb_rule_t *r, uint16_t port);

typedef struct azure_lb_params {
    uint32_t probe_src;             /* 168.63.129.16 */
    bool fail_open;                 /* probe noHealthyBackendsBehavior "AllProbedUp": with no
                                     * healthy backend new flows go to all of them; false
                                     * ("AllProbedDown", the default): they are dropped */
    bool probe_fail_fast;           /* health_params_t.fail_fast for the probes (see
                                     * models/azure/azure_lb.c: older docs say a non-200 or a RST
                                     * probes down at once); default false */
    sim_time_t probe_jitter;        /* first probe of each backend in [0, jitter); 0 */
    metrics_t *metrics;             /* probe counters; may be NULL */
} azure_lb_params_t;
void azure_lb_params_default(azure_lb_params_t *p);

/* A load balancer `name` with frontend IP `frontend` in fabric fab (registered with
 * net_fabric_vip). Creates, or reuses, the probe source node "azure-lb-probe@<fabric>"
 * with params->probe_src attached to fab. params NULL: defaults. Returns NULL with *rc:
 * LB_EINVAL (no name, frontend 0), LB_EEXIST (frontend already owned in the fabric, or
 * the probe address taken by something else). */
azure_lb_t *azure_lb_new(net_t *net, net_fabric_t *fab, const char *name, uint32_t frontend,
                         const azure_lb_params_t *params, int *rc);
/* Stops the probes and frees the LB. The fabric keeps the frontend registered (net.h has
 * no way to remove a VIP): call only at teardown, after the last sim_run. NULL-safe. */
void azure_lb_free(azure_lb_t *lb);

/* Adds a backend NIC (attached to the LB's fabric; label NULL: its node's name). Every
 * probe starts probing it. Returns its index (0, 1, ...) or LB_EINVAL / LB_EEXIST. */
int azure_lb_add_backend(azure_lb_t *lb, net_iface_t *ifc, const char *label);
/* Adds a rule (copied); its probe is shared with earlier rules whose probe is identical.
 * Returns its index or LB_EINVAL (protocol, port 0, floating IP with backend_port !=
 * frontend_port, bad probe), LB_EEXIST (frontend port and protocol already used, or a
 * named probe redefined differently). */
int azure_lb_add_rule(azure_lb_t *lb, const azure_lb_rule_t *rule);

/* ---- queries (explanations, tests) ---------------------------------------------------- */
const char *azure_lb_name(const azure_lb_t *lb);
uint32_t azure_lb_frontend(const azure_lb_t *lb);
net_node_t *azure_lb_probe_node(const azure_lb_t *lb);
size_t azure_lb_backend_count(const azure_lb_t *lb);
net_iface_t *azure_lb_backend_iface(const azure_lb_t *lb, size_t backend);
const char *azure_lb_backend_label(const azure_lb_t *lb, size_t backend);
size_t azure_lb_rule_count(const azure_lb_t *lb);
const azure_lb_rule_t *azure_lb_rule(const azure_lb_t *lb, size_t rule);  /* strings kept */
/* Rule index for a frontend port and protocol, or -1. */
int azure_lb_rule_find(const azure_lb_t *lb, uint8_t protocol, uint16_t frontend_port);
/* The rule's health checker (NULL for a rule without a probe); its targets are the
 * backends, in order. */
health_t *azure_lb_rule_health(const azure_lb_t *lb, size_t rule);
bool azure_lb_backend_healthy(const azure_lb_t *lb, size_t rule, size_t backend);
size_t azure_lb_rule_healthy_count(const azure_lb_t *lb, size_t rule);
/* Since when the rule has had no healthy backend (the rule's creation time if none ever
 * was), or -1 while it has one. */
sim_time_t azure_lb_rule_down_since(const azure_lb_t *lb, size_t rule);
/* Why the rule has no healthy backend, e.g. "probe http-30080 (HTTP GET / on port 30080,
 * 200 only): aks-0 down: HTTP 404; aks-1 down: HTTP 404", into buf; returns buf, or NULL
 * while the rule has a healthy backend. */
const char *azure_lb_rule_down_reason(const azure_lb_t *lb, size_t rule, char *buf, size_t n);
/* The backend a live flow is pinned to, or -1 (no flow, or idled out). */
int azure_lb_flow_backend(const azure_lb_t *lb, uint32_t src, uint16_t sport, uint32_t dst,
                          uint16_t dport, uint8_t proto);

/* Health events, for the explanation layer. */
typedef enum {
    AZURE_LB_EV_BACKEND_UP,         /* a backend became healthy for the rule's probe */
    AZURE_LB_EV_BACKEND_DOWN,       /* ... unhealthy (from UP or from INITIAL) */
    AZURE_LB_EV_RULE_DOWN,          /* the rule's last healthy backend went down */
    AZURE_LB_EV_RULE_UP             /* the rule has a healthy backend again (or at last) */
} azure_lb_ev_kind_t;
typedef struct azure_lb_event {
    azure_lb_ev_kind_t kind;
    sim_time_t t;
    size_t rule;
    size_t backend;                 /* the backend whose transition caused the event */
    health_state_t from, to;        /* that backend's transition */
    const health_result_t *probe;   /* the probe result that caused it (borrowed) */
} azure_lb_event_t;
typedef void (*azure_lb_event_cb)(azure_lb_t *lb, const azure_lb_event_t *ev, void *data);
void azure_lb_set_event_cb(azure_lb_t *lb, azure_lb_event_cb cb, void *data);

typedef struct azure_lb_stats {
    uint64_t packets, new_flows, flows_now;
    uint64_t drop_no_rule, drop_no_healthy, drop_no_flow, drop_expired;
    uint64_t idle_expired, resets_sent;
} azure_lb_stats_t;
void azure_lb_stats(const azure_lb_t *lb, azure_lb_stats_t *out);

#endif
