/* kube_proxy.h -- kube-proxy in iptables mode on one node (Kubernetes 1.29): the filter
 * and nat rules pkg/proxy/iptables/proxier.go writes for a set of service ports and their
 * endpoints, its jump rules, and the healthCheckNodePort servers of
 * pkg/proxy/healthcheck/service_health.go.
 * Independent of YAML: the k8s model (or a test) fills these structs and calls kp_sync()
 * whenever services or endpoints change, as the informer events would. */
#ifndef KUBE_PROXY_H
#define KUBE_PROXY_H

#include "net.h"

/* KubeProxyConfiguration iptables.masqueradeBit default (pkg/proxy/apis/config defaults):
 * mark 1 << 14 = 0x4000. */
#define KP_MASQUERADE_BIT_DEFAULT 14
/* sessionAffinityConfig.clientIP.timeoutSeconds default (core/v1 DefaultClientIPServiceAffinitySeconds). */
#define KP_AFFINITY_TIMEOUT_DEFAULT 10800
/* proxier.go largeClusterEndpointsThreshold: above this many endpoints in total the
 * per-endpoint comments are left out. */
#define KP_LARGE_CLUSTER_ENDPOINTS 1000
/* Chain-name hash: base32(sha256(...))[:16] (proxier.go portProtoHash). */
#define KP_HASH_LEN 16
#define KP_CHAIN_MAX 29                 /* "KUBE-PROXY-FIREWALL" .. 28 chars + NUL */

typedef enum { KP_POLICY_CLUSTER = 0, KP_POLICY_LOCAL = 1 } kp_policy_t;
/* KubeProxyConfiguration.mode. nftables (pkg/proxy/nftables/proxier.go, KEP-3866): alpha
 * in 1.29, beta in 1.31, GA in 1.33; before 1.31 behind the NFTablesProxyMode gate. */
typedef enum { KP_MODE_IPTABLES = 0, KP_MODE_NFTABLES = 1 } kp_mode_t;
/* Kubernetes minor version from which kube-proxy has the nftables mode (1.29). */
#define KP_NFTABLES_SINCE_MINOR 29

typedef struct kp_cidr { uint32_t addr; int plen; } kp_cidr_t;

/* One endpoint of a service port (an EndpointSlice endpoint with the port resolved).
 * Conditions as discovery/v1 EndpointConditions: an unset Ready means true, an unset
 * Serving means Ready, an unset Terminating means false -- callers fill the resolved
 * values. Local when node_name equals the proxy's node name. */
typedef struct kp_endpoint {
    uint32_t ip;
    uint16_t port;
    const char *node_name;              /* NULL: unknown, never local */
    bool ready, serving, terminating;
} kp_endpoint_t;

/* One service port (proxy.ServicePortName + BaseServicePortInfo). Everything is copied by
 * kp_service_set; arrays may be NULL when their count is 0. */
typedef struct kp_service_port {
    const char *ns, *name;
    const char *port_name;              /* ServicePort.name; NULL or "" when unnamed */
    const char *protocol;               /* "TCP" (NULL), "UDP" or "SCTP" */
    uint32_t cluster_ip;                /* 0: headless (ClusterIP None): not proxied */
    uint16_t port;
    uint16_t node_port;                 /* 0: none */
    const uint32_t *lb_ips;             /* status.loadBalancer.ingress[].ip */
    size_t n_lb_ips;
    const uint32_t *external_ips;       /* spec.externalIPs */
    size_t n_external_ips;
    const kp_cidr_t *lb_source_ranges;  /* spec.loadBalancerSourceRanges -> KUBE-FW chain */
    size_t n_lb_source_ranges;
    kp_policy_t external_policy;        /* externalTrafficPolicy (default Cluster) */
    kp_policy_t internal_policy;        /* internalTrafficPolicy (default Cluster) */
    /* spec.healthCheckNodePort, used (as kube-proxy does) only with external_policy
     * Local; the API server allocates it for type LoadBalancer + Local. 0: none. */
    uint16_t health_check_node_port;
    bool affinity_client_ip;            /* sessionAffinity ClientIP */
    int affinity_timeout_s;             /* 0: KP_AFFINITY_TIMEOUT_DEFAULT */
    const kp_endpoint_t *endpoints;
    size_t n_endpoints;
} kp_service_port_t;

