/* cluster.h -- a Kubernetes cluster on the simulated network: nodes (VMs with a NIC in the
 * VNet/VPC fabric, in node pools with labels and taints), pods (each its own network
 * namespace: a net node behind its host node through a veth link, with an IP from the
 * node's pod CIDR that the fabric routes to the node), the scheduler placing Deployment
 * replicas (nodeSelector, tolerations, spread), Services (ClusterIP, NodePort,
 * healthCheckNodePort allocation; LoadBalancer ingress IPs set by the cloud LB models),
 * endpoints from pod readiness, kube-proxy on every node (include/kube_proxy.h), and what
 * runs in the pods: nginx servers from their configs (include/nginx_conf.h). */
#ifndef CLUSTER_H
#define CLUSTER_H

#include <stdio.h>
#include "net.h"
#include "k8s.h"
#include "metrics.h"
#include "kube_proxy.h"
#include "tcp.h"

typedef struct cluster cluster_t;

/* Defaults: AKS (learn.microsoft.com/azure/aks/concepts-network, azure-cni-overlay):
 * node subnet 10.224.0.0/16, pod CIDR 10.244.0.0/16 with a /24 per node, service CIDR
 * 10.0.0.0/16; NodePorts 30000-32767 (kube-apiserver --service-node-port-range). */
#define CLUSTER_NODE_SUBNET_DEFAULT "10.224.0.0/16"
#define CLUSTER_POD_CIDR_DEFAULT "10.244.0.0/16"
#define CLUSTER_SERVICE_CIDR_DEFAULT "10.0.0.0/16"
#define CLUSTER_NODEPORT_LO K8S_NODEPORT_MIN
#define CLUSTER_NODEPORT_HI K8S_NODEPORT_MAX
/* Pods per node (kubelet maxPods; the scheduler's "Too many pods", kube-scheduler's
 * NodeResourcesFit on the node's allocatable "pods"): AKS with Azure CNI Overlay defaults
 * to 250, also its maximum (learn.microsoft.com/azure/aks/azure-cni-overlay, "Maximum pods
 * per node"), which is what a node's /24 of pod addresses holds here (.2 .. .251);
 * elsewhere kubelet's own default, 110 (KubeletConfiguration maxPods). EKS's real limit
 * depends on the instance type's ENIs, which are not modelled: set max-pods on the pool. */
#define CLUSTER_MAX_PODS_AKS 250
#define CLUSTER_MAX_PODS_KUBELET 110
#define CLUSTER_MAX_PODS_LIMIT 250
/* veth between a pod and its node: in-kernel, a few microseconds. */
#define CLUSTER_VETH_LATENCY (2 * SIM_US)

typedef struct cluster_taint { const char *key, *value, *effect; } cluster_taint_t;
typedef struct cluster_pool {
    const char *name;               /* "system", "user" */
    int count;                      /* nodes in the pool */
    const char *node_prefix;        /* node names: <prefix><i>, e.g. "aks-user-" */
    const k8s_kv_t *labels;         /* node labels (agentpool=<name> is added) */
    size_t n_labels;
    const cluster_taint_t *taints;
    size_t n_taints;
    /* availability zones the pool's nodes are spread over, round-robin (node i in
     * zones[i % n]); each node gets topology.kubernetes.io/zone=<zone>. None: no zone. */
    const char *const *zones;
    size_t n_zones;
    int max_pods;                   /* pods per node; 0: the provider's default */
} cluster_pool_t;

