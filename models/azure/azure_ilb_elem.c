/* azure_ilb_elem.c -- the "azure-internal-lb" element: the internal Standard Load Balancer
 * that cloud-provider-azure builds for a LoadBalancer Service of the cluster
 * (service.beta.kubernetes.io/azure-load-balancer-internal): one rule per service port
 * with floating IP on (cloud-provider-azure's default, azure_loadbalancer.go
 * EnableFloatingIP), the probe cloud_provider_azure.h chooses for the port, every node of
 * the cluster in the backend pool, and the frontend IP written into the Service's status so
 * that kube-proxy captures it. */
#include <stdio.h>
#include <string.h>
#include "azure_lb.h"
#include "cluster.h"
#include "element.h"
#include "explain.h"

/* Private IP of the frontend when neither the Service (spec.loadBalancerIP) nor the
 * element asks for one: cloud-provider-azure creates the frontend IP configuration with
 * dynamic allocation in the node subnet (unless azure-load-balancer-internal-subnet names
 * another), and Azure gives it "the next available unassigned or unreserved IP address in
 * the subnet's address range" (learn.microsoft.com/azure/virtual-network/ip-services/
 * private-ip-addresses): the first address the nodes left free (net_fabric_alloc). */
#define ILB_FRONTEND_DYNAMIC "0.0.0.0"

