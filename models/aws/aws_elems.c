/* aws_elems.c -- the "aws-nlb" and "aws-alb" elements. aws-nlb is the NLB the AWS Load
 * Balancer Controller builds for a LoadBalancer Service of the cluster (annotations read by
 * aws_nlb_params_from_service; ip targets = the Service's pods, each in its node's zone);
 * aws-alb is an Application Load Balancer whose ip target group holds addresses, e.g. the
 * NLB's per-zone addresses (`targets: [nlb]`). Both publish their addresses. */
#include <stdio.h>
#include <string.h>
#include "aws_alb.h"
#include "aws_nlb.h"
#include "cluster.h"
#include "element.h"

/* ---- zones: "eu-west-1a=10.0.0.0/24" ---- */

typedef struct zones {
    char names[AWS_NLB_MAX_ZONES][64];
    uint32_t subnet[AWS_NLB_MAX_ZONES];
    int plen[AWS_NLB_MAX_ZONES];
    size_t n;
} zones_t;

static int parse_zones(build_ctx_t *ctx, const elem_val_t *v, zones_t *z)
{
    z->n = 0;
    for (size_t i = 0; i < v->u.strs.n; i++) {
        const char *s = v->u.strs.v[i], *eq = strchr(s, '=');
        if (!eq || eq == s || (size_t)(eq - s) >= sizeof z->names[0] ||
            lb_cidr_parse(eq + 1, &z->subnet[z->n], &z->plen[z->n]))
            return build_error(ctx, v->u.strs.pos[i], "zone '%s': expected ZONE=SUBNET, e.g. "
                               "eu-west-1a=10.0.0.0/24", s);
        if (z->n == AWS_NLB_MAX_ZONES)
            return build_error(ctx, v->u.strs.pos[i], "more than %d zones", AWS_NLB_MAX_ZONES);
        memcpy(z->names[z->n], s, (size_t)(eq - s));
        z->names[z->n][eq - s] = '\0';
        for (size_t k = 0; k < z->n; k++)
            if (strcmp(z->names[k], z->names[z->n]) == 0)
                return build_error(ctx, v->u.strs.pos[i], "zone '%s' is already given at "
                                   "%s:%d:%d; expected each zone once", z->names[k],
                                   v->u.strs.pos[k].file, v->u.strs.pos[k].line,
                                   v->u.strs.pos[k].col);
        z->subnet[z->n] &= lb_prefix_mask(z->plen[z->n]);
        z->n++;
    }
    return 0;
}

/* ---- aws-nlb ---- */

