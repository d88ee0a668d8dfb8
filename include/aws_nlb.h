/* aws_nlb.h -- AWS Network Load Balancer with ip targets, as the AWS Load Balancer
 * Controller builds it for a LoadBalancer Service: one NLB node per Availability Zone,
 * each with its own private IP (a VIP in the VPC fabric); one listener and target group
 * per Service port; targets are pod IPs; active health checks (include/health.h) from the
 * node of the target's zone; source NAT to the node's own IP (client IP preservation is
 * off for ip targets over TCP) with a flow table that reverses the replies; zone-local
 * routing unless cross-zone load balancing is on; routing failover (fail open) when a
 * node sees no healthy target; TCP idle timeout 350 s; flows of a target that turns
 * unhealthy are terminated (RST). Sources and behaviour are described in models/aws/aws_nlb.c.
 *
 * DNS is out of scope: clients (or an ALB target group) are given the node addresses
 * (aws_nlb_zone_addr); aws_nlb_zone_in_dns tells which of them DNS would answer. */
#ifndef AWS_NLB_H
#define AWS_NLB_H

#include "net.h"
#include "k8s.h"
#include "metrics.h"
#include "explain.h"
#include "health.h"

/* ---- defaults, with their sources ------------------------------------------------------ */
/* "Network Load Balancer has an idle timeout of 350 seconds for TCP flows"
 * (elasticloadbalancing/latest/network/network-load-balancers.html#connection-idle-timeout). */
#define AWS_NLB_TCP_IDLE_TIMEOUT (350 * SIM_S)
/* Target group attribute deregistration_delay.timeout_seconds = 300
 * (network/load-balancer-target-groups.html#deregistration-delay). */
#define AWS_NLB_DEREG_DELAY_DEFAULT (300 * SIM_S)
/* Health check defaults of the AWS Load Balancer Controller (docs/guide/service/
 * annotations.md, pkg/service/model_builder.go): TCP, traffic-port, "/", interval 10 s,
 * timeout 10 s, healthy 3, unhealthy 3, success codes 200-399. */
#define AWS_NLB_HC_INTERVAL_DEFAULT 10
#define AWS_NLB_HC_TIMEOUT_DEFAULT 10
#define AWS_NLB_HC_THRESHOLD_DEFAULT 3
#define AWS_NLB_HC_PATH_DEFAULT "/"
#define AWS_NLB_HC_SUCCESS_DEFAULT "200-399"
/* Target group health: "a target group is considered healthy as long as it has at least
 * one healthy target" -- routing failover minimum_healthy_targets.count 1
 * (network/target-group-health.html). */
#define AWS_NLB_MIN_HEALTHY_DEFAULT 1

#define AWS_NLB_MAX_ZONES 8
#define AWS_NLB_MAX_LISTENERS 8

typedef enum { AWS_NLB_HC_TCP, AWS_NLB_HC_HTTP, AWS_NLB_HC_HTTPS } aws_nlb_hc_proto_t;

typedef struct aws_nlb_listener {
    uint16_t port;                  /* listener (Service) port */
    uint16_t target_port;           /* targetPort; 0 when it is named (see target_port_name):
                                     * the caller resolves it before aws_nlb_new */
    const char *target_port_name;
    const char *name;               /* the Service port's name, may be NULL */
} aws_nlb_listener_t;

/* Everything the controller derives from the Service, and the NLB's runtime knobs. Strings
 * are borrowed (from the Service, or static); aws_nlb_new copies what it keeps. */
