/* k8s.h -- Kubernetes objects as the models use them, filled from real manifests
 * (src/scenario/manifests.c) or by hand in tests: Namespace, ConfigMap, Deployment,
 * Service, Gateway, HTTPRoute, ReferenceGrant. Field names follow the API
 * (k8s.io/api core/v1, apps/v1; sigs.k8s.io/gateway-api apis/v1). Strings are owned by the
 * object; k8s_objects_free releases everything. */
#ifndef K8S_H
#define K8S_H

#include "lb.h"
#include "element.h"

typedef struct k8s_kv { char *key, *value; } k8s_kv_t;
typedef LB_VEC(k8s_kv_t) k8s_kvs_t;
const char *k8s_kv_get(const k8s_kvs_t *kv, const char *key);
/* True when every key/value of `selector` is in `labels` (matchLabels semantics). */
bool k8s_labels_match(const k8s_kvs_t *selector, const k8s_kvs_t *labels);

typedef struct k8s_meta {
    char *name, *ns;                /* ns defaults to "default" */
    k8s_kvs_t labels, annotations;
    elem_pos_t pos;                 /* where the object was written */
    int order;                      /* load order: stands in for creationTimestamp */
} k8s_meta_t;

/* NodePorts come from kube-apiserver's --service-node-port-range, default 30000-32767;
 * each is allocated to one Service of the cluster. */
#define K8S_NODEPORT_MIN 30000
#define K8S_NODEPORT_MAX 32767

/* A port given as number or name (targetPort, probe port). */
typedef struct k8s_port_ref { int number; char *name; } k8s_port_ref_t;

typedef enum { K8S_PROBE_NONE, K8S_PROBE_HTTP, K8S_PROBE_TCP, K8S_PROBE_EXEC } k8s_probe_kind_t;
/* Defaults from core/v1 Probe: period 10 s, timeout 1 s, success 1, failure 3. */
typedef struct k8s_probe {
    k8s_probe_kind_t kind;
    char *path;
    k8s_port_ref_t port;
    int initial_delay_s, period_s, timeout_s, success_threshold, failure_threshold;
} k8s_probe_t;

typedef struct k8s_container_port { char *name; int port; char *protocol; } k8s_container_port_t;
typedef struct k8s_container {
    char *name, *image;
    LB_VEC(k8s_container_port_t) ports;
    k8s_probe_t readiness, liveness;
    char *nginx_conf;               /* the container's command and args joined with "\n"
                                     * (verbatim): nginx_conf.c finds a server config
                                     * written there as a heredoc; NULL if neither given */
    LB_VEC(char *) config_maps;     /* ConfigMaps mounted as volumes (by name): nginx.conf
                                     * and files served with `alias` come from their data */
} k8s_container_t;

typedef struct k8s_toleration { char *key, *op, *value, *effect; } k8s_toleration_t;

typedef struct k8s_deployment {
    k8s_meta_t meta;
    int replicas;                   /* default 1 */
    k8s_kvs_t selector;             /* spec.selector.matchLabels */
    k8s_kvs_t pod_labels;           /* spec.template.metadata.labels */
    k8s_kvs_t node_selector;
    LB_VEC(k8s_toleration_t) tolerations;
    LB_VEC(k8s_container_t) containers;
} k8s_deployment_t;

typedef struct k8s_service_port {
    char *name;
    int port;
    k8s_port_ref_t target_port;     /* default: same as port */
    int node_port;                  /* 0: allocated */
    char *protocol;                 /* TCP */
    char *app_protocol;             /* NULL if absent */
} k8s_service_port_t;

typedef enum { K8S_SVC_CLUSTER_IP, K8S_SVC_NODE_PORT, K8S_SVC_LOAD_BALANCER } k8s_svc_type_t;
typedef enum { K8S_ETP_CLUSTER, K8S_ETP_LOCAL } k8s_etp_t;

