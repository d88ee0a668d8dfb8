/* cloud_provider_azure.c -- cloud-provider-azure's choice of Azure LB health probe per
 * Service port (see cloud_provider_azure.h for the sources). The decision, in the order
 * the controller takes it (getExpectedLBRules, then buildHealthProbeRulesForPort):
 *   1. port_{port}_no_lb_rule=true        -> no LB rule, no probe
 *   2. port_{port}_no_probe_rule=true     -> LB rule without probe
 *   3. ETP Local, no port_{port}_health-probe_port -> HTTP healthCheckNodePort /healthz
 *   4. shared probe mode (ETP Cluster)    -> HTTP :10256 /healthz (kube-proxy)
 *   5. UDP / SCTP port                    -> no probe
 *   6. otherwise a per-port probe: port = health-probe_port override or the nodePort;
 *      protocol = port annotation > appProtocol (>= 1.24) > global annotation > TCP;
 *      path (HTTP/S) = port annotation > global request-path annotation > "/";
 *      interval / num-of-probe = port annotation > global annotation > 5 / 2. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "cloud_provider_azure.h"

/* pkg/consts/consts.go annotation names. */
#define ANN_PREFIX           "service.beta.kubernetes.io/"
#define ANN_PORT_FMT         ANN_PREFIX "port_%d_%s"       /* PortAnnotationPrefixPattern */
#define ANN_PROBE_PARAM      "health-probe_%s"              /* HealthProbeAnnotationPrefixPattern */
#define ANN_NO_LB_RULE       "no_lb_rule"
#define ANN_NO_PROBE_RULE    "no_probe_rule"
#define ANN_GLOBAL_PROTOCOL  ANN_PREFIX "azure-load-balancer-health-probe-protocol"
#define ANN_GLOBAL_PATH      ANN_PREFIX "azure-load-balancer-health-probe-request-path"
#define ANN_GLOBAL_INTERVAL  ANN_PREFIX "azure-load-balancer-health-probe-interval"
#define ANN_GLOBAL_NUM       ANN_PREFIX "azure-load-balancer-health-probe-num-of-probe"

const char *cpa_proto_str(cpa_proto_t p)
{
    switch (p) {
    case CPA_PROBE_TCP: return "Tcp";
    case CPA_PROBE_HTTP: return "Http";
    case CPA_PROBE_HTTPS: return "Https";
    default: return "none";
    }
}

/* The version table (sources in cloud_provider_azure.h): the release line from which the
 * change is in every release, and the first patch of each line it was backported to. */
typedef struct { int minor, patch; } rel_t;
static const struct {
    const char *name;
    int main_minor;
    rel_t backports[2];
} features[CPA_F_COUNT] = {
    [CPA_F_PORT_PROBE_PORT] = {"port_{port}_health-probe_port and _protocol (#1505)", 26,
                               {{24, 12}, {25, 6}}},
    [CPA_F_LOCAL_PROBE_PORT] = {"health-probe_port with externalTrafficPolicy Local (#4629)",
                                29, {{27, 9}, {28, 1}}},
    [CPA_F_SHARED_PROBE] = {"the shared probe mode", 29, {{28, 5}, {0, 0}}},
};

const char *cpa_feature_str(cpa_feature_t f)
{
    return f < CPA_F_COUNT ? features[f].name : "?";
}

static int ccm_minor(const cpa_opts_t *o)
{
    return o->ccm_minor ? o->ccm_minor : o->k8s_minor;
}

bool cpa_has(const cpa_opts_t *o, cpa_feature_t f)
{
    if (f >= CPA_F_COUNT)
        return false;
    int minor = ccm_minor(o);
    if (minor >= features[f].main_minor)
        return true;
    for (size_t i = 0; i < 2; i++) {
        const rel_t *b = &features[f].backports[i];
        if (b->minor && b->minor == minor)
            return o->ccm_patch < 0 || o->ccm_patch >= b->patch;
    }
    return false;
}

const char *cpa_ccm_version_str(const cpa_opts_t *o, char *buf, size_t n)
{
    if (o->ccm_patch < 0)
        snprintf(buf, n, "v1.%d.x", ccm_minor(o));
    else
        snprintf(buf, n, "v1.%d.%d", ccm_minor(o), o->ccm_patch);
    return buf;
}

/* "v1.MINOR[.PATCH]" or "1.MINOR[.PATCH]": 0 with *minor and *patch (-1 when absent),
 * else LB_EINVAL. The one parser of both version options. */