typedef struct aws_nlb_params {
    const char *name;               /* traces, counters, node names "<name>-<zone>" */
    bool internal;                  /* scheme internal (the controller's default) */
    bool ip_targets;                /* nlb-target-type ip; instance targets are not modelled */
    aws_nlb_listener_t listeners[AWS_NLB_MAX_LISTENERS];
    size_t n_listeners;
    /* health check of every target group */
    aws_nlb_hc_proto_t hc_proto;
    uint16_t hc_port;               /* 0: traffic-port (the target group's target port) */
    const char *hc_path;            /* HTTP(S) */
    const char *hc_success;         /* HTTP(S) success codes, "200-399" */
    int hc_interval_s, hc_timeout_s, hc_healthy, hc_unhealthy;
    /* load balancer and target group attributes */
    bool cross_zone;                /* load_balancing.cross_zone.enabled, default false */
    bool preserve_client_ip;        /* preserve_client_ip.enabled: default false for ip
                                     * targets over TCP; true is not modelled (LB_EINVAL) */
    sim_time_t idle_timeout;        /* AWS_NLB_TCP_IDLE_TIMEOUT */
    bool unhealthy_termination;     /* target_health_state.unhealthy.connection_termination
                                     * .enabled, default true */
    sim_time_t unhealthy_draining;  /* ...unhealthy.draining_interval_seconds, default 0
                                     * (only meaningful with termination off) */
    sim_time_t dereg_delay;         /* deregistration_delay.timeout_seconds */
    bool dereg_termination;         /* deregistration_delay.connection_termination.enabled,
                                     * default false */
    int min_healthy;                /* routing failover threshold (count) per node view */
    /* node addresses from service.beta.kubernetes.io/aws-load-balancer-private-ipv4-addresses,
     * one per zone in order (0 if not given) */
    uint32_t private_ips[AWS_NLB_MAX_ZONES];
    size_t n_private_ips;
    metrics_t *metrics;             /* may be NULL */
    explain_t *explain;             /* may be NULL */
} aws_nlb_params_t;
/* The controller's defaults: internal, ip targets, TCP health check on traffic-port,
 * 10 s / 10 s / 3 / 3, "/" and 200-399 for HTTP, cross-zone off, no client IP
 * preservation, idle 350 s, unhealthy connection termination on, deregistration delay
 * 300 s without termination, routing failover below 1 healthy target; no listeners. */
void aws_nlb_params_default(aws_nlb_params_t *p);

/* What the AWS Load Balancer Controller builds from a LoadBalancer Service's annotations
 * (service.beta.kubernetes.io/aws-load-balancer-*: type, nlb-target-type, scheme,
 * internal, healthcheck-{protocol,port,path,interval,timeout,healthy-threshold,
 * unhealthy-threshold,success-codes}, cross-zone-load-balancing-enabled, attributes,
 * target-group-attributes, private-ipv4-addresses), over aws_nlb_params_default(). One
 * listener per TCP Service port. Strings point into svc. Returns 0; LB_ENOENT when the
 * controller does not reconcile the Service (not type LoadBalancer, or
 * aws-load-balancer-type is neither "external" nor "nlb-ip": the in-tree cloud provider's
 * business); LB_EINVAL with a message in err for a value the controller or the ELB API
 * rejects (a bad number, interval outside 5-300, thresholds outside 2-10, timeout outside
 * 2-120, unknown protocol, a named healthcheck-port that cannot be resolved). */
int aws_nlb_params_from_service(const k8s_service_t *svc, aws_nlb_params_t *p, char *err,
                                size_t errlen);

/* An enabled Availability Zone: its name and the NLB node's address in its subnet. */
typedef struct aws_nlb_zone {
    const char *name;               /* "eu-west-1a"; targets name their zone */
    uint32_t addr;                  /* 0: params.private_ips[i], else the subnet's last
                                     * usable address */
    uint32_t subnet; int plen;      /* the zone's subnet (for the fallback address) */
} aws_nlb_zone_t;

typedef struct aws_nlb aws_nlb_t;

/* Creates the NLB: one node per zone ("<name>-<zone>", an interface in fab and the node
 * address as a VIP of fab). NULL with a message in err: no zone or listener, a zone
 * without an address, an address already owned in the fabric, invalid health check
 * parameters, preserve_client_ip, instance targets. */
aws_nlb_t *aws_nlb_new(net_t *net, net_fabric_t *fab, const aws_nlb_params_t *p,
                       const aws_nlb_zone_t *zones, size_t n_zones, char *err, size_t errlen);