/* Node-level kube-proxy settings; kp_config_default() gives kube-proxy's defaults. */
typedef struct kp_config {
    const char *node_name;              /* --hostname-override: endpoints with this nodeName
                                         * are local; NULL: the net node's name */
    int masquerade_bit;                 /* iptables.masqueradeBit: 14 */
    /* clusterCIDR for the LocalTrafficDetector (detectLocalMode ClusterCIDR). plen 0: not
     * known -> no "! -s CIDR" masquerade rule and no pod short-circuit in KUBE-EXT, as
     * proxier.go does when localDetector.IsImplemented() is false. */
    kp_cidr_t cluster_cidr;
    bool masquerade_all;                /* iptables.masqueradeAll: false */
    bool localhost_nodeports;           /* iptables.localhostNodePorts: true */
    bool random_fully;                  /* iptables >= 1.6.2 supports MASQUERADE --random-fully */
    bool conntrack_tcp_be_liberal;      /* sysctl nf_conntrack_tcp_be_liberal: 0 -> INVALID DROP */
    /* Feature gate ProxyTerminatingEndpoints (KEP-1669): with no ready endpoint (locally,
     * for ETP Local; anywhere, for Cluster) use the serving, terminating ones. Alpha 1.22,
     * beta and on by default 1.26, GA 1.28: true (kp_config_default); false models a
     * kube-proxy before 1.26, which drops (ETP Local) or rejects such traffic. */
    bool terminating_endpoints;
    const kp_cidr_t *nodeport_addresses;/* --nodeport-addresses; none: all local addresses */
    size_t n_nodeport_addresses;
    /* conntrack sysctls kube-proxy writes at start (cmd/kube-proxy/app/server_linux.go,
     * defaults from pkg/proxy/apis/config/v1alpha1/defaults.go); 0: left alone */
    sim_time_t conntrack_tcp_established;   /* --conntrack-tcp-timeout-established 24h */
    sim_time_t conntrack_tcp_close_wait;    /* --conntrack-tcp-timeout-close-wait 1h */
    int conntrack_max_per_core;             /* --conntrack-max-per-core 32768 */
    int conntrack_min;                      /* --conntrack-min 131072 */
    int node_cpus;                          /* runtime.NumCPU() of the node: 2 (AKS's and
                                             * EKS's smallest default sizes) */
    struct kp_text_cache *text_cache;       /* shared by the kube-proxies of a cluster
                                             * (borrowed; NULL: none), see below */
    kp_mode_t mode;                         /* iptables (default) or nftables */
    /* nftables mode: the ServiceCIDRs kube-proxy watches (networking/v1 ServiceCIDR, GA in
     * 1.33; earlier the informer is off and the list stays empty). plen 0: none -> no
     * "Drop traffic to unallocated ClusterIPs" rule. */
    kp_cidr_t service_cidr;
    /* nftables mode: rulesets shared by the kube-proxies of a cluster (borrowed; NULL:
     * every node builds its own), see nftables.h nft_apply_shared. In nftables mode an
     * empty nodeport_addresses means "primary" (the node's primary address), kube-proxy's
     * default for that mode. */
    struct nft_cache *nft_cache;
} kp_config_t;
void kp_config_default(kp_config_t *c);

/* The kube-proxies of a large cluster write the same rules on every node. A text cache
 * shared between them remembers the restore text of a sync whose rules do not depend on
 * the node (no Service with a Local traffic policy or loadBalancerSourceRanges, no
 * --nodeport-addresses), keyed by a 128-bit hash of everything the text is made from
 * (the Services and endpoints, the chains the previous sync wrote, the configuration),
 * so the next kube-proxy with the same inputs takes it instead of writing it again.
 * Through it the kube-proxies also share their service ports: kp_service_set of a port
 * another kube-proxy holds with the same content takes a reference to it; a kube-proxy
 * that changes one (kp_endpoints_set, kp_endpoint_conditions) changes its own copy. The
 * rules are the same either way; only the cost differs. Free after every kp_free. */
typedef struct kp_text_cache kp_text_cache_t;
kp_text_cache_t *kp_text_cache_new(void);
void kp_text_cache_free(kp_text_cache_t *tc);           /* NULL-safe */

typedef struct kp kp_t;

/* A kube-proxy for `node` (whose netfilter it writes and on which its health-check servers
 * listen). node may be NULL: then only kp_restore_text()/kp_jump_commands() are useful,
 * and cfg->node_name is required (asserted: a builder bug). cfg is copied. Never NULL. */
kp_t *kp_new(net_node_t *node, const kp_config_t *cfg);
/* nf_conntrack_max as kube-proxy sets it: max(per-core * cpus, min); 0: left alone. */
int kp_conntrack_max(const kp_config_t *cfg);
/* Stops the health-check servers; leaves the node's rules in place. Call before the
 * network is freed. NULL-safe. */
