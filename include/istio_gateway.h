/* istio_gateway.h -- the Istio gateway for a Kubernetes Gateway: what Istio's deployment
 * controller creates for it (the `<name>-<class>` Service and Deployment;
 * istio/istio pilot/pkg/config/kube/gateway/deploymentcontroller.go, kube-gateway.yaml
 * template), and the Envoy in the gateway pod, built on the L7 proxy core (l7proxy.h):
 * one listener per Gateway listener port, route selection with gateway_api.h, endpoints
 * by EDS (pod IPs, not the ClusterIP), LEAST_REQUEST picking, Istio's default retry policy,
 * Envoy's local replies and response flags, and the readiness endpoint on :15021.
 *
 * Envoy's answers (response flag, then response_code_details, as in its access log):
 *   no route (or no virtual host) for the request   404 "NR route_not_found", empty body
 *   every backendRef of the rule invalid           500 "- direct_response" (Istio programs
 *                                                  a direct response for such a rule)
 *   backendRef port not a port of the Service      503 "NC cluster_not_found"
 *   backend Service without ready endpoints        503 "UH no_healthy_upstream"
 *   upstream connect refused / timed out           503 "UF upstream_reset_before_response_
 *                                                  started{...}" (",URX" when retries ran out)
 *   upstream closed/reset before the response      503 "UC ..."
 *   the rule's request timeout passed              504 "UT upstream_response_timeout"
 * Not modelled: TLS (HTTPS listeners serve plain HTTP, X-Forwarded-Proto says https),
 * TLS/TCP listeners (no listener is opened for them), outlier detection (off by default in
 * Istio), circuit breakers (Istio's defaults are effectively unlimited), HTTP/2 upstreams,
 * x-request-id and tracing headers. */
#ifndef ISTIO_GATEWAY_H
#define ISTIO_GATEWAY_H

#include <stdio.h>
#include "l7proxy.h"
#include "tls.h"
#include "gateway_api.h"

/* The pilot-agent status port and readiness path (kube-gateway.yaml readinessProbe:
 * httpGet /healthz/ready port 15021, period 15 s, timeout 1 s, failureThreshold 4). */
#define ISTIO_STATUS_PORT          15021
#define ISTIO_READY_PATH           "/healthz/ready"
#define ISTIO_READY_PERIOD_S       15
#define ISTIO_READY_TIMEOUT_S      1
#define ISTIO_READY_FAILURES       4
/* meshConfig.connectTimeout default (pkg/config/mesh/mesh.go DefaultMeshConfig: 10 s). */
#define ISTIO_CONNECT_TIMEOUT_DEFAULT (10 * SIM_S)
/* ISTIO_DEFAULT_REQUEST_TIMEOUT (pilot/pkg/features): 0 = route timeout disabled. */
#define ISTIO_REQUEST_TIMEOUT_DEFAULT 0
/* Envoy HttpProtocolOptions.idle_timeout default (1 h), upstream (DestinationRule
 * connectionPool.http.idleTimeout default) and downstream connections. */
#define ISTIO_IDLE_TIMEOUT_DEFAULT (3600 * SIM_S)
/* Istio's default retry policy (pilot/pkg/networking/core/route/retry/retry.go): 2
 * retries on "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
 * (no status codes listed: only connect failures apply to HTTP/1.1), previous_hosts
 * predicate with HostSelectionRetryMaxAttempts 5. */
#define ISTIO_NUM_RETRIES_DEFAULT  2
#define ISTIO_HOST_SELECTION_RETRIES 5
/* Envoy RetryPolicy.retry_back_off default: base 25 ms, max 10 x base. */
#define ISTIO_RETRY_BACKOFF_BASE   (25 * SIM_MS)
/* Envoy LeastRequestLbConfig.choice_count default: power of two choices. */
#define ISTIO_LEAST_REQUEST_CHOICES 2
/* The HTTP connection manager's server_name Istio sets. */
#define ISTIO_SERVER_HEADER        "istio-envoy"
/* features.GatewayAPIDefaultGatewayClass, used when a Gateway names no class. */
#define ISTIO_GATEWAY_CLASS_DEFAULT "istio"
/* Labels of the generated objects (kube-gateway.yaml; label.GatewayManaged value is the
 * controller name "istio.io/gateway-controller" with '/' replaced by '-'). */
