/* cloud_provider_azure.h -- the Azure Load Balancer health probe that cloud-provider-azure
 * (the cloud controller manager AKS runs) configures for each port of a Service of type
 * LoadBalancer, and a sentence saying which rule chose it. Pure logic: a Service in, a
 * probe description out; the Azure LB model turns it into probes. Sources:
 * kubernetes-sigs/cloud-provider-azure pkg/provider/azure_loadbalancer_healthprobe.go
 * (buildHealthProbeRulesForPort), pkg/provider/azure_loadbalancer.go (getExpectedLBRules),
 * pkg/consts/consts.go, site/content/en/topics/loadbalancer.md ("Custom Load Balancer
 * health probe"). */
#ifndef CLOUD_PROVIDER_AZURE_H
#define CLOUD_PROVIDER_AZURE_H

#include "k8s.h"

/* consts.go HealthProbeDefaultProbeInterval / HealthProbeDefaultNumOfProbe. */
#define CPA_PROBE_INTERVAL_DEFAULT_S 5
#define CPA_PROBE_NUM_DEFAULT        2
/* getHealthProbeConfigProbeInterval / ...NumOfProbe validators (Azure REST API limits). */
#define CPA_PROBE_INTERVAL_MIN_S     5
#define CPA_PROBE_NUM_MIN            2
/* getHealthProbeConfigProbeIntervalAndNumOfProbe: interval * num must stay below 120 s. */
#define CPA_PROBE_TOTAL_MAX_S        120
/* consts.go HealthProbeDefaultRequestPath: HTTP(S) probes of ETP Cluster ports. */
#define CPA_PROBE_PATH_DEFAULT       "/"
/* k8s.io/cloud-provider servicehelpers.GetServiceHealthCheckPathPort: kube-proxy's
 * healthCheckNodePort server path for ETP Local. */
#define CPA_LOCAL_PROBE_PATH         "/healthz"
/* consts.go ClusterServiceLoadBalancerHealthProbeDefaultPort/Path (shared probe mode:
 * kube-proxy's own /healthz). */
#define CPA_SHARED_PROBE_PORT        10256
#define CPA_SHARED_PROBE_PATH        "/healthz"
/* loadbalancer.md: "For clusters >1.24, spec.ports.appProtocol would be used as probe
 * protocol and / would be used as default probe request path". */
#define CPA_APP_PROTOCOL_SINCE_MINOR 24
/* The Kubernetes version assumed when none is given (a current AKS release). */
#define CPA_K8S_MINOR_DEFAULT        29

typedef enum { CPA_PROBE_NONE, CPA_PROBE_TCP, CPA_PROBE_HTTP, CPA_PROBE_HTTPS } cpa_proto_t;
/* "none", "Tcp", "Http", "Https" (the Azure API's spelling). */
const char *cpa_proto_str(cpa_proto_t p);

/* cloud config clusterServiceLoadBalancerHealthProbeMode. */
typedef enum {
    CPA_MODE_SERVICE_NODE_PORT,     /* "servicenodeport" (default): one probe per port */
    CPA_MODE_SHARED                 /* "shared": ETP Cluster services share kube-proxy's probe */
} cpa_mode_t;

/* Which cloud-provider-azure release honours which annotation (first tag carrying the
 * change on each release line, read from the upstream repository's tags; a line not
 * listed never got the backport):
 *  - port_{port}_health-probe_protocol and port_{port}_health-probe_port (#1505, issue
 *    #1499; commit "Add port and protocol probe annotations"): v1.26.0, backported to
 *    release-1.25 (#2823, v1.25.6) and release-1.24 (#2824, v1.24.12); the release-1.23
 *    (#2825) and release-1.1 (#2826) backports were closed unmerged.
 *  - ETP Local honouring port_{port}_health-probe_port instead of the healthCheckNodePort
 *    probe (#4629): v1.29.0, release-1.28 (#4639, v1.28.1), release-1.27 (#4661, v1.27.9).
 *  - the shared probe mode (clusterServiceLoadBalancerHealthProbeMode): v1.29.0, v1.28.5.
 * Older releases ignore these annotations silently: the probe they build is the one
 * without them. (Per-port interval / num-of-probe / request-path and appProtocol, #963,
 * are older: v1.24.0 and v1.23.4; they are not gated here.) */
