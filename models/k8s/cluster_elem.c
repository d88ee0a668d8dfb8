/* cluster_elem.c -- the "k8s-cluster" element: node pools in a vnet, and the scenario's
 * kubernetes manifests deployed on them (include/cluster.h does the work). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cluster.h"
#include "tls.h"
#include "element.h"
#include "explain.h"
#include "tcp.h"

static const char *const providers[] = {"aks", "eks", NULL};

/* Node images and the kernel series each ships (its TCP and conntrack defaults come from
 * tcp_params_kernel). Sources: AKS "Upgrade the OS version" and node-image release notes
 * (Ubuntu 22.04: linux-azure 5.15, the default for Kubernetes 1.25-1.34; Ubuntu 24.04:
 * 6.8, the default from 1.35; Azure Linux 2.0: 5.15; Azure Linux 3.0: 6.6), the EKS AMI
 * changelog awslabs/amazon-eks-ami CHANGELOG.md (Amazon Linux 2: 5.10; AL2023: 6.1, with
 * 6.12 AMIs from 2025), Bottlerocket's aws-k8s variants (6.1 up to Kubernetes 1.32). A
 * newer image than listed: give the kernel with `kernel`. */
static const struct { const char *image, *kernel; } node_images[] = {
    {"ubuntu-22.04", "5.15"}, {"ubuntu-24.04", "6.8"}, {"azurelinux-2", "5.15"},
    {"azurelinux-3", "6.6"}, {"al2", "5.10"}, {"al2023", "6.1"}, {"al2023-6.12", "6.12"},
    {"bottlerocket", "6.1"},
};
static const char *const node_image_names[] = {"", "ubuntu-22.04", "ubuntu-24.04",
    "azurelinux-2", "azurelinux-3", "al2", "al2023", "al2023-6.12", "bottlerocket", NULL};

/* The kernel version of a node image (NULL when unknown). */
static const char *image_kernel(const char *image)
{
    for (size_t i = 0; i < sizeof node_images / sizeof node_images[0]; i++)
        if (!strcmp(node_images[i].image, image)) return node_images[i].kernel;
    return NULL;
}