static const elem_param_t nlb_params[] = {
    {"type", P_STR, NULL, "aws-nlb", NULL, NULL},
    {"cluster", P_STR, NULL, "the k8s-cluster element whose Service this NLB fronts", NULL, NULL},
    {"service", P_STR, NULL, "namespace/name of the LoadBalancer Service", NULL, NULL},
    {"zones", P_STRLIST, NULL, "the NLB's subnets, one per zone: ZONE=SUBNET (a node per zone "
     "at the subnet's last usable address)", NULL, NULL},
    {"deregistration-lag", P_DURATION, "0s", "from the controller's DeregisterTargets call to "
     "the NLB routing no new flows to the target (not documented by AWS; users measured "
     "about 2 minutes, aws-load-balancer-controller#2366)", NULL, NULL},
    {"registration-lag", P_DURATION, "0s", "from the controller's RegisterTargets call (a pod "
     "created at run time turning Ready) to the NLB's first health check of the target, "
     "which is initial meanwhile (\"it may take a few minutes before health checking "
     "starts\": about 120 s measured in 2019, awsdocs/elb-network-load-balancers-user-guide#11; "
     "much faster since 2024, aws-load-balancer-controller#1834)", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static void nlb_free_cb(void *obj) { aws_nlb_free(obj); }

/* The AWS Load Balancer Controller's TargetGroupBinding reconciler
 * (pkg/targetgroupbinding/resource_manager.go): the ip targets are the Service's ready
 * endpoints, so a pod that terminates (its endpoint turns ready=false, terminating) or goes
 * is deregistered -- the NLB then routes it no new flows, after `lag`, and its flows live on
 * for the deregistration delay. A pod created at run time (a rolling update's) is
 * registered when it turns Ready (the controller registers ready endpoints; without the
 * pod readiness gate, elbv2.k8s.aws/pod-readiness-gate-inject, nothing holds the rollout
 * until the NLB has found it healthy): the new target is `initial` and gets no traffic
 * until the NLB's own checks pass it. Not modelled: deregistering a running pod that turns
 * unready and registering it again when Ready (targets stay registered; the NLB's own
 * checks judge them). */
typedef struct nlb_ctl {
    aws_nlb_t *nlb;
    const k8s_service_t *svc;
    const char *name;
    explain_t *ex;
    sim_time_t lag, reg_lag;
    size_t n;
    struct { cluster_pod_t *pod; int idx; bool gone; } t[256];
} nlb_ctl_t;

static void ctl_dereg_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    nlb_ctl_t *ctl = a;
    aws_nlb_target_deregister(ctl->nlb, (size_t)(uintptr_t)b);
}

/* A Ready pod of the Service that is no target yet: registered (RegisterTargets). */
static void ctl_register(nlb_ctl_t *ctl, cluster_t *c, cluster_pod_t *pod)
{
    if (pod->phase != CLUSTER_POD_RUNNING || !pod->ready || !pod->host->zone ||
        ctl->n >= sizeof ctl->t / sizeof ctl->t[0])
        return;
    cluster_pod_t *pods[256];
    size_t np = cluster_service_pods(c, ctl->svc, pods, 256), k = 0;
    while (k < np && k < 256 && pods[k] != pod) k++;
    if (k == np || k == 256) return;            /* not the Service's */
    int rc = aws_nlb_target_register(ctl->nlb, pod->ip, pod->host->zone, pod->name,
                                     ctl->reg_lag);
    if (rc < 0) {
        explain_note(ctl->ex, ctl->name, 0, 0, "controller: cannot register %s (zone %s): %s",
                     pod->name, pod->host->zone, lb_strerror(rc));
        return;
    }
    ctl->t[ctl->n].pod = pod;
    ctl->t[ctl->n++].idx = rc;
    explain_note(ctl->ex, ctl->name, 0, 0, "controller: pod %s Ready: registered as a target "
                 "in %s (initial; the NLB checks it after %.0f s)", pod->name,
                 pod->host->zone, (double)ctl->reg_lag / SIM_S);
}

static void ctl_pod_cb(cluster_t *c, cluster_pod_t *pod, void *data)
{
    nlb_ctl_t *ctl = data;
    bool out = pod->phase != CLUSTER_POD_RUNNING, known = false;
    for (size_t i = 0; i < ctl->n; i++) {
        if (ctl->t[i].pod != pod) continue;
        known = true;
        if (ctl->t[i].gone || !out) continue;
        ctl->t[i].gone = true;
        sim_schedule(net_sim(pod->node->net), ctl->lag, ctl_dereg_cb, ctl,
                     (void *)(uintptr_t)ctl->t[i].idx);
    }
    if (!known) ctl_register(ctl, c, pod);
}

static int nlb_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    const elem_val_t *cv = elem_get(cfg, "cluster"), *sv = elem_get(cfg, "service");
    cluster_t *cl = build_get_ref(ctx, cv, "cluster", "aws-nlb", name);
    if (!cl) return LB_EINVAL;
    k8s_service_t *svc = cluster_service_ref(cl, sv->u.s);
    if (!svc || svc->type != K8S_SVC_LOAD_BALANCER)
        return build_error(ctx, sv->pos, "aws-nlb '%s': the cluster has no LoadBalancer "
                           "Service %s", name, sv->u.s);
    aws_nlb_params_t p;
    aws_nlb_params_default(&p);
    char err[512];
    if (aws_nlb_params_from_service(svc, &p, err, sizeof err))
        return build_error(ctx, sv->pos, "aws-nlb '%s': Service %s: %s", name, sv->u.s, err);
    p.name = name;
    p.metrics = build_metrics(ctx);
    p.explain = build_explain(ctx);
    zones_t z;
    const elem_val_t *zl = elem_get(cfg, "zones");
    int rc = parse_zones(ctx, zl, &z);
    if (rc) return rc;
    net_fabric_t *fab = cluster_fabric(cl);
    aws_nlb_zone_t zv[AWS_NLB_MAX_ZONES];
    for (size_t i = 0; i < z.n; i++) {
        /* the node's address: the annotation's private IP, else the subnet's last usable
         * address (what aws_nlb_new falls back to), checked here to name both owners */
        uint32_t a = i < p.n_private_ips ? p.private_ips[i]
                   : z.plen[i] > 0 && z.plen[i] < 31 ? (z.subnet[i] | ~lb_prefix_mask(z.plen[i])) - 1
                   : 0;
        zv[i] = (aws_nlb_zone_t){z.names[i], a, z.subnet[i], z.plen[i]};
        char what[300], nn[200];
        snprintf(what, sizeof what, "aws-nlb '%s' zone %s: node address", name, z.names[i]);
        if (a && build_check_addr(ctx, zl->u.strs.pos[i], what, fab, a, 32)) return LB_EINVAL;
        snprintf(nn, sizeof nn, "%s-%s", name, z.names[i]);     /* aws_nlb.h's node name */
        snprintf(what, sizeof what, "aws-nlb '%s' zone %s", name, z.names[i]);
        if (build_check_name(ctx, zl->u.strs.pos[i], what, nn)) return LB_EINVAL;
    }
    aws_nlb_t *nlb = aws_nlb_new(build_net(ctx), fab, &p, zv, z.n, err, sizeof err);
    if (!nlb) return build_error(ctx, cfg->pos, "aws-nlb '%s': %s", name, err);
    build_on_free(ctx, nlb_free_cb, nlb);
    /* the AWS Load Balancer Controller registers the Service's pods as ip targets */
    cluster_pod_t *pods[256];
    size_t np = cluster_service_pods(cl, svc, pods, 256);
    nlb_ctl_t *ctl = lb_calloc(1, sizeof *ctl);
    build_on_free(ctx, lb_free, ctl);
    ctl->nlb = nlb;
    ctl->svc = svc;
    ctl->name = name;
    ctl->ex = build_explain(ctx);
    ctl->lag = elem_get(cfg, "deregistration-lag")->u.i;
    ctl->reg_lag = elem_get(cfg, "registration-lag")->u.i;
    if (ctl->reg_lag < 0)
        return build_error(ctx, elem_get(cfg, "registration-lag")->pos, "aws-nlb '%s': "
                           "registration-lag must be >= 0", name);
    if (ctl->lag < 0)
        return build_error(ctx, elem_get(cfg, "deregistration-lag")->pos, "aws-nlb '%s': "
                           "deregistration-lag must be >= 0", name);
    for (size_t i = 0; i < np && i < 256; i++) {
        const char *zone = pods[i]->host->zone;
        if (!zone)
            return build_error(ctx, cv->pos, "aws-nlb '%s': pod %s runs on node %s, which has "
                               "no zone (give the cluster's pools zones)", name, pods[i]->name,
                               pods[i]->host->node->name);
        rc = aws_nlb_target_add(nlb, pods[i]->ip, zone, pods[i]->name);
        if (rc < 0)
            return build_error(ctx, cv->pos, "aws-nlb '%s': target %s (zone %s): %s", name,
                               pods[i]->name, zone, lb_strerror(rc));
        ctl->t[ctl->n].pod = pods[i];
        ctl->t[ctl->n++].idx = rc;
    }
    cluster_watch_pods(cl, ctl_pod_cb, ctl);
    uint32_t addrs[AWS_NLB_MAX_ZONES];
    for (size_t i = 0; i < aws_nlb_zone_count(nlb); i++) addrs[i] = aws_nlb_zone_addr(nlb, i);
    build_put_addrs(ctx, name, addrs, aws_nlb_zone_count(nlb));
    build_put(ctx, name, "aws-nlb", nlb);
    return 0;
}