#define ISTIO_LABEL_GATEWAY_NAME   "gateway.networking.k8s.io/gateway-name"
#define ISTIO_LABEL_GATEWAY_CLASS  "gateway.networking.k8s.io/gateway-class-name"
#define ISTIO_LABEL_MANAGED        "gateway.istio.io/managed"
#define ISTIO_MANAGED_VALUE        "istio.io-gateway-controller"
#define ISTIO_ANN_SERVICE_TYPE     "networking.istio.io/service-type"
#define ISTIO_ANN_NAME_OVERRIDE    "gateway.istio.io/name-override"

/* Cluster load-balancing policy. Istio's default is LEAST_REQUEST
 * (pilot/pkg/networking/core/cluster_traffic_policy.go defaultLBAlgorithm; ROUND_ROBIN
 * with ENABLE_LEGACY_LB_ALGORITHM_DEFAULT). */
typedef enum { ISTIO_LB_LEAST_REQUEST, ISTIO_LB_ROUND_ROBIN, ISTIO_LB_RANDOM } istio_lb_t;

/* One EDS endpoint of a Service port: the pod IP and the resolved targetPort. Istio sends
 * only ready endpoints (PILOT_SEND_UNHEALTHY_ENDPOINTS off), so unready ones are ignored. */
typedef struct istio_endpoint {
    uint32_t ip;
    uint16_t port;
    bool ready;
} istio_endpoint_t;

typedef struct istio_gw_opts {
    const char *name;               /* traces, counters, random stream; NULL: node name */
    sim_time_t connect_timeout;     /* ISTIO_CONNECT_TIMEOUT_DEFAULT */
    sim_time_t request_timeout;     /* route timeout of rules without their own (0: none) */
    sim_time_t idle_timeout;        /* ISTIO_IDLE_TIMEOUT_DEFAULT, both sides */
    /* TCP keepalive on downstream connections: what an EnvoyFilter patching the gateway
     * LISTENER's socket_options (SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT)
     * does (istio/istio#28879, #52143). Off by default: Envoy sets no keepalive on
     * downstream sockets, and MeshConfig/DestinationRule tcpKeepalive apply to upstream
     * connections only. */
    bool downstream_so_keepalive;
    tcp_keepalive_t downstream_keepalive;
    int num_retries;                /* ISTIO_NUM_RETRIES_DEFAULT */
    int lb_policy;                  /* ISTIO_LB_LEAST_REQUEST */
    bool ready;                     /* readiness at start (true: configured) */
    uint16_t status_port;           /* ISTIO_STATUS_PORT */
    gw_host_mode_t host_mode;       /* GW_HOST_ENVOY_VHOST: what Istio programs */
    metrics_t *metrics;             /* counters "<name>.flag.NR" ..., may be NULL */
    void (*flow_link)(void *data, uint64_t down_flow, uint64_t up_flow, uint64_t req_id);
    void *flow_link_data;
    /* HTTPS listeners: the certificate a listener's tls.certificateRefs name (NULL: none:
     * the listener gets no filter chain, as Istio skips a listener whose reference does
     * not resolve). May be NULL. */
    const tls_cert_t *(*cert_of)(const char *ref, void *data);
    void *cert_data;
    struct explain *explain;        /* notes (a handshake without filter chain); may be NULL */
} istio_gw_opts_t;
void istio_gw_opts_init(istio_gw_opts_t *o);

typedef struct istio_gw istio_gw_t;

