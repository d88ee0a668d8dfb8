/* kube_proxy_int.h -- private to kube_proxy.c and kube_proxy_nft.c: the read-only view of
 * a kube-proxy's service ports, with its endpoints categorised (pkg/proxy/topology.go
 * CategorizeEndpoints), that the nftables mode writes its ruleset from, and the calls
 * between the two files. */
#ifndef KUBE_PROXY_INT_H
#define KUBE_PROXY_INT_H

#include "kube_proxy.h"

typedef struct kp_ep_view { uint32_t ip; uint16_t port; } kp_ep_view_t;

/* One service port as a sync sees it. Strings and arrays borrowed from the kp_t except
 * the endpoint arrays, which kp_port_view_free_ frees. */
typedef struct kp_port_view {
    const char *ns, *name, *port_name;  /* port_name: "" when unnamed */
    const char *proto;                  /* lowercase: "tcp" */
    const char *spn;                    /* ServicePortName.String() */
    uint32_t cluster_ip;                /* 0: headless */
    uint16_t port, node_port;
    const uint32_t *lb_ips, *ext_ips;
    size_t n_lb_ips, n_ext_ips;
    const kp_cidr_t *src_ranges;
    size_t n_src_ranges;
    bool ext_accessible;                /* ExternallyAccessible */
    bool etp_local, itp_local;          /* ExternalPolicyLocal, InternalPolicyLocal */
    bool uses_cluster, uses_local;      /* UsesClusterEndpoints, UsesLocalEndpoints */
    bool affinity;                      /* sessionAffinity ClientIP */
    int affinity_s;
    kp_ep_view_t *cluster, *local, *all;    /* clusterEndpoints, localEndpoints,
                                             * allLocallyReachableEndpoints */
    size_t n_cluster, n_local, n_all;
    bool has_any;                       /* hasEndpoints */
} kp_port_view_t;

/* The configuration a sync writes with. */
typedef struct kp_cfg_view {
    net_node_t *node;                   /* may be NULL (text only) */
    const char *node_name;
    uint32_t mark;                      /* 1 << masqueradeBit */
    kp_cidr_t cluster_cidr, service_cidr;
    bool masq_all;
    const kp_cidr_t *np_addrs;
    size_t n_np_addrs;
} kp_cfg_view_t;

size_t kp_port_count_(const kp_t *kp);
/* Fills v; with eps false the endpoint arrays stay empty (no categorising: cheap). */
void kp_port_view_(const kp_t *kp, size_t i, kp_port_view_t *v, bool eps);
void kp_port_view_free_(kp_port_view_t *v);
void kp_cfg_view_(const kp_t *kp, kp_cfg_view_t *v);
/* kube_proxy.c's key of everything a sync's text is made from (kp_text_cache). */
void kp_sync_key_(const kp_t *kp, uint64_t key[2]);
struct nft_cache *kp_nft_cache_(const kp_t *kp);

/* kube_proxy_nft.c: the `nft -f` transaction of one full sync. The text is the table from
 * nothing; its node-dependent part (the nodeport-ips elements) goes to *node_text when
 * node_text is given, else stays in it; *node_dep tells whether the rest depends on the
 * node (Local traffic policies, a source range holding the node's address). Caller frees
 * both with lb_free. */
char *kp_nft_generate_(const kp_t *kp, char **node_text, bool *node_dep);
/* One full sync into the node's nftables (shared through the cluster's cache when the
 * text does not depend on the node). 0 or the nftables error. */
int kp_nft_sync_(kp_t *kp, char *err, size_t errlen);

#endif