/* ---- aws-alb ---- */

static const char *const http_actions[] = {"forward", "redirect", "none", NULL};
static const char *const target_protos[] = {"http", "https", NULL};

static const elem_param_t hc_params[] = {
    {"path", P_STR, AWS_ALB_HC_PATH_DEFAULT, "health check path", NULL, NULL},
    {"port", P_INT, "0", "health check port (0: traffic-port)", NULL, NULL},
    {"matcher", P_STR, AWS_ALB_HC_MATCHER_DEFAULT, "success codes, e.g. 200 or 200-399", NULL, NULL},
    {"interval", P_DURATION, "30s", "between checks (5-300 s)", NULL, NULL},
    {"timeout", P_DURATION, "5s", "check timeout", NULL, NULL},
    {"healthy-threshold", P_INT, "5", "consecutive passes to become healthy", NULL, NULL},
    {"unhealthy-threshold", P_INT, "2", "consecutive failures to become unhealthy", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static const elem_param_t alb_params[] = {
    {"type", P_STR, NULL, "aws-alb", NULL, NULL},
    {"vnet", P_STR, NULL, "the vnet (VPC) element", NULL, NULL},
    {"zones", P_STRLIST, NULL, "the ALB's subnets: ZONE=SUBNET (a node per zone)", NULL, NULL},
    {"frontend-ip", P_ADDR, "52.16.0.10", "address clients use (stands in for the DNS name)", NULL, NULL},
    {"http", P_ENUM, "forward", "HTTP :80 listener: forward to the target group, redirect to "
     "HTTPS, or none", NULL, http_actions},
    {"https-port", P_INT, "443", "HTTPS listener port (TLS not modelled), 0: none", NULL, NULL},
    {"targets", P_STRLIST, NULL, "ip target group: addresses or elements with addresses "
     "(e.g. [nlb])", NULL, NULL},
    {"target-port", P_INT, "80", "target port", NULL, NULL},
    {"target-protocol", P_ENUM, "http", "target group protocol: https re-encrypts to the "
     "targets (and health-checks over TLS) without SNI and without checking their "
     "certificate", NULL, target_protos},
    {"health-check", P_OBJ, "", "target group health check (AWS defaults)", hc_params, NULL},
    {"idle-timeout", P_DURATION, "60s", "connection idle timeout", NULL, NULL},
    {"warm-start", P_BOOL, "true", "targets were healthy before t=0; false: each must pass a "
     "check first", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static void alb_free_cb(void *obj) { aws_alb_free(obj); }

static int alb_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    const elem_val_t *vnet = elem_get(cfg, "vnet");
    net_fabric_t *fab = build_get_ref(ctx, vnet, "fabric", "aws-alb", name);
    if (!fab) return LB_EINVAL;
    aws_alb_params_t p;
    aws_alb_params_default(&p);
    p.name = name;
    p.frontend = elem_get(cfg, "frontend-ip")->u.addr;
    const char *http = elem_str(cfg, "http");
    p.http_action = !strcmp(http, "redirect") ? AWS_ALB_HTTP_REDIRECT
                  : !strcmp(http, "none") ? AWS_ALB_HTTP_NONE : AWS_ALB_HTTP_FORWARD;
    if (p.http_action == AWS_ALB_HTTP_NONE) p.http_port = 0;
    p.https_port = (uint16_t)elem_int(cfg, "https-port");
    p.target_port = (uint16_t)elem_int(cfg, "target-port");
    p.target_https = !strcmp(elem_str(cfg, "target-protocol"), "https");
    p.idle_timeout = elem_get(cfg, "idle-timeout")->u.i;
    p.warm_start = elem_bool(cfg, "warm-start");
    const elem_val_t *tv = elem_get(cfg, "targets");
    uint32_t targets[64];
    size_t nt = 0;
    for (size_t i = 0; i < tv->u.strs.n; i++) {
        size_t k = build_addrs(ctx, tv->u.strs.v[i], targets + nt, 64 - nt);
        if (!k)
            return build_error(ctx, tv->u.strs.pos[i], "target '%s': neither an IPv4 address "
                               "nor an element with addresses defined before this ALB",
                               tv->u.strs.v[i]);
        nt += k < 64 - nt ? k : 64 - nt;
    }
    p.targets = targets;
    p.n_targets = nt;
    const elem_val_t *hv = elem_get(cfg, "health-check");
    if (hv->set && hv->u.objs.n) {
        const elem_cfg_t *h = hv->u.objs.v[0];
        p.hc_path = elem_str(h, "path");
        p.hc_port = (uint16_t)elem_int(h, "port");
        p.hc_matcher = elem_str(h, "matcher");
        p.hc_interval_s = (int)(elem_get(h, "interval")->u.i / SIM_S);
        p.hc_timeout_s = (int)(elem_get(h, "timeout")->u.i / SIM_S);
        p.hc_healthy = (int)elem_int(h, "healthy-threshold");
        p.hc_unhealthy = (int)elem_int(h, "unhealthy-threshold");
    }
    p.metrics = build_metrics(ctx);
    p.explain = build_explain(ctx);
    zones_t z;
    const elem_val_t *zl = elem_get(cfg, "zones");
    int rc = parse_zones(ctx, zl, &z);
    if (rc) return rc;
    char what[300];
    if (p.frontend) {
        snprintf(what, sizeof what, "aws-alb '%s': frontend-ip", name);
        if (build_check_addr(ctx, elem_get(cfg, "frontend-ip")->pos, what, fab, p.frontend, 32))
            return LB_EINVAL;
    }
    aws_alb_zone_t zv[AWS_ALB_MAX_ZONES];
    for (size_t i = 0; i < z.n && i < AWS_ALB_MAX_ZONES; i++) {
        /* an ALB node's address is dynamic: the first free one of the zone's subnet */
        uint32_t a;
        char nn[200], s[16];
        if (net_fabric_alloc(fab, z.subnet[i], z.plen[i], &a))
            return build_error(ctx, zl->u.strs.pos[i], "aws-alb '%s' zone %s: subnet %s/%d has "
                               "no free address (AWS reserves the first four and the last; "
                               "expected /28 or larger)", name, z.names[i],
                               lb_ip_str(z.subnet[i], s), z.plen[i]);
        zv[i] = (aws_alb_zone_t){z.names[i], a, z.plen[i]};
        snprintf(nn, sizeof nn, "%s-%s", name, z.names[i]);     /* aws_alb.h's node name */
        snprintf(what, sizeof what, "aws-alb '%s' zone %s", name, z.names[i]);
        if (build_check_name(ctx, zl->u.strs.pos[i], what, nn)) return LB_EINVAL;
    }
    char err[512];
    aws_alb_t *alb = aws_alb_new(build_net(ctx), fab, &p, zv, z.n, err, sizeof err);
    if (!alb) return build_error(ctx, cfg->pos, "aws-alb '%s': %s", name, err);
    build_on_free(ctx, alb_free_cb, alb);
    build_put_addrs(ctx, name, &p.frontend, 1);
    build_put(ctx, name, "aws-alb", alb);
    return 0;
}

static const elem_type_t nlb_type = {
    "aws-nlb", ELEM_CLOUD,
    "AWS Network Load Balancer for a LoadBalancer Service, as the AWS Load Balancer "
    "Controller builds it from the annotations (ip targets = the Service's pods)",
    nlb_params, nlb_build,
};

static const elem_type_t alb_type = {
    "aws-alb", ELEM_CLOUD,
    "AWS Application Load Balancer with an ip target group (e.g. the NLB's addresses)",
    alb_params, alb_build,
};

void aws_register(void)
{
    elem_register(&nlb_type);
    elem_register(&alb_type);
}