void kp_free(kp_t *kp);

/* Adds or replaces (same ns/name/port_name/protocol) a service port, with its endpoints.
 * Returns 0, or LB_EINVAL (no ns/name, port 0, unknown protocol). Takes effect at the
 * next kp_sync, as the informer updates do. */
int kp_service_set(kp_t *kp, const kp_service_port_t *sp);
/* Removes a service port; LB_ENOENT if unknown. */
int kp_service_delete(kp_t *kp, const char *ns, const char *name, const char *port_name,
                      const char *protocol);
/* Replaces the endpoints of every port named port_name (NULL: every port) of ns/name.
 * Returns the number of service ports updated, or LB_ENOENT if none matched. */
int kp_endpoints_set(kp_t *kp, const char *ns, const char *name, const char *port_name,
                     const kp_endpoint_t *eps, size_t n);
/* Changes the conditions of every endpoint with address ip, in all services (a pod
 * turning unready, or terminating). Returns the number of endpoints changed (0 if none). */
int kp_endpoint_conditions(kp_t *kp, uint32_t ip, bool ready, bool serving, bool terminating);

/* The iptables-restore input one syncProxyRules() would write now: *filter then *nat,
 * chain lines, rules, and `-X` for service chains written by the previous sync but no
 * longer used. Caller frees with lb_free. Service ports appear in the order they were
 * first set (proxier.go walks a Go map, so real order varies from sync to sync). */
char *kp_restore_text(const kp_t *kp);
/* The EnsureChain/EnsureRule commands of a full sync, one nf_exec line each
 * ("-t nat -I PREROUTING -m comment --comment \"kubernetes service portals\" -j
 * KUBE-SERVICES"), in the order they are applied. Caller frees with lb_free. */
char *kp_jump_commands(const kp_t *kp);

/* nftables mode: the `nft -f` transaction one full sync writes now, building the table
 * ip kube-proxy from nothing (setupNFTables, then every service port). Caller frees. */
char *kp_nft_text(const kp_t *kp);

/* One full sync into the node's netfilter: ensure the jump chains and rules (iptables -N,
 * -C, then -I when absent), then kp_restore_text() with NF_RESTORE_NOFLUSH, then the
 * health-check servers and their local-endpoint counts (SyncServices, SyncEndpoints).
 * Returns 0, the netfilter's error (text in err: "line N: ..."), or LB_EADDRINUSE when a
 * health-check port could not be opened (the rules are applied all the same). */
int kp_sync(kp_t *kp, char *err, size_t errlen);
/* In nftables mode kp_sync loads kp_nft_text() into the node's nftables instead (nothing
 * in iptables), then the health-check servers as above. */
/* kube-proxy's own healthz state, reported as serviceProxyHealthy; false makes every
 * health-check port answer 503. Default true. */
void kp_set_healthy(kp_t *kp, bool healthy);
/* localEndpoints the health-check server of ns/name reports (distinct local ready endpoint
 * IPs over all its ports, as of the last kp_sync); -1 when it has no server. */
int kp_health_local_endpoints(const kp_t *kp, const char *ns, const char *name);
/* The response that health-check server gives now (status, JSON body, headers), as every
 * request gets it; NULL when there is none. Release with net_msg_unref(&m->base). */
struct http_msg *kp_health_response(const kp_t *kp, const char *ns, const char *name);
/* The port it listens on (the Service's healthCheckNodePort); 0 when there is none. */
uint16_t kp_health_port(const kp_t *kp, const char *ns, const char *name);
/* Requests answered by that health-check server, by status. */
uint64_t kp_health_requests(const kp_t *kp, const char *ns, const char *name, int status);

/* Chain names as proxier.go computes them. svc_port_name is proxy.ServicePortName.String()
 * ("ns/name:port", or "ns/name" for an unnamed port); protocol is lowercase ("tcp");
 * endpoint is "ip:port". prefix is "KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-" (with
 * endpoint NULL) or "KUBE-SEP-". Writes into out and returns it. */
const char *kp_chain_name(char out[KP_CHAIN_MAX], const char *prefix, const char *svc_port_name,
                          const char *protocol, const char *endpoint);
/* "ns/name:port" / "ns/name" into out (size n); returns out. */
const char *kp_service_port_name(char *out, size_t n, const char *ns, const char *name,
                                 const char *port_name);

#endif