typedef struct cluster_params {
    const char *name;               /* element name, prefix of random streams */
    const char *provider;           /* "aks" or "eks" */
    const char *version;            /* Kubernetes version "1.29" */
    uint32_t node_subnet; int node_plen;
    uint32_t pod_cidr; int pod_plen;
    uint32_t service_cidr; int service_plen;
    const cluster_pool_t *pools;
    size_t n_pools;
    FILE *warn;                     /* warnings (unmodelled nginx directives...); may be NULL */
    /* Istio gateways (gatewayClassName istio): replicas of the generated Deployment (0:
     * Istio's default, 1) and a nodeSelector for it ("key=value", NULL: none). */
    int gateway_replicas;
    const char *gateway_node_selector;
    /* tolerations for the gateway pods, "key=value:Effect" or "key:Exists" */
    const char *const *gateway_tolerations;
    size_t n_gateway_tolerations;
    /* Envoy in the gateway pods: the HTTP idle timeout of both sides (0: Istio's default,
     * ISTIO_IDLE_TIMEOUT_DEFAULT) and TCP keepalive on downstream connections (an
     * EnvoyFilter on the listeners' socket_options; off by default). */
    sim_time_t gateway_idle_timeout;
    bool gateway_so_keepalive;
    tcp_keepalive_t gateway_keepalive;
    /* The pods' own network namespaces: Linux initialises a new netns's TCP sysctls
     * (tcp_keepalive_*, tcp_syn_retries, ...) to the kernel's compiled-in defaults, not to
     * the node's values (net/ipv4/tcp_ipv4.c tcp_sk_init), so a node's sysctls reach only
     * host-network processes. pod_tcp: the nodes' kernel's defaults (cluster_params_default:
     * tcp_params_default); gateway_pod_tcp: the same plus the gateway pods'
     * securityContext.sysctls. */
    tcp_params_t pod_tcp;
    tcp_params_t gateway_pod_tcp;
    /* The pods' ICMP rate-limit sysctls: the nodes' kernel's defaults (every pod netns
     * starts from them, icmp_sk_init). Without global_per_netns (kernels before 6.12) a
     * pod's ICMP errors draw on its node's global bucket, under the node's
     * icmp_msgs_per_sec / icmp_msgs_burst (net_node_t icmp_host). */
    net_icmp_limits_t pod_icmp;
    /* kube-proxy's conntrack.tcpEstablishedTimeout (--conntrack-tcp-timeout-established):
     * < 0: its default (24 h); 0: leave the nodes' sysctl alone; else the value. */
    sim_time_t kp_conntrack_established;
    /* kube-proxy's mode (KubeProxyConfiguration.mode): iptables (default) or nftables
     * (Kubernetes 1.29 and later; the builder refuses it on older versions). */
    int kp_mode;                    /* kp_mode_t */
    /* true: the workload has been running before t=0 (pods ready, kubelet probing on its
     * period); false: pods start at t=0 and are unready until their first probe passes. */
    bool warm_start;
    void *explain;                  /* explain_t for notes (may be NULL) */
    bool (*interrupted)(void);      /* may be NULL; true: give up building (a signal) */
    /* Gateways' HTTPS listeners: certificates by the name their certificateRefs use
     * (borrowed: the owner keeps them alive as long as the cluster). */
    const char *const *cert_names;
    const struct tls_cert *const *certs;
    size_t n_certs;
    /* Synthetic workload for production-sized clusters (the `scale` key): scale_services
     * ClusterIP Services "<scale_prefix>-<i>" in namespace scale_namespace, port
     * scale_port -> targetPort scale_port, each selecting its own Deployment of
     * scale_replicas pause pods (ready, serving nothing). 0: none. Placed in c->svcs
     * after the manifests' Services and before the Istio gateways' (pos: where the key
     * was written, for messages). */
    int scale_services, scale_replicas, scale_port;
    const char *scale_namespace, *scale_prefix;
    elem_pos_t scale_pos;
} cluster_params_t;
void cluster_params_default(cluster_params_t *p);

typedef struct cluster_node {
    net_node_t *node;
    net_iface_t *nic;               /* eth0 in the fabric */
    const char *pool;
    k8s_kvs_t labels;
    LB_VEC(cluster_taint_t) taints;
    uint32_t pod_base;              /* this node's pod /24 */
    int pods;                       /* pods placed here (next pod IP) */
    int max_pods;                   /* kubelet maxPods: the scheduler places no more */
    /* explanations: the node had a usable local endpoint of every ETP Local LoadBalancer
     * Service; it has lost one (noted as the node's state) */
    bool had_local, lost_local;
    kp_t *kp;                       /* kube-proxy on this node */
    cluster_t *cluster;
    const char *zone;               /* availability zone, NULL: none */
} cluster_node_t;