static int parse_v1(const char *v, long *minor, long *patch)
{
    if (!v)
        return LB_EINVAL;
    if (*v == 'v' || *v == 'V')
        v++;
    if (v[0] != '1' || v[1] != '.' || !isdigit((unsigned char)v[2]))
        return LB_EINVAL;
    char *end;
    *minor = strtol(v + 2, &end, 10);
    *patch = -1;
    if (*minor > 1000)
        return LB_EINVAL;
    if (*end == '.') {
        if (!isdigit((unsigned char)end[1]))
            return LB_EINVAL;
        *patch = strtol(end + 1, &end, 10);
        if (*patch > 100000)
            return LB_EINVAL;
    }
    return *end ? LB_EINVAL : 0;
}

int cpa_opts_set_ccm_version(cpa_opts_t *o, const char *v)
{
    long minor, patch;
    if (parse_v1(v, &minor, &patch) || minor < 1)
        return LB_EINVAL;
    o->ccm_minor = (int)minor;
    o->ccm_patch = (int)patch;
    return 0;
}

void cpa_opts_init(cpa_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->ccm_patch = -1;
    o->k8s_minor = CPA_K8S_MINOR_DEFAULT;
    o->mode = CPA_MODE_SERVICE_NODE_PORT;
    o->shared_port = CPA_SHARED_PROBE_PORT;
    o->shared_path = CPA_SHARED_PROBE_PATH;
}

int cpa_opts_set_version(cpa_opts_t *o, const char *v)
{
    long minor, patch;
    if (parse_v1(v, &minor, &patch))
        return LB_EINVAL;
    o->k8s_minor = (int)minor;
    return 0;
}

/* ---- annotation access ------------------------------------------------------------------ */
static const char *ann(const k8s_service_t *s, const char *key)
{
    return k8s_kv_get(&s->meta.annotations, key);
}

/* consts.BuildHealthProbeAnnotationKeyForPort / BuildAnnotationKeyForPort. */
static const char *port_ann(const k8s_service_t *s, int port, const char *param, char *key,
                            size_t n)
{
    snprintf(key, n, ANN_PORT_FMT, port, param);
    return ann(s, key);
}

static const char *probe_ann(const k8s_service_t *s, int port, const char *param, char *key,
                             size_t n)
{
    char p[64];
    snprintf(p, sizeof p, ANN_PROBE_PARAM, param);
    return port_ann(s, port, p, key, n);
}

static bool ann_true(const char *v)
{
    return v && strcasecmp(v, "true") == 0;
}

static void trim(const char *v, char *out, size_t n)
{
    while (*v && isspace((unsigned char)*v))
        v++;
    size_t len = strlen(v);
    while (len && isspace((unsigned char)v[len - 1]))
        len--;
    if (len >= n)
        len = n - 1;
    memcpy(out, v, len);
    out[len] = 0;
}

/* strconv.ParseInt(v, 10, 32) on the annotation value. */
static bool parse_i32(const char *v, int *out)
{
    char buf[32];
    trim(v, buf, sizeof buf);
    if (!buf[0])
        return false;
    errno = 0;
    char *end;
    long x = strtol(buf, &end, 10);
    if (*end || errno || x < INT32_MIN || x > INT32_MAX)
        return false;
    *out = (int)x;
    return true;
}

/* out->why = the formatted text (vsnprintf: truncation of a long explanation is fine). */
static void set_why(cpa_probe_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_why(cpa_probe_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->why, sizeof out->why, fmt, ap);
    va_end(ap);
}

static int fail(cpa_probe_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(cpa_probe_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->why, sizeof out->why, fmt, ap);
    va_end(ap);
    out->protocol = CPA_PROBE_NONE;
    return LB_EINVAL;
}

/* One integer parameter: port annotation, then the global one, then the default
 * (getHealthProbeConfigProbeInterval / getHealthProbeConfigNumOfProbe). *src says which. */
static int probe_int(const k8s_service_t *s, int port, const char *param, const char *global,
                     int def, int min, int *val, const char **src, cpa_probe_t *out)
{
    char key[160];
    const char *v = port >= 0 ? probe_ann(s, port, param, key, sizeof key) : NULL;
    const char *k = key;
    *src = "default";
    if (v)
        *src = "port annotation";
    else if ((v = ann(s, global))) {
        k = global;
        *src = "service annotation";
    }
    if (!v) {
        *val = def;
        return 0;
    }
    if (!parse_i32(v, val))
        return fail(out, "failed to parse annotation %s: '%s' is not an integer "
                    "(cloud-provider-azure rejects the service)", k, v);
    if (*val < min)
        return fail(out, "failed to parse annotation %s: the minimum value of %s is %d",
                    k, param, min);
    return 0;
}