/* Envoy for Gateway gw on node (the gateway pod). objs must outlive the gateway (route
 * tables reference them); call istio_gw_reload after changing them. NULL with *rc:
 * LB_EINVAL (no HTTP/HTTPS listener), LB_EADDRINUSE. */
istio_gw_t *istio_gw_new(net_node_t *node, const k8s_objects_t *objs, const k8s_gateway_t *gw,
                         const istio_gw_opts_t *opts, int *rc);
void istio_gw_free(istio_gw_t *g);          /* NULL-safe */
/* Rebuilds the route tables from objs (an xDS push). Requests in flight keep going. */
void istio_gw_reload(istio_gw_t *g);

/* Replaces the endpoints of Service ns/svc port `port` (the Service port a backendRef
 * names). Copied; in-flight request counts of endpoints that stay are kept. */
void istio_gw_set_endpoints(istio_gw_t *g, const char *ns, const char *svc, int port,
                            const istio_endpoint_t *eps, size_t n);
/* Sets the request timeout (HTTPRoute rules[].timeouts.request) of rule `rule` of route
 * ns/name; 0 removes it. Returns 0 or LB_ENOENT (no such route or rule). */
int istio_gw_set_rule_timeout(istio_gw_t *g, const char *ns, const char *name, size_t rule,
                              sim_time_t timeout);
/* Readiness answered on :15021/healthz/ready (200 ready, else 503). */
void istio_gw_set_ready(istio_gw_t *g, bool ready);
bool istio_gw_ready(const istio_gw_t *g);
/* SIGTERM to the gateway pod: pilot-agent's drain (pilot/cmd/pilot-agent: on SIGTERM the
 * status server reports not ready and Envoy's listeners drain for terminationDrainDuration,
 * then Envoy exits). Here: readiness 503 and every response carries Connection: close;
 * requests are still served. The caller stops the gateway when the drain time is over. */
void istio_gw_drain(istio_gw_t *g);

l7proxy_t *istio_gw_proxy(istio_gw_t *g);
/* Local replies by response flag ("NR", "UH", "UF", "UT", "UC", "NC", "DR" for the 500
 * direct response); 0 for an unknown flag. */
uint64_t istio_gw_flag_count(const istio_gw_t *g, const char *flag);
/* The route table of every listener (gw_table_describe), for --explain. */
void istio_gw_describe(const istio_gw_t *g, FILE *out);

/* Writes the http-level nginx configuration that stands in for this Envoy in the real
 * chain: per listener port, the route tables rendered by gw_nginx_render with Envoy's
 * connect timeout, retries and the endpoints it knows now; and the status port answering
 * /healthz/ready. Returns how many route matches nginx cannot express. */
int istio_gw_render_nginx(const istio_gw_t *g, FILE *out);

/* ---- what the deployment controller creates ---------------------------------------------
 * Both fill zeroed caller memory; the strings are owned by the object (lb_malloc), so an
 * object pushed into a k8s_objects_t is released by k8s_objects_free. */
/* The Service: name `<gateway>-<class>` (annotation gateway.istio.io/name-override wins),
 * the Gateway's namespace, type LoadBalancer (annotation networking.istio.io/service-type
 * overrides: ClusterIP, NodePort), ports status-port 15021 (appProtocol tcp) and one per
 * distinct listener port named after the listener ('.' -> '-', at most 63 chars) with
 * appProtocol = its protocol lowercased, selector gateway.networking.k8s.io/gateway-name,
 * the infrastructure labels and annotations (spec.infrastructure, else the Gateway's own:
 * PILOT_ENABLE_GATEWAY_API_COPY_LABELS_ANNOTATIONS defaults to true). */
void istio_gw_service_fill(const k8s_gateway_t *gw, k8s_service_t *out);
/* The Deployment: same name, 1 replica, container istio-proxy with ports 15020 metrics,
 * 15021 status-port, 15090 http-envoy-prom and the readiness probe above. */
void istio_gw_deployment_fill(const k8s_gateway_t *gw, k8s_deployment_t *out);

#endif