typedef enum { CPA_F_PORT_PROBE_PORT, CPA_F_LOCAL_PROBE_PORT, CPA_F_SHARED_PROBE,
               CPA_F_COUNT } cpa_feature_t;
/* "port_{port}_health-probe_port/protocol (#1505)" ... */
const char *cpa_feature_str(cpa_feature_t f);

typedef struct cpa_opts {
    int k8s_minor;                  /* cluster Kubernetes 1.<minor>; CPA_K8S_MINOR_DEFAULT */
    /* cloud-provider-azure release v1.<ccm_minor>.<ccm_patch>; ccm_minor 0: the release
     * line of the cluster's Kubernetes minor (AKS runs the matching line), ccm_patch -1:
     * its newest patch (every backport in). */
    int ccm_minor, ccm_patch;
    bool basic_sku;                 /* false: Standard LB (AKS); Basic has no HTTPS probes */
    cpa_mode_t mode;                /* CPA_MODE_SERVICE_NODE_PORT */
    int shared_port;                /* CPA_SHARED_PROBE_PORT */
    const char *shared_path;        /* CPA_SHARED_PROBE_PATH */
} cpa_opts_t;
void cpa_opts_init(cpa_opts_t *o);
/* Sets k8s_minor from "1.29", "v1.29.4" or "1.29.4". LB_EINVAL when it is not 1.x. */
int cpa_opts_set_version(cpa_opts_t *o, const char *version);
/* Sets the cloud-provider-azure release from "v1.24.11" or "1.24.11" (or "1.24": newest
 * patch). LB_EINVAL when it is not 1.x[.y]. */
int cpa_opts_set_ccm_version(cpa_opts_t *o, const char *version);
/* Whether the release in opts honours feature f. */
bool cpa_has(const cpa_opts_t *o, cpa_feature_t f);
/* The release as "v1.24.11" (or "v1.24.x" for the newest patch) into buf. */
const char *cpa_ccm_version_str(const cpa_opts_t *o, char *buf, size_t n);

/* The probe of one service port. The Azure probe marks a node down after `threshold`
 * consecutive failed probes and up again after `threshold` consecutive successes (ARM
 * ProbePropertiesFormat.probeThreshold, which cloud-provider-azure sets from num-of-probe;
 * releases before the armnetwork SDK set numberOfProbes, "the number of probes where if
 * no response, will result in stopping further traffic", to the same value). An HTTP(S)
 * probe passes only on 200; TCP passes on a completed handshake (MODELS.md). */
typedef struct cpa_probe {
    bool lb_rule;                   /* false: port_{port}_no_lb_rule -- no rule, no probe */
    cpa_proto_t protocol;           /* CPA_PROBE_NONE: the rule has no probe */
    int port;                       /* node port probed (nodePort, healthCheckNodePort, ...) */
    char path[256];                 /* HTTP(S) request path; "" for TCP */
    int interval_s;                 /* seconds between probes */
    int threshold;                  /* consecutive results to change state */
    char why[512];                  /* which rule chose this, with its source */
} cpa_probe_t;

/* Fills *out for svc->ports.v[port_index] as cloud-provider-azure would (opts NULL:
 * defaults). Services that are not type LoadBalancer get no LB rule. Returns 0, or
 * LB_EINVAL for an annotation cloud-provider-azure rejects (bad number, interval < 5,
 * num-of-probe < 2, interval * num >= 120, unknown probe port): the real controller then
 * fails to reconcile the load balancer; out->why carries its error message. */
int cpa_probe_for_port(const k8s_service_t *svc, size_t port_index, const cpa_opts_t *opts,
                       cpa_probe_t *out);

#endif