static int interval_and_num(const k8s_service_t *s, int port, cpa_probe_t *out,
                            const char **isrc, const char **nsrc)
{
    /* num-of-probe is read first, as the controller does. */
    int rc = probe_int(s, port, "num-of-probe", ANN_GLOBAL_NUM, CPA_PROBE_NUM_DEFAULT,
                       CPA_PROBE_NUM_MIN, &out->threshold, nsrc, out);
    if (rc == 0)
        rc = probe_int(s, port, "interval", ANN_GLOBAL_INTERVAL, CPA_PROBE_INTERVAL_DEFAULT_S,
                       CPA_PROBE_INTERVAL_MIN_S, &out->interval_s, isrc, out);
    if (rc == 0 && (long)out->interval_s * out->threshold >= CPA_PROBE_TOTAL_MAX_S)
        rc = fail(out, "total probe should be less than %d, please adjust interval (%d) and "
                  "number of probe (%d) accordingly", CPA_PROBE_TOTAL_MAX_S, out->interval_s,
                  out->threshold);
    return rc;
}

/* The probe port of a health-probe_port override: a port name or a number; a number
 * that is a service port means that port's nodePort, any other number is used as is. */
static int override_port(const k8s_service_t *s, const char *v, int *port, char *how, size_t n)
{
    char val[64];
    trim(v, val, sizeof val);
    for (size_t i = 0; i < s->ports.n; i++)
        if (s->ports.v[i].name && strcasecmp(s->ports.v[i].name, val) == 0) {
            *port = s->ports.v[i].node_port;
            snprintf(how, n, "the nodePort %d of service port '%s'", *port, s->ports.v[i].name);
            return 0;
        }
    int num;
    if (!parse_i32(val, &num))
        return LB_ENOENT;
    if (num < 0 || num > 65535)
        return LB_EINVAL;
    for (size_t i = 0; i < s->ports.n; i++)
        if (s->ports.v[i].port == num) {
            *port = s->ports.v[i].node_port;
            snprintf(how, n, "the nodePort %d of service port %d", *port, num);
            return 0;
        }
    *port = num;
    snprintf(how, n, "port %d", num);
    return 0;
}

static bool is_udp_or_sctp(const k8s_service_port_t *p)
{
    return p->protocol && (strcasecmp(p->protocol, "UDP") == 0 ||
                           strcasecmp(p->protocol, "SCTP") == 0);
}

