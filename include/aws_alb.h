/* aws_alb.h -- AWS Application Load Balancer: one node per Availability Zone, each an L7
 * proxy (include/l7proxy.h) with its own health checks (include/health.h) of one ip target
 * group; listeners HTTP (forward, or redirect to HTTPS) and HTTPS (the client side's TLS
 * not modelled: plain HTTP with X-Forwarded-Proto https); HTTP or HTTPS to the targets
 * (target_https: TLS without SNI or certificate check); round robin over healthy targets; a new target gets
 * traffic once it passed a health check; fail open when every target is unhealthy; the
 * ALB's own 502 / 503 / 504 with its error page and "Server: awselb/2.0"; idle timeout
 * 60 s; connect timeout 10 s. Sources and behaviour are described in models/aws/aws_alb.c.
 *
 * DNS is out of scope: clients connect to a node address (aws_alb_node_addr), or to an
 * optional frontend address that stands in for the DNS name and spreads connections over
 * the nodes by a 5-tuple hash. */
#ifndef AWS_ALB_H
#define AWS_ALB_H

#include "net.h"
#include "metrics.h"
#include "explain.h"
#include "health.h"

/* Connection idle timeout, load balancer attribute idle_timeout.timeout_seconds = 60
 * (application/application-load-balancers.html#connection-idle-timeout); it also bounds
 * the wait for a target's response (504, load-balancer-troubleshooting.html). */
#define AWS_ALB_IDLE_TIMEOUT_DEFAULT (60 * SIM_S)
/* "The load balancer failed to establish a connection to the target before the connection
 * timeout expired (10 seconds)" -> 504 (load-balancer-troubleshooting.html). */
#define AWS_ALB_CONNECT_TIMEOUT (10 * SIM_S)
/* Target group health check defaults (application/target-group-health-checks.html). */
#define AWS_ALB_HC_PATH_DEFAULT "/"
#define AWS_ALB_HC_MATCHER_DEFAULT "200"
#define AWS_ALB_HC_INTERVAL_DEFAULT 30
#define AWS_ALB_HC_TIMEOUT_DEFAULT 5
#define AWS_ALB_HC_HEALTHY_DEFAULT 5
#define AWS_ALB_HC_UNHEALTHY_DEFAULT 2
#define AWS_ALB_SERVER "awselb/2.0"
/* Redirect action StatusCode HTTP_301 or HTTP_302 (load-balancer-listeners.html); the
 * usual HTTP -> HTTPS redirect is permanent. */
#define AWS_ALB_REDIRECT_DEFAULT 301

#define AWS_ALB_MAX_ZONES 8

typedef enum { AWS_ALB_HTTP_NONE, AWS_ALB_HTTP_FORWARD, AWS_ALB_HTTP_REDIRECT }
    aws_alb_http_action_t;

typedef struct aws_alb_zone {
    const char *name;               /* "eu-west-1a" */
    uint32_t addr;                  /* the ALB node's address in the zone's subnet */
    int plen;                       /* its prefix length (0: 32) */
} aws_alb_zone_t;

typedef struct aws_alb_params {
    const char *name;               /* traces, counters, node names "<name>-<zone>" */
    uint32_t frontend;              /* 0: none; else a VIP spreading connections over the
                                     * nodes (stands in for the DNS name) */
    /* listeners */
    uint16_t http_port;             /* 80; 0: no HTTP listener */
    aws_alb_http_action_t http_action;  /* forward (default) or redirect to HTTPS */
    int redirect_status;            /* 301 (AWS_ALB_REDIRECT_DEFAULT) or 302 */
    uint16_t https_port;            /* 443; 0: no HTTPS listener */
    /* the ip target group */
    const uint32_t *targets;        /* target IPs (copied); may be empty: 503 */
    size_t n_targets;
    uint16_t target_port;           /* 80 */
    /* target group protocol HTTPS: TLS to the targets (and for the health check, whose
     * protocol follows the target group's), without SNI and without checking the
     * certificate (target-group-routing-configuration / "Routing configuration": "the load
     * balancer establishes TLS connections with the targets using certificates that you
     * install on the targets. The load balancer does not validate these certificates";
     * no SNI to targets: aws-samples/eks-alb-istio-with-tls#9, istio/istio#31421) */
    bool target_https;
    /* its health check */
    const char *hc_path;            /* "/" */
    uint16_t hc_port;               /* 0: traffic-port */
    const char *hc_matcher;         /* "200"; ALB accepts codes 200-499 */
    int hc_interval_s, hc_timeout_s, hc_healthy, hc_unhealthy;
    bool warm_start;                /* targets were healthy before t=0 (a running ALB);
                                     * false: each must pass a health check first */
    sim_time_t idle_timeout;        /* AWS_ALB_IDLE_TIMEOUT_DEFAULT */
    metrics_t *metrics;             /* may be NULL */
    explain_t *explain;             /* may be NULL */
} aws_alb_params_t;
/* HTTP 80 forward, no HTTPS listener, 301 for redirects, target port 80, health check
 * defaults (HTTP "/", traffic-port, 30 s, 5 s, 5/2, matcher 200), idle 60 s. */
void aws_alb_params_default(aws_alb_params_t *p);

typedef struct aws_alb aws_alb_t;

/* Creates the nodes ("<name>-<zone>", attached to fab) and the frontend VIP. NULL with a
 * message in err (no zone or listener, an address in use, bad health check settings, a
 * matcher outside 200-499, a redirect without an HTTPS port, ...). */
aws_alb_t *aws_alb_new(net_t *net, net_fabric_t *fab, const aws_alb_params_t *p,
                       const aws_alb_zone_t *zones, size_t n_zones, char *err, size_t errlen);
/* Stops health checks and proxies. NULL-safe. Call before net_free. */
void aws_alb_free(aws_alb_t *alb);

const char *aws_alb_name(const aws_alb_t *alb);
size_t aws_alb_node_count(const aws_alb_t *alb);
net_node_t *aws_alb_node(const aws_alb_t *alb, size_t i);
uint32_t aws_alb_node_addr(const aws_alb_t *alb, size_t i);
/* The health checker of node i (targets in the order given). */
health_t *aws_alb_health(const aws_alb_t *alb, size_t i);
/* The parameters it was built with (strings and targets owned by alb). */
const aws_alb_params_t *aws_alb_params(const aws_alb_t *alb);
/* Healthy targets as node i sees them. */
size_t aws_alb_healthy_targets(const aws_alb_t *alb, size_t i);

typedef struct aws_alb_stats {
    uint64_t requests, forwarded, fail_open, redirects;
    uint64_t status_502, status_503, status_504;
} aws_alb_stats_t;
/* Summed over the nodes. */
void aws_alb_stats(const aws_alb_t *alb, aws_alb_stats_t *out);

#endif
