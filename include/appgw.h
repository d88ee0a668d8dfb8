/* appgw.h -- Azure Application Gateway v2: instances in their own subnet behind a frontend
 * IP, each an L7 proxy (include/l7proxy.h) with its own health probes (include/health.h)
 * of the backend pool; no fail-open (no healthy member -> 502); the request timeout bounds
 * connect and response; a timed-out request is retried once on another member, then 504.
 * Sources: azure-docs application-gateway-probe-overview.md,
 * application-gateway-troubleshooting-502.md, http-response-codes.md (MODELS.md). */
#ifndef APPGW_H
#define APPGW_H

#include "net.h"
#include "metrics.h"
#include "explain.h"
#include "health.h"
#include "tls.h"

/* Backend settings default request timeout (configuration-http-settings.md). */
#define APPGW_REQUEST_TIMEOUT_DEFAULT (20 * SIM_S)
/* Default probe: GET <proto>://127.0.0.1:<port>/, interval 30 s, timeout 30 s, unhealthy
 * threshold 3, healthy = status 200-399 (application-gateway-probe-overview.md). */
#define APPGW_DEFAULT_PROBE_HOST "127.0.0.1"
#define APPGW_DEFAULT_PROBE_PATH "/"
#define APPGW_PROBE_MATCH_DEFAULT "200-399"
/* v2 retries a timed-out request once on another backend member (MODELS.md). */
#define APPGW_RETRIES 1
#define APPGW_SERVER_HEADER "Microsoft-Azure-Application-Gateway/v2"
/* Instances of a v2 gateway: at most 125 (application-gateway-autoscaling-zone-redundant). */
#define APPGW_MAX_INSTANCES 125

typedef struct appgw appgw_t;

typedef struct appgw_params {
    const char *name;
    uint32_t frontend;              /* the frontend IP clients use */
    uint32_t subnet; int plen;      /* instance addresses: the first free ones (Azure's
                                     * dynamic allocation: subnet + 4, + 5, ... when alone) */
    int instances;                  /* 2 */
    uint16_t listener_port;         /* 80 */
    const uint32_t *members;        /* backend pool addresses */
    size_t n_members;
    uint16_t backend_port;          /* backend settings port (80) */
    sim_time_t request_timeout;     /* APPGW_REQUEST_TIMEOUT_DEFAULT */
    /* probe: path NULL = the default probe; host NULL = 127.0.0.1 */
    const char *probe_path, *probe_host, *probe_match;
    sim_time_t probe_interval, probe_timeout;   /* 0: 30 s, 30 s */
    int probe_unhealthy_threshold;  /* 0: 3 */
    /* Backend settings protocol HTTPS (end-to-end TLS, ssl-overview.md "End-to-end TLS with
     * the v2 SKU"): TLS 1.2 at most to the backend ("backend TLS connections will always
     * be negotiated via TLS 1.0 to TLS 1.2"); the certificate's root must be one of
     * trusted_roots and its CN/SAN must match the host name; SNI for probes: the custom
     * probe's host, else the settings' host name, else none (an IP is never SNI, RFC
     * 6066); for requests: the settings' host name, else the client's Host. */
    bool backend_https;
    const char *backend_host;       /* backend settings host name override; NULL: none */
    const tls_cert_t *const *trusted_roots; /* borrowed (the certificates' owner keeps them) */
    size_t n_trusted_roots;
    bool warm_start;                /* members were healthy before t=0 (a running gateway);
                                     * false: each must pass a probe first */
    metrics_t *metrics;
    explain_t *explain;
} appgw_params_t;
void appgw_params_default(appgw_params_t *p);

/* The name of instance i: "<name>-<i>". */
void appgw_instance_name(const char *name, int i, char *buf, size_t n);
/* Creates the instances (nodes appgw_instance_name) in fab, registers the frontend. NULL
 * with a message in err: the frontend or a node name taken, the subnet full. */
appgw_t *appgw_new(net_t *net, net_fabric_t *fab, const appgw_params_t *p, char *err,
                   size_t errlen);
void appgw_free(appgw_t *g);
size_t appgw_instance_count(const appgw_t *g);
net_node_t *appgw_instance_node(const appgw_t *g, size_t i);
/* Healthy members as instance i sees them. */
size_t appgw_healthy_members(const appgw_t *g, size_t i);
/* The parameters it was built with (members, timeouts; name and members owned by g; the
 * metrics/explain pointers as given). */
const appgw_params_t *appgw_params(const appgw_t *g);
/* Instance i's probe of the backend pool (its params are the probe as configured: path,
 * host, interval, timeout, thresholds, statuses, initial state) and its own address. */
health_t *appgw_instance_health(const appgw_t *g, size_t i);
uint32_t appgw_instance_addr(const appgw_t *g, size_t i);

#endif