typedef struct cluster_pod {
    char *name, *ns;
    const k8s_deployment_t *dep;
    cluster_node_t *host;
    net_node_t *node;               /* the pod's network namespace */
    uint32_t ip;
    bool ready;
    int app_kind;                   /* CLUSTER_APP_* */
    void *app;                      /* what runs in it (owned by the cluster) */
    void *kubelet;                  /* the readiness prober (health_t), NULL without probe */
    int phase;                      /* CLUSTER_POD_RUNNING, _TERMINATING, _GONE */
} cluster_pod_t;
enum { CLUSTER_POD_RUNNING, CLUSTER_POD_TERMINATING, CLUSTER_POD_GONE };
enum { CLUSTER_APP_NONE, CLUSTER_APP_NGINX, CLUSTER_APP_ISTIO };

/* The name node i of `pool` gets: <node_prefix><i>, else <provider>-<pool>-<i>
 * ("aks-user-0"). Names must be unique in the network (the caller checks). */
void cluster_node_name(const cluster_params_t *p, const cluster_pool_t *pool, int i, char *buf,
                       size_t n);
/* Builds nodes in `fab`, places every Deployment's replicas, allocates Service addresses
 * and ports, starts the pods' servers and kube-proxy. objs must outlive the cluster; the
 * cluster adds the Services Istio generates for Gateways to its own list.
 * Addresses: each node takes the first free address of the node subnet (net_fabric_alloc,
 * as Azure and AWS allocate a NIC's address), so clusters may share a subnet; node k of
 * the cluster (in pool order) gets pod range <pod CIDR> + k*256 as a /24, routed in the
 * fabric to its NIC. Returns NULL with a message in err: a node name already in the
 * network, a full node subnet, a pod CIDR without a /24 for every node or overlapping a
 * prefix routed already, a pod that fits no node. */
cluster_t *cluster_new(net_t *net, net_fabric_t *fab, const cluster_params_t *p,
                       const k8s_objects_t *objs, metrics_t *m, char *err, size_t errlen);
void cluster_free(cluster_t *c);

size_t cluster_node_count(const cluster_t *c);
cluster_node_t *cluster_node_at(cluster_t *c, size_t i);
cluster_node_t *cluster_node_find(cluster_t *c, const char *name);
size_t cluster_pod_count(const cluster_t *c);
cluster_pod_t *cluster_pod_at(cluster_t *c, size_t i);
/* Every Service (including those generated for Gateways), in creation order. */
size_t cluster_service_count(const cluster_t *c);
k8s_service_t *cluster_service_at(cluster_t *c, size_t i);
/* Every Service, including those generated for Gateways. */
k8s_service_t *cluster_service(cluster_t *c, const char *ns, const char *name);
/* The same for "namespace/name"; NULL for a malformed reference or no such Service. */
k8s_service_t *cluster_service_ref(cluster_t *c, const char *ns_name);
const char *cluster_version(const cluster_t *c);
net_fabric_t *cluster_fabric(const cluster_t *c);
/* The node subnet (where cloud-provider-azure puts an internal LB's frontend by default). */
void cluster_node_subnet(const cluster_t *c, uint32_t *prefix, int *plen);
/* The cloud LB that fronts a LoadBalancer Service reports its frontend IP: kube-proxy on
 * every node then captures it (KUBE-EXT), as status.loadBalancer.ingress does. */
void cluster_set_lb_ip(cluster_t *c, k8s_service_t *svc, uint32_t ip);
/* Marks a pod ready or not (kubelet's readiness result); endpoints, kube-proxy rules and
 * gateways follow. */
void cluster_pod_set_ready(cluster_t *c, cluster_pod_t *pod, bool ready);
/* Kills the pod's container (as `kill -9` of its main process, or an OOM kill): its
 * server stops -- open connections are reset, new SYNs are refused -- and kubelet's
 * readiness probe will fail. After `down_for` kubelet has restarted the container in the
 * same pod (same IP): the server listens again and the readiness probe decides when it
 * is Ready. down_for 0: it stays down. */
void cluster_pod_crash(cluster_t *c, cluster_pod_t *pod, sim_time_t down_for);