static const elem_param_t ilb_params[] = {
    {"type", P_STR, NULL, "azure-internal-lb", NULL, NULL},
    {"cluster", P_STR, NULL, "the k8s-cluster element whose Service this LB fronts", NULL, NULL},
    {"service", P_STR, NULL, "namespace/name of the LoadBalancer Service", NULL, NULL},
    {"frontend-ip", P_ADDR, ILB_FRONTEND_DYNAMIC, "frontend private IP when the Service sets "
     "no loadBalancerIP; 0.0.0.0: dynamic, the first free address of the node subnet (as "
     "Azure allocates it)", NULL, NULL},
    {"cloud-provider-azure-version", P_STR, "", "the cloud-provider-azure release that builds "
     "the LB, e.g. v1.24.11: which probe annotations it honours (empty: the newest patch of "
     "the cluster's Kubernetes minor, as AKS runs it)", NULL, NULL},
    {"fail-open", P_BOOL, "false", "noHealthyBackendsBehavior AllProbedUp: with no healthy "
     "backend send new flows to all (default: drop them)", NULL, NULL},
    {"probe-fail-fast", P_BOOL, "false", "a non-200 or RST marks a backend down at once "
     "(older Azure documentation)", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

typedef struct ilb_elem {
    azure_lb_t *lb;
    uint32_t frontend;
    explain_t *ex;
    uint64_t last_note;              /* the last health event's note (cause of what follows) */
} ilb_elem_t;

static void ilb_free_cb(void *obj)
{
    ilb_elem_t *e = obj;
    azure_lb_free(e->lb);
    lb_free(e);
}

static void ilb_event(azure_lb_t *lb, const azure_lb_event_t *ev, void *data)
{
    ilb_elem_t *e = data;
    if (!e->ex) return;
    const char *name = azure_lb_name(lb);
    const azure_lb_rule_t *r = azure_lb_rule(lb, ev->rule);
    const char *backend = azure_lb_backend_label(lb, ev->backend);
    char where[64], owner[128];
    snprintf(where, sizeof where, "%s", name);
    snprintf(owner, sizeof owner, "%s/%s", name, r->name);    /* drops name ELEMENT/RULE */
    switch (ev->kind) {
    case AZURE_LB_EV_BACKEND_DOWN:
    case AZURE_LB_EV_BACKEND_UP: {
        uint64_t probe = 0;
        bool tcp = r->probe.protocol == AZURE_PROBE_TCP;
        if (ev->probe)
            probe = explain_note(e->ex, where, 0, explain_flow_last(e->ex, ev->probe->flow),
                                 "probe %s%s from %s to %s port %u -> %s",
                                 tcp ? "TCP connect" : "HTTP GET ",
                                 tcp ? "" : (r->probe.path ? r->probe.path : "/"),
                                 AZURE_LB_PROBE_SRC, backend, r->probe.port, ev->probe->reason);
        e->last_note = explain_note(e->ex, where, 0, probe, "backend %s %s for rule %s "
                                    "(probe %s)", backend,
                                    ev->kind == AZURE_LB_EV_BACKEND_DOWN ? "DOWN" : "UP",
                                    r->name, r->probe.name ? r->probe.name : "-");
        if (azure_lb_rule_healthy_count(lb, ev->rule) == 0) {
            char why[512];
            azure_lb_rule_down_reason(lb, ev->rule, why, sizeof why);
            e->last_note = explain_note(e->ex, where, 0, e->last_note, "rule %s has no healthy "
                                        "backend: new flows are dropped (%s)", r->name, why);
            explain_set_state(e->ex, owner, e->last_note);
        } else {
            explain_set_state(e->ex, owner, 0);
        }
        break;
    }
    case AZURE_LB_EV_RULE_DOWN:        /* noted with the backend event above */
    case AZURE_LB_EV_RULE_UP:
        break;
    }
}

static int ilb_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    const elem_val_t *cv = elem_get(cfg, "cluster"), *sv = elem_get(cfg, "service");
    cluster_t *cl = build_get_ref(ctx, cv, "cluster", "azure-internal-lb", name);
    if (!cl) return LB_EINVAL;
    k8s_service_t *svc = cluster_service_ref(cl, sv->u.s);
    if (!svc)
        return build_error(ctx, sv->pos, "azure-internal-lb '%s': the cluster has no Service "
                           "%s (Services Istio generates for a Gateway are named "
                           "<gateway>-istio)", name, sv->u.s);
    if (svc->type != K8S_SVC_LOAD_BALANCER)
        return build_error(ctx, sv->pos, "azure-internal-lb '%s': Service %s is not of type "
                           "LoadBalancer, so cloud-provider-azure builds no load balancer "
                           "for it", name, sv->u.s);
    /* the frontend: the Service's address, the element's, or the first free one */
    net_fabric_t *fab = cluster_fabric(cl);
    const elem_val_t *fv = elem_get(cfg, "frontend-ip");
    uint32_t frontend = svc->lb_ip ? svc->lb_ip : fv->u.addr;
    char what[300];
    if (svc->lb_ip) {       /* spec.loadBalancerIP, or an LB built for it before this one */
        const char *h = net_fabric_holder(fab, frontend, 32, NULL, NULL);
        snprintf(what, sizeof what, "azure-internal-lb '%s': Service %s (%s:%d:%d) %s", name,
                 sv->u.s, svc->meta.pos.file, svc->meta.pos.line, svc->meta.pos.col,
                 h && build_get(ctx, h, "azure-lb") ? "has a load balancer already: its address"
                 : "loadBalancerIP");
        if (build_check_addr(ctx, sv->pos, what, fab, frontend, 32)) return LB_EINVAL;
    } else if (frontend) {
        snprintf(what, sizeof what, "azure-internal-lb '%s': frontend-ip", name);
        if (build_check_addr(ctx, fv->pos, what, fab, frontend, 32)) return LB_EINVAL;
    } else {
        uint32_t sub;
        int plen;
        cluster_node_subnet(cl, &sub, &plen);
        if (net_fabric_alloc(fab, sub, plen, &frontend)) {
            char a[16];
            return build_error(ctx, cfg->pos, "azure-internal-lb '%s': the node subnet %s/%d "
                               "has no free address left for the frontend", name,
                               lb_ip_str(sub, a), plen);
        }
    }
    /* the probe source: shared by every Azure LB in the vnet, nothing else may hold it */
    uint32_t probe_src;
    lb_ip_parse(AZURE_LB_PROBE_SRC, &probe_src);
    char probe_node[200];
    snprintf(probe_node, sizeof probe_node, AZURE_LB_PROBE_NODE_FMT, net_fabric_name(fab));
    const char *holder = net_fabric_holder(fab, probe_src, 32, NULL, NULL);
    if (holder && strcmp(holder, probe_node) != 0) {
        snprintf(what, sizeof what, "azure-internal-lb '%s': the probe source", name);
        build_check_addr(ctx, cfg->pos, what, fab, probe_src, 32);
        return LB_EINVAL;
    }
    ilb_elem_t *e = lb_calloc(1, sizeof *e);
    e->ex = build_explain(ctx);
    e->frontend = frontend;
    azure_lb_params_t ap;
    azure_lb_params_default(&ap);
    ap.fail_open = elem_bool(cfg, "fail-open");
    ap.probe_fail_fast = elem_bool(cfg, "probe-fail-fast");
    ap.metrics = build_metrics(ctx);
    int rc = 0;
    e->lb = azure_lb_new(build_net(ctx), fab, name, e->frontend, &ap, &rc);
    if (!e->lb) {
        lb_free(e);
        return build_error(ctx, cfg->pos, "azure-internal-lb '%s': %s", name, lb_strerror(rc));
    }
    build_on_free(ctx, ilb_free_cb, e);
    azure_lb_set_event_cb(e->lb, ilb_event, e);
    for (size_t i = 0; i < cluster_node_count(cl); i++) {
        cluster_node_t *n = cluster_node_at(cl, i);
        azure_lb_add_backend(e->lb, n->nic, n->node->name);
    }
    cpa_opts_t co;
    cpa_opts_init(&co);
    cpa_opts_set_version(&co, cluster_version(cl));
    const elem_val_t *ccm = elem_get(cfg, "cloud-provider-azure-version");
    if (ccm->u.s && *ccm->u.s && cpa_opts_set_ccm_version(&co, ccm->u.s))
        return build_error(ctx, ccm->pos, "cloud-provider-azure-version '%s': expected "
                           "v1.MINOR or v1.MINOR.PATCH, e.g. v1.24.11", ccm->u.s);
    for (size_t i = 0; i < svc->ports.n; i++) {
        cpa_probe_t cp;
        if (cpa_probe_for_port(svc, i, &co, &cp))
            return build_error(ctx, sv->pos, "azure-internal-lb '%s': port %d: %s", name,
                               svc->ports.v[i].port, cp.why);
        azure_lb_rule_t r;
        azure_lb_rule_init(&r, (uint16_t)svc->ports.v[i].port);
        r.name = svc->ports.v[i].name;
        if (azure_lb_probe_from_cpa(&cp, &r.probe) == LB_ENOENT) continue;
        uint64_t rn = explain_note(e->ex, name, 0, 0, "rule %s port %d: %s probe on node port "
                                   "%d%s%s every %ds, threshold %d -- %s", r.name ? r.name : "-",
                                   svc->ports.v[i].port, cpa_proto_str(cp.protocol), cp.port,
                                   cp.path[0] ? " path " : "", cp.path, cp.interval_s,
                                   cp.threshold, cp.why);
        /* until a backend passes a probe the rule has none healthy (a new backend must pass
         * once, load-balancer-custom-probe-overview.md) */
        char owner[128];
        snprintf(owner, sizeof owner, "%s/%s", name, r.name ? r.name : "-");
        if (cp.protocol != CPA_PROBE_NONE)
            explain_set_state(e->ex, owner, explain_note(e->ex, name, 0, rn, "rule %s: no "
                                                        "backend has passed a probe yet: new "
                                                        "flows are dropped", r.name ? r.name : "-"));
        if ((rc = azure_lb_add_rule(e->lb, &r)) < 0)
            return build_error(ctx, sv->pos, "azure-internal-lb '%s': port %d: %s", name,
                               svc->ports.v[i].port, lb_strerror(rc));
    }
    cluster_set_lb_ip(cl, svc, e->frontend);
    build_put_addrs(ctx, name, &e->frontend, 1);
    build_put(ctx, name, "azure-lb", e->lb);
    return 0;
}

static const elem_type_t ilb_type = {
    "azure-internal-lb", ELEM_CLOUD,
    "Azure internal Standard Load Balancer for a LoadBalancer Service, as "
    "cloud-provider-azure builds it (floating IP, probes per port)",
    ilb_params, ilb_build,
};

void azure_ilb_register(void) { elem_register(&ilb_type); }