/* Stops the probes and frees everything. The fabric keeps the VIPs: teardown only. */
void aws_nlb_free(aws_nlb_t *nlb);

/* Registers an ip target (a pod IP) in zone `zone` with every target group; label NULL:
 * the address. Its first health check runs now. Returns its index (0, 1, ...), LB_ENOENT
 * for a zone the NLB is not enabled in (such targets are "unused" in AWS), LB_EEXIST. */
int aws_nlb_target_add(aws_nlb_t *nlb, uint32_t addr, const char *zone, const char *label);
/* The same for a target registered while the NLB runs: it is `initial` for `lag` before
 * the NLB's first health check of it ("it may take a few minutes before health checking
 * starts", awsdocs/elb-network-load-balancers-user-guide#11, about 120 s measured in 2019;
 * much faster since September 2024, aws-load-balancer-controller#1834). */
int aws_nlb_target_register(aws_nlb_t *nlb, uint32_t addr, const char *zone, const char *label,
                            sim_time_t lag);
/* Deregisters target i: no new flows at once; after the deregistration delay its flows
 * are reset if dereg_termination is on, else they live on until they idle out. (Its health
 * checks go on -- health.h cannot remove a target -- but are ignored.) */
int aws_nlb_target_deregister(aws_nlb_t *nlb, size_t i);

/* ---- queries (explanations, wiring, tests) -------------------------------------------- */
const char *aws_nlb_name(const aws_nlb_t *nlb);
size_t aws_nlb_zone_count(const aws_nlb_t *nlb);
const char *aws_nlb_zone_name(const aws_nlb_t *nlb, size_t z);
uint32_t aws_nlb_zone_addr(const aws_nlb_t *nlb, size_t z);
net_node_t *aws_nlb_zone_node(const aws_nlb_t *nlb, size_t z);
/* Whether DNS would hand out zone z's address: the zone has a healthy target in every
 * target group (cross-zone on: any zone does), or no zone qualifies (fail open: all). */
bool aws_nlb_zone_in_dns(const aws_nlb_t *nlb, size_t z);
size_t aws_nlb_listener_count(const aws_nlb_t *nlb);
const aws_nlb_listener_t *aws_nlb_listener(const aws_nlb_t *nlb, size_t l);
size_t aws_nlb_target_count(const aws_nlb_t *nlb);
uint32_t aws_nlb_target_addr(const aws_nlb_t *nlb, size_t i);
/* Target i's zone (an index for aws_nlb_zone_name) and label. */
size_t aws_nlb_target_zone(const aws_nlb_t *nlb, size_t i);
const char *aws_nlb_target_label(const aws_nlb_t *nlb, size_t i);
/* The parameters it was built with (what the controller derived from the Service). */
const aws_nlb_params_t *aws_nlb_params(const aws_nlb_t *nlb);
/* Health of target i in listener l's target group. */
health_state_t aws_nlb_target_state(const aws_nlb_t *nlb, size_t l, size_t i);
/* The checker probing zone z's targets for listener l (targets in the order added). */
health_t *aws_nlb_health(const aws_nlb_t *nlb, size_t l, size_t z);
/* Healthy targets node z may use for listener l (its zone's, or all with cross-zone). */
size_t aws_nlb_healthy_in_view(const aws_nlb_t *nlb, size_t l, size_t z);
/* The target a live flow from client:cport to node address:port goes to, or -1. */
int aws_nlb_flow_target(const aws_nlb_t *nlb, uint32_t client, uint16_t cport, uint32_t addr,
                        uint16_t port);

typedef struct aws_nlb_stats {
    uint64_t packets, new_flows, flows_now, fail_open_flows;
    uint64_t idle_expired, terminated;          /* flows ended by idle / target health */
    uint64_t rst_sent;                          /* RSTs answering packets of ended flows */
    uint64_t drop_no_listener, drop_no_target, drop_no_port;
} aws_nlb_stats_t;
void aws_nlb_stats(const aws_nlb_t *nlb, aws_nlb_stats_t *out);

#endif