static const elem_param_t pool_params[] = {
    {"name", P_STR, NULL, "pool name (the agentpool label), e.g. system, user", NULL, NULL},
    {"count", P_INT, "1", "nodes in the pool", NULL, NULL},
    {"labels", P_STRLIST, "[]", "extra node labels, \"key=value\"", NULL, NULL},
    {"taints", P_STRLIST, "[]", "node taints, \"key=value:NoSchedule\" (AKS system pools with "
     "only_critical_addons_enabled: CriticalAddonsOnly=true:NoSchedule)", NULL, NULL},
    {"zones", P_STRLIST, "[]", "availability zones the nodes are spread over (label "
     "topology.kubernetes.io/zone), e.g. [eu-west-1a, eu-west-1b]", NULL, NULL},
    {"max-pods", P_INT, "", "pods per node (kubelet maxPods; default: AKS 250, Azure CNI "
     "Overlay's default and maximum; elsewhere kubelet's 110); a full node takes no more",
     NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static const elem_param_t fault_params[] = {
    {"at", P_DURATION, NULL, "when the container is killed", NULL, NULL},
    {"pod", P_STR, NULL, "pod name, e.g. mtkc-gateway-istio-0 (see --trace-flow or the "
     "explanations for names)", NULL, NULL},
    {"down-for", P_DURATION, "30s", "until kubelet has restarted it (0: stays down)", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static const elem_param_t deletion_params[] = {
    {"at", P_DURATION, NULL, "when the pod is deleted (kubectl delete, a drain's eviction, a "
     "rollout's scale-down)", NULL, NULL},
    {"pod", P_STR, NULL, "pod name, e.g. mtkc-gateway-istio-0", NULL, NULL},
    {"pre-stop", P_DURATION, "0s", "preStop hook sleep before SIGTERM (0: none)", NULL, NULL},
    {"grace-period", P_DURATION, "30s", "terminationGracePeriodSeconds: SIGKILL after this",
     NULL, NULL},
    {"drain", P_DURATION, "5s", "Istio gateway pods: terminationDrainDuration, how long "
     "Envoy drains after SIGTERM", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* A Deployment's rolling update (kubectl rollout restart, a new image): RollingUpdate
 * strategy defaults 25% / 25% (apps/v1 DeploymentStrategy); the old pods terminate as a
 * deletion does. */
#define ROLLOUT_POD_START_DEFAULT "5s"  /* an assumption: image cached, Envoy's first xDS */
static const elem_param_t rollout_params[] = {
    {"at", P_DURATION, NULL, "when the Deployment's pod template changes", NULL, NULL},
    {"deployment", P_STR, NULL, "namespace/name, e.g. istio-ingress/mtkc-gateway-istio (the "
     "Deployment Istio generates for Gateway mtkc-gateway)", NULL, NULL},
    {"max-surge", P_STR, "25%", "maxSurge: pods above replicas, a number or a percentage "
     "(rounded up)", NULL, NULL},
    {"max-unavailable", P_STR, "25%", "maxUnavailable: a number or a percentage (rounded "
     "down)", NULL, NULL},
    {"pod-start", P_DURATION, ROLLOUT_POD_START_DEFAULT, "from a new pod's scheduling to its "
     "containers running (image pull, Envoy's first configuration); Ready when kubelet's "
     "readiness probe passes after that", NULL, NULL},
    {"pre-stop", P_DURATION, "0s", "old pods: preStop hook sleep before SIGTERM", NULL, NULL},
    {"grace-period", P_DURATION, "30s", "old pods: terminationGracePeriodSeconds", NULL, NULL},
    {"drain", P_DURATION, "5s", "old Istio gateway pods: terminationDrainDuration", NULL,
     NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* Socket options an EnvoyFilter puts on the gateway's listeners (istio/istio#28879,
 * #52143): SO_KEEPALIVE with TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT; absent fields take
 * the pod's own net.ipv4.tcp_keepalive_* (7200 s / 75 s / 9 unless gateway-sysctls). */
static const elem_param_t keepalive_params[] = {
    {"time", P_DURATION, "0s", "TCP_KEEPIDLE: idle before the first probe (0: the sysctl, "
     "7200 s)", NULL, NULL},
    {"interval", P_DURATION, "0s", "TCP_KEEPINTVL: between probes (0: the sysctl, 75 s)",
     NULL, NULL},
    {"probes", P_INT, "0", "TCP_KEEPCNT: unanswered probes before the reset (0: the sysctl, "
     "9)", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* The keepalive sysctls of a network namespace (net.ipv4.tcp_keepalive_*; whole seconds,
 * probes a u8). Per netns since Linux 4.5 (commits 13b287e8d1cb, 9bd6861bd432, b840d15d3988),
 * and a new netns starts from the kernel's defaults: a node's values reach host-network
 * processes only; a pod changes its own through securityContext.sysctls, "safe" sysctls
 * since Kubernetes 1.29 (kubernetes/kubernetes#118846, pkg/kubelet/sysctl/safe_sysctls.go);
 * before, kubelet refuses the pod (SysctlForbidden) unless --allowed-unsafe-sysctls. */
#define KA_SYSCTL_MAX_S 2147483         /* INT_MAX jiffies at HZ 1000 */
#define KA_SYSCTL_MAX_PROBES 255        /* proc_dou8vec_minmax */
#define SAFE_KEEPALIVE_SYSCTLS_SINCE_MINOR 29   /* Kubernetes 1.29 */
static const elem_param_t sysctl_params[] = {
    {"keepalive-time", P_DURATION, "", "net.ipv4.tcp_keepalive_time (kernel default 7200 s)",
     NULL, NULL},
    {"keepalive-intvl", P_DURATION, "", "net.ipv4.tcp_keepalive_intvl (75 s)", NULL, NULL},
    {"keepalive-probes", P_INT, "", "net.ipv4.tcp_keepalive_probes (9)", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};
/* The nodes' own: the keepalive sysctls and the ICMP rate-limit ones (per netns: a pod
 * keeps the kernel's defaults; not safe sysctls, so not among gateway-sysctls). */
static const elem_param_t node_sysctl_params[] = {
    {"keepalive-time", P_DURATION, "", "net.ipv4.tcp_keepalive_time (kernel default 7200 s)",
     NULL, NULL},
    {"keepalive-intvl", P_DURATION, "", "net.ipv4.tcp_keepalive_intvl (75 s)", NULL, NULL},
    {"keepalive-probes", P_INT, "", "net.ipv4.tcp_keepalive_probes (9)", NULL, NULL},
    {"icmp", P_OBJ, "", "ICMP error rate-limit sysctls: ratelimit, ratemask, msgs-per-sec, "
     "msgs-burst (as a host's icmp)", elem_icmp_params, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* A synthetic workload for production-sized clusters (cluster.h scale_*). */
static const elem_param_t scale_params[] = {
    {"services", P_INT, "0", "ClusterIP Services to generate, each with its own Deployment",
     NULL, NULL},
    {"replicas", P_INT, "5", "pods per generated Service (pause containers, ready)", NULL, NULL},
    {"namespace", P_STR, "scale", "their namespace", NULL, NULL},
    {"name-prefix", P_STR, "svc", "their names: PREFIX-0, PREFIX-1, ...", NULL, NULL},
    {"port", P_INT, "80", "the Services' port (and targetPort)", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static const char *const kp_modes[] = {"iptables", "nftables", NULL};

static const elem_param_t cluster_params[] = {
    {"type", P_STR, NULL, "k8s-cluster", NULL, NULL},
    {"vnet", P_STR, NULL, "the vnet element the nodes' NICs are in", NULL, NULL},
    {"provider", P_ENUM, "aks", "aks or eks (names, defaults)", NULL, providers},
    {"kubernetes-version", P_STR, "1.29", "decides version-dependent behaviour (e.g. "
     "cloud-provider-azure's HTTP probes for appProtocol http from 1.24)", NULL, NULL},
    {"pools", P_OBJLIST, NULL, "node pools", pool_params, NULL},
    {"node-subnet", P_CIDR, CLUSTER_NODE_SUBNET_DEFAULT, "node addresses (AKS default): each "
     "node takes the first free one, after the four the cloud reserves", NULL, NULL},
    {"pod-cidr", P_CIDR, CLUSTER_POD_CIDR_DEFAULT, "pod addresses, a /24 per node (Azure CNI Overlay)", NULL, NULL},
    {"service-cidr", P_CIDR, CLUSTER_SERVICE_CIDR_DEFAULT, "ClusterIP range", NULL, NULL},
    {"gateway-replicas", P_INT, "0", "replicas of each Istio gateway Deployment (0: Istio's "
     "default, 1)", NULL, NULL},
    {"gateway-node-selector", P_STR, "", "nodeSelector for the Istio gateway pods, "
     "\"key=value\" (e.g. agentpool=system)", NULL, NULL},
    {"gateway-tolerations", P_STRLIST, "[]", "tolerations for the Istio gateway pods, "
     "\"key=value:Effect\" or \"key:Exists\"", NULL, NULL},
    {"gateway-idle-timeout", P_DURATION, "0s", "Envoy's HTTP idle timeout in the gateway pods, "
     "downstream and upstream (0: Istio's default, 1h)", NULL, NULL},
    {"gateway-tcp-keepalive", P_OBJ, "", "TCP keepalive on the gateway's downstream "
     "connections, as an EnvoyFilter setting the listeners' socket_options does: { time, "
     "interval, probes } (absent: off, Envoy's default)", keepalive_params, NULL},
    {"scale", P_OBJ, "", "a synthetic workload for production-sized clusters: { services, "
     "replicas, namespace, name-prefix, port } -- that many ClusterIP Services with a "
     "Deployment of pause pods each, so kube-proxy writes the rules a large cluster has "
     "(absent: none)", scale_params, NULL},
    {"faults", P_OBJLIST, "[]", "container kills: { at, pod, down-for }", fault_params, NULL},
    {"deletions", P_OBJLIST, "[]", "pod deletions: { at, pod, pre-stop, grace-period, drain } "
     "-- terminating endpoints, preStop, SIGTERM, Envoy's drain, SIGKILL", deletion_params,
     NULL},
    {"rollouts", P_OBJLIST, "[]", "rolling updates: { at, deployment, max-surge, "
     "max-unavailable, pod-start, pre-stop, grace-period, drain } -- new pods scheduled, "
     "started and Ready by their readiness probe, old pods terminated as the Deployment "
     "controller allows", rollout_params, NULL},
    {"node-image", P_ENUM, "", "the nodes' OS image, which decides their kernel's TCP "
     "defaults (SYN schedule): ubuntu-22.04 (5.15), ubuntu-24.04 (6.8), azurelinux-2 (5.15), "
     "azurelinux-3 (6.6), al2 (5.10), al2023 (6.1), al2023-6.12, bottlerocket (6.1); "
     "default: aks ubuntu-22.04, eks al2023", NULL, node_image_names},
    {"kernel", P_STR, "", "the nodes' Linux version, like \"6.6\" (overrides node-image)",
     NULL, NULL},
    {"node-sysctls", P_OBJ, "", "the nodes' own (host network namespace) sysctls: "
     "{ keepalive-time, keepalive-intvl, keepalive-probes, icmp: { ratelimit, ratemask, "
     "msgs-per-sec, msgs-burst } }; pods do not see them", node_sysctl_params, NULL},
    {"gateway-sysctls", P_OBJ, "", "the Istio gateway pods' securityContext.sysctls: "
     "{ keepalive-time, keepalive-intvl, keepalive-probes } in the pods' own netns (safe "
     "sysctls from Kubernetes 1.29)", sysctl_params, NULL},
    {"kube-proxy-mode", P_ENUM, "iptables", "kube-proxy's mode: iptables or nftables "
     "(Kubernetes 1.29 and later; alpha before 1.31, behind the NFTablesProxyMode feature "
     "gate)", NULL, kp_modes},
    {"kube-proxy-conntrack-established", P_DURATION, "", "kube-proxy's "
     "conntrack.tcpEstablishedTimeout (--conntrack-tcp-timeout-established), the "
     "nf_conntrack_tcp_timeout_established it writes on every node (default 24h; 0s: "
     "leaves the kernel's 5 days)", NULL, NULL},
    {"warm-start", P_BOOL, "true", "pods have been running before t=0 (Ready, kubelet probing "
     "on its period); false: they start at t=0, unready until their first probe passes",
     NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

/* "key=value:Effect" or "key:Effect" (value empty). */
static int parse_taint(char *s, cluster_taint_t *t)
{
    char *colon = strrchr(s, ':');
    if (!colon || !colon[1]) return LB_EPARSE;
    *colon = '\0';
    const char *effect = colon + 1;
    if (strcmp(effect, "NoSchedule") && strcmp(effect, "NoExecute") &&
        strcmp(effect, "PreferNoSchedule"))
        return LB_EPARSE;
    char *eq = strchr(s, '=');
    if (eq) *eq = '\0';
    t->key = s;
    t->value = eq ? eq + 1 : "";
    t->effect = effect;
    return *s ? 0 : LB_EPARSE;
}

static void cluster_free_cb(void *obj) { cluster_free(obj); }

/* The keepalive keys of `key` (node-sysctls or gateway-sysctls) onto *p; 0, or a
 * build error at the bad value. */
static int apply_sysctls(build_ctx_t *ctx, const elem_cfg_t *cfg, const char *key,
                         tcp_params_t *p)
{
    const elem_val_t *o = elem_get(cfg, key);
    if (!o->set || !o->u.objs.n) return 0;
    const elem_cfg_t *s = o->u.objs.v[0];
    const char *const secs[] = {"keepalive-time", "keepalive-intvl"};
    sim_time_t *field[] = {&p->keepalive_time, &p->keepalive_intvl};
    for (int i = 0; i < 2; i++) {
        const elem_val_t *v = elem_get(s, secs[i]);
        if (!v->set) continue;
        if (v->u.i < SIM_S || v->u.i > (sim_time_t)KA_SYSCTL_MAX_S * SIM_S || v->u.i % SIM_S)
            return build_error(ctx, v->pos, "%s %s: expected whole seconds from 1s to %ds "
                               "(the sysctl is in seconds)", key, secs[i], KA_SYSCTL_MAX_S);
        *field[i] = v->u.i;
    }
    const elem_val_t *v = elem_get(s, "keepalive-probes");
    if (v->set) {
        if (v->u.i < 0 || v->u.i > KA_SYSCTL_MAX_PROBES)
            return build_error(ctx, v->pos, "%s keepalive-probes: expected 0 to %d", key,
                               KA_SYSCTL_MAX_PROBES);
        p->keepalive_probes = (int)v->u.i;
    }
    return 0;
}

typedef struct fault {
    cluster_t *c;
    cluster_pod_t *pod;
    sim_time_t down_for;
    bool del;                       /* a deletion (opts), not a kill */
    cluster_delete_opts_t opts;
} fault_t;

typedef struct rollout_ev {
    cluster_t *c;
    char ns[128], name[256];
    cluster_rollout_opts_t o;
} rollout_ev_t;

static void rollout_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    (void)b;
    rollout_ev_t *r = a;
    cluster_rollout(r->c, r->ns, r->name, &r->o);   /* checked when built */
}

/* maxSurge / maxUnavailable (intstr): "N" or "P%" of replicas, rounded up for the surge
 * and down for unavailability (deployment/util ResolveFenceposts); -1 when malformed. */
static int resolve_fencepost(const char *s, int replicas, bool up)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || v < 0 || v > 1000000) return -1;
    if (!*end) return (int)v;
    if (strcmp(end, "%") || v > 100) return -1;
    return (int)(up ? (v * replicas + 99) / 100 : v * replicas / 100);
}

static void fault_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    (void)b;
    fault_t *f = a;
    if (f->del) cluster_pod_delete(f->c, f->pod, &f->opts);
    else cluster_pod_crash(f->c, f->pod, f->down_for);
}

static int cluster_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    const k8s_objects_t *objs = build_k8s(ctx);
    if (!objs)
        return build_error(ctx, cfg->pos, "k8s-cluster '%s': the scenario has no kubernetes "
                           "section to deploy (manifests inline or { file: ... })", name);
    const elem_val_t *vnet = elem_get(cfg, "vnet");
    net_fabric_t *fab = build_get_ref(ctx, vnet, "fabric", "k8s-cluster", name);
    if (!fab) return LB_EINVAL;
    cluster_params_t p;
    cluster_params_default(&p);
    p.name = name;
    p.provider = elem_str(cfg, "provider");
    p.version = elem_str(cfg, "kubernetes-version");
    const elem_val_t *ns = elem_get(cfg, "node-subnet"), *pc = elem_get(cfg, "pod-cidr"),
                     *sc = elem_get(cfg, "service-cidr");
    p.node_subnet = ns->u.cidr.addr & lb_prefix_mask(ns->u.cidr.plen);
    p.node_plen = ns->u.cidr.plen;
    p.pod_cidr = pc->u.cidr.addr & lb_prefix_mask(pc->u.cidr.plen);
    p.pod_plen = pc->u.cidr.plen;
    p.service_cidr = sc->u.cidr.addr & lb_prefix_mask(sc->u.cidr.plen);
    p.service_plen = sc->u.cidr.plen;
    p.warn = NULL;
    p.gateway_replicas = (int)elem_int(cfg, "gateway-replicas");
    const char *gsel = elem_str(cfg, "gateway-node-selector");
    p.gateway_node_selector = gsel && *gsel ? gsel : NULL;
    if (p.gateway_node_selector && !strchr(gsel, '='))
        return build_error(ctx, elem_get(cfg, "gateway-node-selector")->pos,
                           "gateway-node-selector '%s': expected key=value", gsel);
    if (p.gateway_replicas < 0 || p.gateway_replicas > 1000)
        return build_error(ctx, elem_get(cfg, "gateway-replicas")->pos,
                           "gateway-replicas %d: expected 0 to 1000", p.gateway_replicas);
    p.warm_start = elem_bool(cfg, "warm-start");
    const elem_val_t *git = elem_get(cfg, "gateway-idle-timeout");
    if (git->u.i < 0)
        return build_error(ctx, git->pos, "gateway-idle-timeout: expected >= 0");
    p.gateway_idle_timeout = git->u.i;
    const elem_val_t *gka = elem_get(cfg, "gateway-tcp-keepalive");
    if (gka->set && gka->u.objs.n) {
        const elem_cfg_t *kc = gka->u.objs.v[0];
        p.gateway_so_keepalive = true;
        p.gateway_keepalive.idle = elem_get(kc, "time")->u.i;
        p.gateway_keepalive.intvl = elem_get(kc, "interval")->u.i;
        p.gateway_keepalive.cnt = (int)elem_int(kc, "probes");
        if (tcp_keepalive_check(&p.gateway_keepalive))
            return build_error(ctx, gka->pos, "gateway-tcp-keepalive: time and interval must be "
                               "whole seconds from 1s to %ds (or 0), probes 0 to %d, as "
                               "setsockopt accepts them", TCP_KEEPALIVE_MAX_S,
                               TCP_KEEPALIVE_MAX_CNT);
    }
    const elem_val_t *kce = elem_get(cfg, "kube-proxy-conntrack-established");
    if (kce->set) {
        if (kce->u.i < 0 || kce->u.i % SIM_S)
            return build_error(ctx, kce->pos, "kube-proxy-conntrack-established: expected "
                               "whole seconds, 0s or more (0s: the node's sysctl is left alone)");
        p.kp_conntrack_established = kce->u.i;
    }
    const elem_val_t *kpm = elem_get(cfg, "kube-proxy-mode");
    p.kp_mode = strcmp(kpm->u.s, "nftables") == 0 ? KP_MODE_NFTABLES : KP_MODE_IPTABLES;
    if (p.kp_mode == KP_MODE_NFTABLES) {
        int maj = 0, min = 0;
        if ((sscanf(p.version, "%*[vV]%d.%d", &maj, &min) == 2 ||
             sscanf(p.version, "%d.%d", &maj, &min) == 2) &&
            maj == 1 && min < KP_NFTABLES_SINCE_MINOR)
            return build_error(ctx, kpm->pos, "kube-proxy-mode nftables: kube-proxy has an "
                               "nftables mode from Kubernetes 1.%d (KEP-3866: alpha in 1.29 and "
                               "1.30 behind the NFTablesProxyMode feature gate, beta 1.31, GA "
                               "1.33); kubernetes-version is %s", KP_NFTABLES_SINCE_MINOR,
                               p.version);
    }
    /* the kernel: its defaults in every netns (pods' too), node-sysctls in the nodes'
     * own, gateway-sysctls in the gateway pods' */
    const elem_val_t *kv = elem_get(cfg, "kernel"), *iv = elem_get(cfg, "node-image");
    const char *image = iv->set && *iv->u.s ? iv->u.s
                        : !strcmp(p.provider, "eks") ? "al2023" : "ubuntu-22.04";
    const char *kver = kv->set && *kv->u.s ? kv->u.s : image_kernel(image);
    tcp_params_t node_tp;
    net_icmp_limits_t node_icmp;
    if (!kver || tcp_params_kernel(&node_tp, kver) < 0 ||
        net_icmp_limits_kernel(&node_icmp, kver) < 0)
        return build_error(ctx, kv->set ? kv->pos : iv->pos, "kernel '%s': expected a Linux "
                           "version like \"5.15\" or \"6.6\"", kver ? kver : image);
    p.pod_tcp = p.gateway_pod_tcp = node_tp;
    p.pod_icmp = node_icmp;
    int rc0 = apply_sysctls(ctx, cfg, "node-sysctls", &node_tp);
    const elem_val_t *nsv = elem_get(cfg, "node-sysctls");
    if (rc0 == 0 && nsv->set && nsv->u.objs.n) {
        const elem_val_t *ic = elem_get(nsv->u.objs.v[0], "icmp");
        if (ic->u.objs.n)
            rc0 = build_icmp_sysctls(ctx, ic->u.objs.v[0], "node-sysctls icmp", &node_icmp);
    }
    if (rc0 == 0) rc0 = apply_sysctls(ctx, cfg, "gateway-sysctls", &p.gateway_pod_tcp);
    if (rc0) return rc0;
    const elem_val_t *gs = elem_get(cfg, "gateway-sysctls");
    int vmaj = 0, vmin = 0;
    if (gs->set && gs->u.objs.n &&
        (sscanf(p.version, "%*[vV]%d.%d", &vmaj, &vmin) == 2 ||
         sscanf(p.version, "%d.%d", &vmaj, &vmin) == 2) &&
        vmaj == 1 && vmin < SAFE_KEEPALIVE_SYSCTLS_SINCE_MINOR)
        return build_error(ctx, gs->pos, "gateway-sysctls: net.ipv4.tcp_keepalive_* are safe "
                           "sysctls from Kubernetes 1.%d; on %s kubelet refuses the pod "
                           "(SysctlForbidden) unless allowed with --allowed-unsafe-sysctls",
                           SAFE_KEEPALIVE_SYSCTLS_SINCE_MINOR, p.version);
    const elem_val_t *sca = elem_get(cfg, "scale");
    if (sca->set && sca->u.objs.n) {
        const elem_cfg_t *sc2 = sca->u.objs.v[0];
        int64_t ns2 = elem_int(sc2, "services"), nr = elem_int(sc2, "replicas"),
                np2 = elem_int(sc2, "port");
        if (ns2 < 0 || ns2 > 50000)
            return build_error(ctx, elem_get(sc2, "services")->pos, "scale: services %lld: "
                               "expected 0 to 50000", (long long)ns2);
        if (nr < 0 || nr > 1000)
            return build_error(ctx, elem_get(sc2, "replicas")->pos, "scale: replicas %lld: "
                               "expected 0 to 1000", (long long)nr);
        if (np2 < 1 || np2 > 65535)
            return build_error(ctx, elem_get(sc2, "port")->pos, "scale: port %lld: expected 1 "
                               "to 65535", (long long)np2);
        p.scale_services = (int)ns2;
        p.scale_replicas = (int)nr;
        p.scale_port = (int)np2;
        p.scale_namespace = elem_str(sc2, "namespace");
        p.scale_prefix = elem_str(sc2, "name-prefix");
        p.scale_pos = sca->pos;
    }
    const elem_val_t *gt = elem_get(cfg, "gateway-tolerations");
    p.gateway_tolerations = (const char *const *)gt->u.strs.v;
    p.n_gateway_tolerations = gt->u.strs.n;
    p.explain = build_explain(ctx);
    p.interrupted = build_stop_requested;

    const elem_val_t *pools = elem_get(cfg, "pools");
    size_t np = pools->u.objs.n;
    cluster_pool_t *pv = lb_calloc(np, sizeof *pv);
    LB_VEC(char *) strs = {0};                  /* copies parsed in place; freed below */
    LB_VEC(k8s_kv_t) kvs = {0};
    LB_VEC(cluster_taint_t) taints = {0};
    size_t *kv_at = lb_calloc(np + 1, sizeof *kv_at), *tt_at = lb_calloc(np + 1, sizeof *tt_at);
    lb_index_t pool_names = {0};                /* hash of a pool's name -> its pv position */
    int rc = 0;
    for (size_t i = 0; i < np && rc == 0; i++) {
        const elem_cfg_t *pc2 = pools->u.objs.v[i];
        pv[i].name = elem_str(pc2, "name");
        pv[i].count = (int)elem_int(pc2, "count");
        const elem_val_t *zv = elem_get(pc2, "zones");
        pv[i].zones = (const char *const *)zv->u.strs.v;
        pv[i].n_zones = zv->u.strs.n;
        if (pv[i].count < 0 || pv[i].count > 1000)
            rc = build_error(ctx, elem_get(pc2, "count")->pos, "pool count %d: expected 0 to 1000",
                             pv[i].count);
        const elem_val_t *mp = elem_get(pc2, "max-pods");
        if (rc == 0 && mp->set && (mp->u.i < 1 || mp->u.i > CLUSTER_MAX_PODS_LIMIT))
            rc = build_error(ctx, mp->pos, "max-pods %lld: expected 1 to %d (a node's /24 of pod "
                             "addresses)", (long long)mp->u.i, CLUSTER_MAX_PODS_LIMIT);
        pv[i].max_pods = mp->set ? (int)mp->u.i : 0;
        uint64_t h = lb_hash_str(pv[i].name);          /* AKS: pool names are unique */
        for (size_t it, k = lb_index_first(&pool_names, h, &it); k != LB_INDEX_NONE && rc == 0;
             k = lb_index_next(&pool_names, h, &it))
            if (strcmp(pv[k].name, pv[i].name) == 0) {
                const elem_pos_t *f = &pools->u.objs.v[k]->pos;
                rc = build_error(ctx, pc2->pos, "k8s-cluster '%s': pool name '%s' is already "
                                 "used by the pool at %s:%d:%d; expected unique pool names",
                                 name, pv[i].name, f->file, f->line, f->col);
            }
        lb_index_add(&pool_names, h, i);
        for (int k = 0; k < pv[i].count && rc == 0; k++) {
            char nn[128], what[300];
            cluster_node_name(&p, &pv[i], k, nn, sizeof nn);
            snprintf(what, sizeof what, "k8s-cluster '%s' pool '%s' node %d", name, pv[i].name, k);
            rc = build_check_name(ctx, pc2->pos, what, nn);
        }
        kv_at[i] = kvs.n;
        tt_at[i] = taints.n;
        const elem_val_t *lv = elem_get(pc2, "labels"), *tv = elem_get(pc2, "taints");
        for (size_t k = 0; k < lv->u.strs.n && rc == 0; k++) {
            char *s = lb_strdup(lv->u.strs.v[k]);
            lb_vec_push(&strs, s);
            char *eq = strchr(s, '=');
            if (!eq || eq == s) {
                rc = build_error(ctx, lv->u.strs.pos[k], "label '%s': expected key=value", s);
                break;
            }
            *eq = '\0';
            k8s_kv_t e = {s, eq + 1};
            lb_vec_push(&kvs, e);
        }
        for (size_t k = 0; k < tv->u.strs.n && rc == 0; k++) {
            char *s = lb_strdup(tv->u.strs.v[k]);
            lb_vec_push(&strs, s);
            cluster_taint_t t;
            if (parse_taint(s, &t)) {
                rc = build_error(ctx, tv->u.strs.pos[k], "taint '%s': expected "
                                 "key=value:Effect with Effect NoSchedule, NoExecute or "
                                 "PreferNoSchedule", tv->u.strs.v[k]);
                break;
            }
            lb_vec_push(&taints, t);
        }
    }
    kv_at[np] = kvs.n;
    tt_at[np] = taints.n;
    for (size_t i = 0; i < np && rc == 0; i++) {   /* vectors are final: take pointers */
        pv[i].n_labels = kv_at[i + 1] - kv_at[i];  /* (an empty vector's v is NULL: no */
        pv[i].labels = pv[i].n_labels ? kvs.v + kv_at[i] : NULL;   /* arithmetic on it) */
        pv[i].n_taints = tt_at[i + 1] - tt_at[i];
        pv[i].taints = pv[i].n_taints ? taints.v + tt_at[i] : NULL;
    }
    size_t total = 0;
    char pcs[16];
    lb_ip_str(p.pod_cidr, pcs);
    for (size_t i = 0; i < np; i++) total += pv[i].count > 0 ? (size_t)pv[i].count : 0;
    if (rc == 0 && p.pod_plen <= 24 && total > (size_t)1 << (24 - p.pod_plen))
        rc = build_error(ctx, pc->pos, "k8s-cluster '%s': pod-cidr %s/%d has a /24 for %zu "
                         "nodes; the pools have %zu (expected a larger pod-cidr)", name, pcs,
                         p.pod_plen, (size_t)1 << (24 - p.pod_plen), total);
    else if (rc == 0 && p.pod_plen > 24)
        rc = build_error(ctx, pc->pos, "k8s-cluster '%s': pod-cidr %s/%d is smaller than the "
                         "/24 each node takes", name, pcs, p.pod_plen);
    if (rc == 0) {
        int m = p.pod_plen < p.node_plen ? p.pod_plen : p.node_plen;
        if ((p.pod_cidr & lb_prefix_mask(m)) == (p.node_subnet & lb_prefix_mask(m)))
            rc = build_error(ctx, pc->pos, "k8s-cluster '%s': pod-cidr overlaps node-subnet "
                             "(%s:%d:%d); expected separate ranges", name, ns->pos.file,
                             ns->pos.line, ns->pos.col);
    }
    if (rc == 0) {
        char what[200];
        snprintf(what, sizeof what, "k8s-cluster '%s': pod-cidr", name);
        rc = build_check_addr(ctx, pc->pos, what, fab, p.pod_cidr, p.pod_plen);
    }
    /* the certificates the Gateways' HTTPS listeners reference (tls-certificate elements
     * defined before the cluster); owned by a free callback of the run */
    LB_VEC(const char *) cnames = {0};
    LB_VEC(const tls_cert_t *) certs = {0};
    for (size_t i = 0; rc == 0 && objs && i < objs->gateways.n; i++) {
        const k8s_gateway_t *gw = objs->gateways.v[i];
        for (size_t k = 0; k < gw->listeners.n; k++) {
            const char *ref = gw->listeners.v[k].cert_ref;
            if (!ref) continue;
            const tls_cert_t *crt = build_get(ctx, ref, "tls-cert");
            if (!crt) {
                build_warn(ctx, gw->meta.pos, "Gateway %s/%s listener %s: certificateRefs "
                           "'%s' is not a tls-certificate element defined before the cluster: "
                           "the listener gets no filter chain (ResolvedRefs False)",
                           gw->meta.ns, gw->meta.name, gw->listeners.v[k].name, ref);
                continue;
            }
            lb_vec_push(&cnames, ref);
            lb_vec_push(&certs, crt);
        }
    }
    build_on_free(ctx, lb_free, cnames.v);
    build_on_free(ctx, lb_free, (void *)certs.v);
    p.cert_names = cnames.v;
    p.certs = certs.v;
    p.n_certs = certs.n;
    cluster_t *c = NULL;
    if (rc == 0) {
        p.pools = pv;
        p.n_pools = np;
        char err[512];
        c = cluster_new(build_net(ctx), fab, &p, objs, build_metrics(ctx), err, sizeof err);
        if (!c) rc = build_error(ctx, cfg->pos, "k8s-cluster '%s': %s", name, err);
    }
    for (size_t i = 0; i < strs.n; i++) lb_free(strs.v[i]);
    lb_vec_free(&strs);
    lb_vec_free(&kvs);
    lb_vec_free(&taints);
    lb_free(kv_at);
    lb_free(tt_at);
    lb_index_free(&pool_names);
    lb_free(pv);
    if (rc) return rc;
    build_put(ctx, name, "cluster", c);
    build_on_free(ctx, cluster_free_cb, c);
    /* the nodes' kernel profile (kube-proxy has already written its conntrack sysctls),
     * with node-sysctls in the host netns */
    for (size_t i = 0; i < cluster_node_count(c); i++) {
        tcp_stack_set_params(cluster_node_at(c, i)->node, &node_tp);
        cluster_node_at(c, i)->node->icmp = node_icmp;
    }
    const elem_val_t *fv = elem_get(cfg, "faults"), *dv = elem_get(cfg, "deletions");
    size_t nf = fv->u.objs.n;
    for (size_t i = 0; i < nf + dv->u.objs.n; i++) {
        bool del = i >= nf;
        const elem_cfg_t *f = del ? dv->u.objs.v[i - nf] : fv->u.objs.v[i];
        const elem_val_t *pv2 = elem_get(f, "pod");
        cluster_pod_t *pod = cluster_pod_find(c, pv2->u.s);
        if (!pod) {
            char names[512] = "";
            for (size_t k = 0; k < cluster_pod_count(c); k++) {
                size_t len = strlen(names);
                snprintf(names + len, sizeof names - len, "%s%s", k ? ", " : "",
                         cluster_pod_at(c, k)->name);
            }
            return build_error(ctx, pv2->pos, "%s: no pod '%s'; pods are: %s",
                               del ? "deletion" : "fault", pv2->u.s, names);
        }
        fault_t *ft = lb_calloc(1, sizeof *ft);
        ft->c = c;
        ft->pod = pod;
        ft->del = del;
        if (!del) {
            ft->down_for = elem_get(f, "down-for")->u.i;
        } else {
            const elem_val_t *ps = elem_get(f, "pre-stop"), *gp = elem_get(f, "grace-period"),
                             *dr = elem_get(f, "drain");
            if (ps->u.i < 0 || gp->u.i <= 0 || dr->u.i <= 0)
                return build_error(ctx, f->pos, "deletion of '%s': pre-stop must be >= 0, "
                                   "grace-period and drain > 0", pv2->u.s);
            ft->opts = (cluster_delete_opts_t){ps->u.i, gp->u.i, dr->u.i};
        }
        build_on_free(ctx, lb_free, ft);
        sim_schedule_at(build_sim(ctx), elem_get(f, "at")->u.i, fault_cb, ft, NULL);
    }
    const elem_val_t *rv = elem_get(cfg, "rollouts");
    for (size_t i = 0; i < rv->u.objs.n; i++) {
        const elem_cfg_t *f = rv->u.objs.v[i];
        const elem_val_t *dep = elem_get(f, "deployment");
        rollout_ev_t *r = lb_calloc(1, sizeof *r);
        build_on_free(ctx, lb_free, r);
        r->c = c;
        const char *slash = strchr(dep->u.s, '/');
        if (!slash || slash == dep->u.s || (size_t)(slash - dep->u.s) >= sizeof r->ns ||
            strlen(slash + 1) >= sizeof r->name || !slash[1])
            return build_error(ctx, dep->pos, "rollout deployment '%s': expected "
                               "namespace/name", dep->u.s);
        memcpy(r->ns, dep->u.s, (size_t)(slash - dep->u.s));
        strcpy(r->name, slash + 1);
        int replicas = cluster_deployment_replicas(c, r->ns, r->name);
        if (replicas <= 0)
            return build_error(ctx, dep->pos, "rollout: no Deployment %s with pods in the "
                               "cluster", dep->u.s);
        const elem_val_t *ms = elem_get(f, "max-surge"), *mu = elem_get(f, "max-unavailable");
        r->o.max_surge = resolve_fencepost(ms->u.s, replicas, true);
        r->o.max_unavailable = resolve_fencepost(mu->u.s, replicas, false);
        if (r->o.max_surge < 0)
            return build_error(ctx, ms->pos, "max-surge '%s': expected a number or a "
                               "percentage like 25%%", ms->u.s);
        if (r->o.max_unavailable < 0)
            return build_error(ctx, mu->pos, "max-unavailable '%s': expected a number or a "
                               "percentage like 25%%", mu->u.s);
        if (!r->o.max_surge && !r->o.max_unavailable)
            return build_error(ctx, f->pos, "rollout of %s: max-surge and max-unavailable "
                               "resolve to 0 for %d replicas; the API server refuses that "
                               "(one must be above 0)", dep->u.s, replicas);
        const elem_val_t *ps = elem_get(f, "pre-stop"), *gp = elem_get(f, "grace-period"),
                         *dr = elem_get(f, "drain"), *st = elem_get(f, "pod-start");
        if (ps->u.i < 0 || gp->u.i <= 0 || dr->u.i <= 0 || st->u.i < 0)
            return build_error(ctx, f->pos, "rollout of %s: pre-stop and pod-start must be "
                               ">= 0, grace-period and drain > 0", dep->u.s);
        r->o.pod_start = st->u.i;
        r->o.del = (cluster_delete_opts_t){ps->u.i, gp->u.i, dr->u.i};
        sim_schedule_at(build_sim(ctx), elem_get(f, "at")->u.i, rollout_cb, r, NULL);
    }
    return 0;
}

static const elem_type_t cluster_type = {
    "k8s-cluster", ELEM_CLOUD,
    "a Kubernetes cluster: node pools in a vnet running the scenario's manifests "
    "(pods, Services, kube-proxy)",
    cluster_params, cluster_build,
};

void cluster_register(void) { elem_register(&cluster_type); }