int cpa_probe_for_port(const k8s_service_t *svc, size_t port_index, const cpa_opts_t *opts,
                       cpa_probe_t *out)
{
    cpa_opts_t def;
    if (!opts) {
        cpa_opts_init(&def);
        opts = &def;
    }
    memset(out, 0, sizeof(*out));
    if (!svc || port_index >= svc->ports.n)
        return fail(out, "no such service port");
    const k8s_service_port_t *sp = &svc->ports.v[port_index];
    int port = sp->port;
    char key[160], how[128];
    const char *isrc, *nsrc;

    if (svc->type != K8S_SVC_LOAD_BALANCER) {
        set_why(out, "service is not of type LoadBalancer: "
                 "cloud-provider-azure builds no load-balancing rule");
        return 0;
    }
    /* 1. getExpectedLBRules: IsLBRuleOnK8sServicePortDisabled. */
    if (ann_true(port_ann(svc, port, ANN_NO_LB_RULE, key, sizeof key))) {
        set_why(out, "%s=true: no load-balancing rule and no probe "
                 "for port %d", key, port);
        return 0;
    }
    out->lb_rule = true;
    /* 2. IsHealthProbeRuleOnK8sServicePortDisabled. */
    if (ann_true(port_ann(svc, port, ANN_NO_PROBE_RULE, key, sizeof key))) {
        set_why(out, "%s=true: the rule for port %d has no health "
                 "probe", key, port);
        return 0;
    }
    const char *port_override = probe_ann(svc, port, "port", key, sizeof key);
    char port_key[160], ver[32], ignored[400] = "";
    memcpy(port_key, key, sizeof key);
    cpa_ccm_version_str(opts, ver, sizeof ver);
    if (port_override && !cpa_has(opts, CPA_F_PORT_PROBE_PORT)) {
        snprintf(ignored, sizeof ignored, "%s ignored: cloud-provider-azure %s predates %s; ",
                 port_key, ver, cpa_feature_str(CPA_F_PORT_PROBE_PORT));
        port_override = NULL;
    }
    if (port_override && svc->etp == K8S_ETP_LOCAL && !cpa_has(opts, CPA_F_LOCAL_PROBE_PORT)) {
        snprintf(ignored, sizeof ignored, "%s ignored: cloud-provider-azure %s predates %s; ",
                 port_key, ver, cpa_feature_str(CPA_F_LOCAL_PROBE_PORT));
        port_override = NULL;
    }

    /* 3. servicehelpers.NeedsHealthCheck: type LoadBalancer with ETP Local. The node
     * probe takes precedence unless the port names its own probe port
     * (cloud-provider-azure#4629); its interval and count follow the service-wide
     * annotations (cloud-provider-azure#4207). */
    if (svc->etp == K8S_ETP_LOCAL && !port_override) {
        if (interval_and_num(svc, -1, out, &isrc, &nsrc))
            return LB_EINVAL;
        out->protocol = CPA_PROBE_HTTP;
        out->port = svc->health_check_node_port;
        snprintf(out->path, sizeof out->path, "%s", CPA_LOCAL_PROBE_PATH);
        set_why(out, "%sexternalTrafficPolicy Local: HTTP probe of "
                 "kube-proxy's healthCheckNodePort %d %s (200 only on nodes with a ready "
                 "local endpoint); interval %d s (%s), threshold %d (%s) "
                 "[cloud-provider-azure getExpectedLBRules, NeedsHealthCheck]", ignored,
                 out->port, out->path, out->interval_s, isrc, out->threshold, nsrc);
        return 0;
    }
    /* 4. Shared probe mode (clusterServiceLoadBalancerHealthProbeMode=shared). */
    if (opts->mode == CPA_MODE_SHARED && svc->etp != K8S_ETP_LOCAL &&
        cpa_has(opts, CPA_F_SHARED_PROBE)) {
        out->protocol = CPA_PROBE_HTTP;
        out->port = opts->shared_port;
        snprintf(out->path, sizeof out->path, "%s", opts->shared_path);
        out->interval_s = CPA_PROBE_INTERVAL_DEFAULT_S;
        out->threshold = CPA_PROBE_NUM_DEFAULT;
        set_why(out, "shared health probe mode: every ETP Cluster "
                 "service uses one HTTP probe of kube-proxy :%d%s, interval %d s, threshold "
                 "%d [buildClusterServiceSharedProbe]", out->port, out->path, out->interval_s,
                 out->threshold);
        return 0;
    }
    /* 5. Azure probes TCP, HTTP or HTTPS only: UDP and SCTP rules get no probe. */
    if (is_udp_or_sctp(sp)) {
        set_why(out, "port %d is %s: no health probe "
                 "[buildHealthProbeRulesForPort]", port, sp->protocol);
        return 0;
    }
    /* 6. The per-port probe. Port first. */
    if (port_override) {
        int rc = override_port(svc, port_override, &out->port, how, sizeof how);
        if (rc == LB_ENOENT)
            return fail(out, "failed to parse annotation %s: port %s not found in service",
                        port_key, port_override);
        if (rc)
            return fail(out, "failed to parse annotation %s: port %s is out of range",
                        port_key, port_override);
    } else {
        out->port = sp->node_port;
        snprintf(how, sizeof how, "its nodePort %d", out->port);
    }

    /* Protocol: port annotation, appProtocol, global annotation, TCP. */
    char ppkey[160];
    const char *proto = probe_ann(svc, port, "protocol", ppkey, sizeof ppkey);
    if (proto && !cpa_has(opts, CPA_F_PORT_PROBE_PORT)) {
        size_t l = strlen(ignored);
        snprintf(ignored + l, sizeof ignored - l, "%s ignored: cloud-provider-azure %s "
                 "predates %s; ", ppkey, ver, cpa_feature_str(CPA_F_PORT_PROBE_PORT));
        proto = NULL;
    }
    char psrc[256];
    const char *gpath = ann(svc, ANN_GLOBAL_PATH);
    bool app_proto_used = sp->app_protocol &&
        (opts->k8s_minor >= CPA_APP_PROTOCOL_SINCE_MINOR || gpath);
    if (proto) {
        snprintf(psrc, sizeof psrc, "annotation %s=%s", ppkey, proto);
    } else if (app_proto_used) {
        proto = sp->app_protocol;
        if (opts->k8s_minor >= CPA_APP_PROTOCOL_SINCE_MINOR)
            snprintf(psrc, sizeof psrc, "appProtocol '%s' (used as probe protocol since "
                     "Kubernetes 1.%d; cluster is 1.%d)", proto, CPA_APP_PROTOCOL_SINCE_MINOR,
                     opts->k8s_minor);
        else
            snprintf(psrc, sizeof psrc, "appProtocol '%s' with the request-path annotation "
                     "(Kubernetes 1.%d < 1.%d uses appProtocol only then)", proto,
                     opts->k8s_minor, CPA_APP_PROTOCOL_SINCE_MINOR);
    } else if ((proto = ann(svc, ANN_GLOBAL_PROTOCOL))) {
        snprintf(psrc, sizeof psrc, "annotation %s=%s", ANN_GLOBAL_PROTOCOL, proto);
    } else if (sp->app_protocol) {
        proto = "Tcp";
        snprintf(psrc, sizeof psrc, "default TCP: appProtocol '%s' is ignored before "
                 "Kubernetes 1.%d (cluster is 1.%d) without the request-path annotation",
                 sp->app_protocol, CPA_APP_PROTOCOL_SINCE_MINOR, opts->k8s_minor);
    } else {
        proto = "Tcp";
        snprintf(psrc, sizeof psrc, "default TCP (no appProtocol, no probe annotations)");
    }
    char p[32];
    trim(proto, p, sizeof p);
    if (strcasecmp(p, "tcp") == 0) {
        out->protocol = CPA_PROBE_TCP;
    } else if (strcasecmp(p, "https") == 0) {
        /* HTTPS probes exist on the Standard SKU only; Basic falls back to TCP. */
        out->protocol = opts->basic_sku ? CPA_PROBE_TCP : CPA_PROBE_HTTPS;
        if (opts->basic_sku)
            snprintf(psrc + strlen(psrc), sizeof psrc - strlen(psrc),
                     ", but a Basic LB has no HTTPS probe: TCP");
    } else if (strcasecmp(p, "http") == 0) {
        out->protocol = CPA_PROBE_HTTP;
    } else {
        /* "For backward compatibility, when unsupported protocol is used, fall back to
         * tcp protocol" (e.g. appProtocol kubernetes.io/h2c, grpc). */
        out->protocol = CPA_PROBE_TCP;
        snprintf(psrc + strlen(psrc), sizeof psrc - strlen(psrc),
                 ", not a probe protocol: TCP");
    }

    /* Request path for HTTP(S). */
    char pathsrc[200] = "";
    if (out->protocol == CPA_PROBE_HTTP || out->protocol == CPA_PROBE_HTTPS) {
        char rkey[160];
        const char *path = probe_ann(svc, port, "request-path", rkey, sizeof rkey);
        if (path) {
            snprintf(pathsrc, sizeof pathsrc, "path from %s", rkey);
        } else if (gpath) {
            path = gpath;
            snprintf(pathsrc, sizeof pathsrc, "path from %s", ANN_GLOBAL_PATH);
        } else {
            path = CPA_PROBE_PATH_DEFAULT;
            snprintf(pathsrc, sizeof pathsrc, "default request path");
        }
        snprintf(out->path, sizeof out->path, "%s", path);
    }
    if (interval_and_num(svc, port, out, &isrc, &nsrc))
        return LB_EINVAL;
    const char *pre = svc->etp == K8S_ETP_LOCAL ?
        "externalTrafficPolicy Local, but the port names its own probe port: " :
        "externalTrafficPolicy Cluster: ";
    if (out->protocol == CPA_PROBE_TCP)
        set_why(out, "%s%sTCP probe of port %d on %s; protocol from %s; "
                 "interval %d s (%s), threshold %d (%s) [buildHealthProbeRulesForPort]",
                 ignored, pre, port, how, psrc, out->interval_s, isrc,
                 out->threshold, nsrc);
    else
        set_why(out, "%s%s%s probe of port %d on %s path %s (%s; only "
                 "200 passes); protocol from %s; interval %d s (%s), threshold %d (%s) "
                 "[buildHealthProbeRulesForPort]", ignored, pre,
                 out->protocol == CPA_PROBE_HTTP ? "HTTP" : "HTTPS", port, how, out->path,
                 pathsrc, psrc, out->interval_s, isrc, out->threshold, nsrc);
    return 0;
}