/* Pod deletion (kubectl delete pod, a node drain's eviction, a rolling update's scale-down),
 * as kubelet runs it (pkg/kubelet/kuberuntime killContainer; KEP-1669 endpoint conditions):
 *   t0            deletionTimestamp set: the endpoint turns ready=false, terminating=true,
 *                 serving = the pod's readiness; kube-proxy, Envoy's EDS and LB controllers
 *                 see it (kube-proxy's healthCheckNodePort stops counting it at once);
 *   t0 + preStop  (the preStop hook, e.g. `sleep 15`, capped by the grace period) SIGTERM:
 *                 nginx stops at once (TERM is its fast shutdown, connections reset); the
 *                 Istio gateway drains (pilot-agent: readiness 503, Envoy answers with
 *                 Connection: close) for `drain` (terminationDrainDuration, default 5 s),
 *                 then exits;
 *   t0 + grace    (terminationGracePeriodSeconds, default 30 s) SIGKILL if still running.
 * When the containers are gone the pod leaves the endpoints. Deleting a pod twice, or a
 * pod that is not running, does nothing. No replacement pod is created (a Deployment's
 * rolling update does: cluster_rollout). */
#define CLUSTER_GRACE_DEFAULT (30 * SIM_S)          /* terminationGracePeriodSeconds */
#define CLUSTER_ISTIO_DRAIN_DEFAULT (5 * SIM_S)     /* ProxyConfig terminationDrainDuration */
typedef struct cluster_delete_opts {
    sim_time_t pre_stop;            /* preStop sleep; 0: none */
    sim_time_t grace;               /* 0: CLUSTER_GRACE_DEFAULT */
    sim_time_t drain;               /* Istio gateway drain; 0: CLUSTER_ISTIO_DRAIN_DEFAULT */
} cluster_delete_opts_t;
void cluster_pod_delete(cluster_t *c, cluster_pod_t *pod, const cluster_delete_opts_t *o);
/* A Deployment's rolling update as its controller runs it (pkg/controller/deployment/
 * rolling.go reconcileNewReplicaSet / reconcileOldReplicaSets): every pod of the
 * Deployment running at the start is replaced. The new ReplicaSet is scaled up while the
 * pods that are not terminating number fewer than replicas + max_surge; old pods are
 * deleted (as cluster_pod_delete with `del`) while the available pods -- Ready, old or new
 * -- stay at least replicas - max_unavailable, unready old pods first. Terminating pods
 * count for neither (the ReplicaSet controller ignores pods with a deletionTimestamp). A
 * new pod is scheduled like the Deployment's first replicas (fewest running pods of this
 * Deployment, then fewest pods, then the first node), is unready, its containers start
 * `pod_start` later (image pull, Envoy's first configuration) and it turns Ready when
 * kubelet's readiness probe passes; minReadySeconds 0. The controller's work follows each
 * readiness or phase change. Returns 0, LB_ENOENT (no such Deployment), LB_EINVAL (both
 * max_surge and max_unavailable 0, as the API server refuses) or LB_ESTATE (a rollout of
 * it under way). */
typedef struct cluster_rollout_opts {
    int max_surge, max_unavailable;     /* pods (the caller resolves percentages) */
    sim_time_t pod_start;               /* scheduling -> containers running */
    cluster_delete_opts_t del;          /* how each old pod terminates */
} cluster_rollout_opts_t;
int cluster_rollout(cluster_t *c, const char *ns, const char *deployment,
                    const cluster_rollout_opts_t *o);
/* The replicas of a Deployment (0 when there is none). */
int cluster_deployment_replicas(const cluster_t *c, const char *ns, const char *deployment);

/* Called after every change of a pod's readiness or phase (LB controllers watching
 * endpoints, e.g. the AWS Load Balancer Controller). Several may be registered. */
typedef void (*cluster_pod_cb)(cluster_t *c, cluster_pod_t *pod, void *data);
void cluster_watch_pods(cluster_t *c, cluster_pod_cb cb, void *data);
cluster_pod_t *cluster_pod_find(cluster_t *c, const char *name);
/* The pods a Service selects (ready or not), up to max into out; returns how many. */
size_t cluster_service_pods(cluster_t *c, const k8s_service_t *svc, cluster_pod_t **out,
                            size_t max);
/* The container port Service port sp's targetPort names in pod (a number as-is; a name
 * through the pod's container ports); 0 when the pod lacks the named port (not an
 * endpoint). */
int cluster_pod_target_port(const cluster_pod_t *pod, const k8s_service_port_t *sp);
/* Rewrites every node's kube-proxy rules from the current Services and endpoints. */
void cluster_sync(cluster_t *c);

#endif