typedef struct k8s_service {
    k8s_meta_t meta;
    k8s_svc_type_t type;
    k8s_kvs_t selector;
    LB_VEC(k8s_service_port_t) ports;
    k8s_etp_t etp;                  /* externalTrafficPolicy, default Cluster */
    int health_check_node_port;     /* 0: allocated when type LB and ETP Local */
    uint32_t cluster_ip;            /* 0: allocated */
    uint32_t lb_ip;                 /* spec.loadBalancerIP or allocated frontend */
    /* spec.loadBalancerSourceRanges (type LoadBalancer only): kube-proxy's KUBE-FW chain */
    LB_VEC(struct k8s_cidr { uint32_t addr; int plen; }) source_ranges;
    bool has_selector;              /* spec.selector was written (an overlay's is replaced) */
} k8s_service_t;

typedef struct gw_listener {
    char *name;
    int port;
    char *protocol;                 /* HTTP, HTTPS, TLS, TCP */
    char *hostname;                 /* NULL: any */
    char *routes_from;              /* allowedRoutes.namespaces.from: Same (default), All */
    char *cert_ref;                 /* tls.certificateRefs[0].name; NULL: none */
} gw_listener_t;

typedef struct k8s_gateway {
    k8s_meta_t meta;
    char *class_name;
    LB_VEC(gw_listener_t) listeners;
    k8s_kvs_t infra_labels, infra_annotations;   /* spec.infrastructure */
} k8s_gateway_t;

typedef enum { GW_PATH_PREFIX, GW_PATH_EXACT, GW_PATH_REGEX } gw_path_type_t;
typedef enum { GW_MATCH_EXACT, GW_MATCH_REGEX } gw_value_type_t;
typedef struct gw_header_match { gw_value_type_t type; char *name, *value; } gw_header_match_t;
typedef struct gw_route_match {
    gw_path_type_t path_type;       /* default PathPrefix "/" */
    char *path;
    LB_VEC(gw_header_match_t) headers;
    LB_VEC(gw_header_match_t) query;
    char *method;                   /* NULL: any */
} gw_route_match_t;
typedef struct gw_backend_ref {
    char *group, *kind;             /* "" and "Service" by default */
    char *name, *ns;                /* ns NULL: the route's namespace */
    int port;
    int weight;                     /* default 1 */
} gw_backend_ref_t;
typedef struct gw_route_rule {
    LB_VEC(gw_route_match_t) matches;   /* empty: one match PathPrefix "/" */
    LB_VEC(gw_backend_ref_t) backends;
} gw_route_rule_t;
typedef struct gw_parent_ref { char *name, *ns, *section; int port; } gw_parent_ref_t;

typedef struct k8s_httproute {
    k8s_meta_t meta;
    LB_VEC(gw_parent_ref_t) parents;
    LB_VEC(char *) hostnames;
    LB_VEC(gw_route_rule_t) rules;
} k8s_httproute_t;

typedef struct gw_grant_from { char *group, *kind, *ns; } gw_grant_from_t;
typedef struct gw_grant_to { char *group, *kind, *name; } gw_grant_to_t;   /* name NULL: all */
typedef struct k8s_refgrant {
    k8s_meta_t meta;
    LB_VEC(gw_grant_from_t) from;
    LB_VEC(gw_grant_to_t) to;
} k8s_refgrant_t;

typedef struct k8s_configmap { k8s_meta_t meta; k8s_kvs_t data; } k8s_configmap_t;
typedef struct k8s_namespace { k8s_meta_t meta; } k8s_namespace_t;

/* Everything a scenario's kubernetes section declared. */
typedef struct k8s_objects {
    LB_VEC(k8s_namespace_t *) namespaces;
    LB_VEC(k8s_configmap_t *) configmaps;
    LB_VEC(k8s_deployment_t *) deployments;
    LB_VEC(k8s_service_t *) services;
    LB_VEC(k8s_gateway_t *) gateways;
    LB_VEC(k8s_httproute_t *) routes;
    LB_VEC(k8s_refgrant_t *) grants;
} k8s_objects_t;

/* Frees every object held in o and their vectors, not o itself. */
void k8s_objects_free(k8s_objects_t *o);
k8s_service_t *k8s_service_find(const k8s_objects_t *o, const char *ns, const char *name);
k8s_gateway_t *k8s_gateway_find(const k8s_objects_t *o, const char *ns, const char *name);
k8s_configmap_t *k8s_configmap_find(const k8s_objects_t *o, const char *ns, const char *name);

#endif
