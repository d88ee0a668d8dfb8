/* cluster.c -- a Kubernetes cluster on the simulated network: nodes in node pools, the
 * scheduler, pods as network namespaces behind their nodes, Service address and port
 * allocation, endpoints from pod readiness, kube-proxy on every node, and nginx servers in
 * the pods built from their real configs.
 *
 * Addressing (AKS Azure CNI Overlay; EKS differs only in parameters): each node takes the
 * first free address of the node subnet on eth0 in the fabric (net_fabric_alloc: Azure
 * reserves .0-.3 and the last address; alone in its subnet node i gets base + 4 + i);
 * node i of the cluster owns pod range <pod CIDR> + i*256 as a /24, which the fabric routes
 * to its NIC, and its pods get .2, .3, ... of it. Inside the node a /32 route per pod
 * points at the pod's veth; the pod's default route goes back through it. */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "cluster.h"
#include "apps.h"
#include "explain.h"
#include "health.h"
#include "istio_gateway.h"
#include "nginx_conf.h"
#include "nftables.h"

/* kubelet's HTTP probe: "Any code greater than or equal to 200 and less than 400
 * indicates success" (kubernetes.io/docs/tasks/configure-pod-container/
 * configure-liveness-readiness-startup-probes). */
#define KUBELET_PROBE_MATCH "200-399"
#define KUBELET_USER_AGENT "kube-probe/1.29"

/* The pods of one Deployment: c->pods[first .. first + n) (pods are created Deployment by
 * Deployment; a rolling update's new pods are inserted at the end of their Deployment's
 * range, so the ranges stay contiguous). */
struct watcher { cluster_pod_cb cb; void *data; };
typedef struct dep_pods { const k8s_deployment_t *dep; size_t first, n; } dep_pods_t;
/* The Deployments (positions in c->deps) whose pods a Service selects. */
typedef struct svc_sel { LB_VEC(size_t) deps; } svc_sel_t;

struct cluster {
    net_t *net;
    net_fabric_t *fab;
    metrics_t *m;
    cluster_params_t p;
    char *name, *version;
    const k8s_objects_t *objs;
    LB_VEC(cluster_node_t *) nodes;
    LB_VEC(cluster_pod_t *) pods;
    LB_VEC(k8s_service_t *) svcs;   /* copies of objs' Services (allocations filled in) */
    uint32_t next_cluster_ip;
    gsl_rng *port_rng;
    bool port_used[CLUSTER_NODEPORT_HI - CLUSTER_NODEPORT_LO + 1];   /* allocated NodePorts */
    size_t ports_free;
    LB_VEC(uint32_t) named_ips;     /* ClusterIPs the manifests name, sorted */
    bool building;                  /* inside cluster_new */
    LB_VEC(dep_pods_t) deps;        /* in pod order */
    LB_VEC(svc_sel_t) sel;          /* sel.v[k]: what svcs.v[k] selects */
    lb_index_t sel_index;           /* a Service's address -> its svcs position */
    k8s_objects_t gen;              /* what Istio generates for Gateways (owned) */
    LB_VEC(const k8s_gateway_t *) gen_gw;   /* gen.deployments.v[i] serves gen_gw.v[i] */
    explain_t *ex;
    LB_VEC(struct watcher) watchers;
    LB_VEC(struct pod_del *) dels;  /* pod deletions under way or done (owned) */
    LB_VEC(struct rollout *) rollouts;  /* rolling updates under way or done (owned) */
    bool rollout_pending;           /* a controller pass is scheduled */
    bool term_eps;                  /* kube-proxy uses serving terminating endpoints */
    kp_text_cache_t *kp_texts;      /* the kube-proxies' shared text cache (owned) */
    struct nft_cache *kp_nft;       /* their shared nftables rulesets (owned) */
};

/* ProxyTerminatingEndpoints (KEP-1669): beta and on by default from Kubernetes 1.26. */
/* The ServiceCIDR informer nftables-mode kube-proxy reads its "unallocated ClusterIPs" drop
 * rule from: MultiCIDRServiceAllocator, GA and on by default from 1.33. */
#define KP_SERVICE_CIDR_SINCE_MINOR 33
#define KP_TERMINATING_ENDPOINTS_SINCE_MINOR 26

void cluster_params_default(cluster_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->name = "cluster";
    p->provider = "aks";
    p->version = "1.29";
    lb_cidr_parse(CLUSTER_NODE_SUBNET_DEFAULT, &p->node_subnet, &p->node_plen);
    lb_cidr_parse(CLUSTER_POD_CIDR_DEFAULT, &p->pod_cidr, &p->pod_plen);
    lb_cidr_parse(CLUSTER_SERVICE_CIDR_DEFAULT, &p->service_cidr, &p->service_plen);
    tcp_params_default(&p->pod_tcp);
    p->gateway_pod_tcp = p->pod_tcp;
    net_icmp_limits_default(&p->pod_icmp);
    p->kp_conntrack_established = -1;
}

/* ---- nodes ---- */

static void kvs_add(k8s_kvs_t *kv, const char *k, const char *v)
{
    k8s_kv_t e = {lb_strdup(k), lb_strdup(v)};
    lb_vec_push(kv, e);
}

void cluster_node_name(const cluster_params_t *p, const cluster_pool_t *pool, int i, char *buf,
                       size_t n)
{
    if (pool->node_prefix) snprintf(buf, n, "%s%d", pool->node_prefix, i);
    else snprintf(buf, n, "%s-%s-%d", p->provider, pool->name, i);
}

/* Node i of pool, or NULL with a message in err (name taken, no address left). */
static cluster_node_t *node_create(cluster_t *c, const cluster_pool_t *pool, int i, char *err,
                                   size_t errlen)
{
    size_t idx = c->nodes.n;
    char name[128], a[16];
    cluster_node_name(&c->p, pool, i, name, sizeof name);
    if (net_node_find(c->net, name)) {
        snprintf(err, errlen, "pool '%s' node %d: node name '%s' is already taken", pool->name,
                 i, name);
        return NULL;
    }
    uint32_t ip, pod_base = c->p.pod_cidr + ((uint32_t)idx << 8);
    if (net_fabric_alloc(c->fab, c->p.node_subnet, c->p.node_plen, &ip)) {
        snprintf(err, errlen, "pool '%s' node %d: node-subnet %s/%d has no free address "
                 "left (the first four and the last are reserved)", pool->name, i,
                 lb_ip_str(c->p.node_subnet, a), c->p.node_plen);
        return NULL;
    }
    if (c->p.pod_plen > 24 || idx >= (size_t)1 << (24 - c->p.pod_plen)) {
        snprintf(err, errlen, "pool '%s' node %d: pod-cidr %s/%d has a /24 for %zu nodes; the "
                 "cluster's node %zu needs one", pool->name, i, lb_ip_str(c->p.pod_cidr, a),
                 c->p.pod_plen, c->p.pod_plen > 24 ? 0 : (size_t)1 << (24 - c->p.pod_plen),
                 idx + 1);
        return NULL;
    }
    const char *holder = net_fabric_holder(c->fab, pod_base, 24, NULL, NULL);
    if (holder) {
        snprintf(err, errlen, "pool '%s' node %d: pod range %s/24 overlaps addresses of %s in "
                 "the vnet", pool->name, i, lb_ip_str(pod_base, a), holder);
        return NULL;
    }
    cluster_node_t *n = lb_calloc(1, sizeof *n);
    n->node = net_node_add(c->net, name);
    n->node->forwarding = true;         /* pods are routed through their node */
    n->node->data = n;
    n->nic = net_iface_add(n->node, "eth0", ip, c->p.node_plen);
    net_fabric_attach(c->fab, n->nic);
    net_route_add(n->node, 0, 0, c->p.node_subnet + 1, n->nic);
    n->max_pods = pool->max_pods > 0 ? pool->max_pods
                  : strcmp(c->p.provider, "aks") == 0 ? CLUSTER_MAX_PODS_AKS : CLUSTER_MAX_PODS_KUBELET;
    n->pool = pool->name;
    n->cluster = c;
    kvs_add(&n->labels, "agentpool", pool->name);
    kvs_add(&n->labels, "kubernetes.io/hostname", name);
    kvs_add(&n->labels, "kubernetes.io/os", "linux");
    for (size_t k = 0; k < pool->n_labels; k++)
        kvs_add(&n->labels, pool->labels[k].key, pool->labels[k].value);
    if (pool->n_zones) {
        kvs_add(&n->labels, "topology.kubernetes.io/zone", pool->zones[(size_t)i % pool->n_zones]);
        n->zone = n->labels.v[n->labels.n - 1].value;
    }
    for (size_t k = 0; k < pool->n_taints; k++) {     /* owned copies */
        const cluster_taint_t *t = &pool->taints[k];
        cluster_taint_t copy = {lb_strdup(t->key), lb_strdup(t->value ? t->value : ""),
                                lb_strdup(t->effect)};
        lb_vec_push(&n->taints, copy);
    }
    n->pod_base = pod_base;
    net_fabric_route(c->fab, n->pod_base, 24, n->nic);
    lb_vec_push(&c->nodes, n);
    return n;
}

/* ---- scheduling (kube-scheduler's filters: NodeSelector, TaintToleration; scoring
 * approximated by spreading replicas of a Deployment, then pods overall) ---- */

static bool tolerates(const k8s_deployment_t *d, const cluster_taint_t *t)
{
    if (t->effect && strcmp(t->effect, "PreferNoSchedule") == 0) return true;
    for (size_t i = 0; i < d->tolerations.n; i++) {
        const k8s_toleration_t *o = &d->tolerations.v[i];
        bool exists = o->op && strcmp(o->op, "Exists") == 0;
        if (o->key && *o->key && strcmp(o->key, t->key) != 0) continue;
        if (!o->key || !*o->key) { if (exists) return true; continue; }
        if (o->effect && *o->effect && t->effect && strcmp(o->effect, t->effect) != 0) continue;
        if (exists) return true;
        if ((o->value ? o->value : "")[0] == '\0' && (!t->value || !*t->value)) return true;
        if (o->value && t->value && strcmp(o->value, t->value) == 0) return true;
    }
    return false;
}

static bool fits(const k8s_deployment_t *d, const cluster_node_t *n)
{
    if (!k8s_labels_match(&d->node_selector, &n->labels)) return false;
    for (size_t i = 0; i < n->taints.n; i++)
        if (!tolerates(d, &n->taints.v[i])) return false;
    return true;
}

static cluster_pod_t *pod_create(cluster_t *c, const k8s_deployment_t *d, cluster_node_t *n,
                                 int idx);
static void pod_start_apps(cluster_t *c, cluster_pod_t *pod, FILE *warn);
static void kubelet_start(cluster_pod_t *pod, bool warm);
static void rollouts_kick(cluster_t *c);
static void rollouts_free(cluster_t *c);

/* The scheduler's choice for the next replica of one Deployment: among the nodes that fit
 * and have room (maxPods), the fewest replicas of this Deployment, then the fewest pods,
 * then the first. A binary heap keyed that way over the candidate nodes (placing a pod
 * only raises its node's key), so R replicas on N nodes cost O(N + R log N). */
typedef struct sched {
    cluster_t *c;
    size_t *heap, n;                /* node indices */
    int *same;                      /* per node: this Deployment's replicas there */
} sched_t;

static bool sched_less(const sched_t *h, size_t a, size_t b)
{
    const cluster_node_t *x = h->c->nodes.v[a], *y = h->c->nodes.v[b];
    if (h->same[a] != h->same[b]) return h->same[a] < h->same[b];
    if (x->pods != y->pods) return x->pods < y->pods;
    return a < b;
}

static void sched_down(sched_t *h, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->n && sched_less(h, h->heap[l], h->heap[m])) m = l;
        if (r < h->n && sched_less(h, h->heap[r], h->heap[m])) m = r;
        if (m == i) return;
        size_t t = h->heap[i];
        h->heap[i] = h->heap[m];
        h->heap[m] = t;
        i = m;
    }
}

/* Places every replica of d; an error message in err when some would stay Pending. */
static int schedule_deployment(cluster_t *c, sched_t *h, const k8s_deployment_t *d,
                               FILE *warn, char *err, size_t errlen)
{
    size_t fitting = 0;
    h->n = 0;
    for (size_t i = 0; i < c->nodes.n; i++) {
        h->same[i] = 0;
        if (!fits(d, c->nodes.v[i])) continue;
        fitting++;
        if (c->nodes.v[i]->pods < c->nodes.v[i]->max_pods) h->heap[h->n++] = i;
    }
    for (size_t i = h->n / 2; i-- > 0;) sched_down(h, i);
    for (int r = 0; r < d->replicas; r++) {
        if (r % 256 == 255 && c->p.interrupted && c->p.interrupted()) {
            snprintf(err, errlen, "interrupted");
            return LB_EINTR;
        }
        if (!h->n) {
            if (!fitting)
                snprintf(err, errlen, "%s:%d:%d: Deployment %s/%s: no node fits its pods "
                         "(nodeSelector and taints); the pod would stay Pending",
                         d->meta.pos.file, d->meta.pos.line, d->meta.pos.col, d->meta.ns,
                         d->meta.name);
            else
                snprintf(err, errlen, "%s:%d:%d: Deployment %s/%s: %d of its %d replicas find "
                         "no node with room (the %zu nodes that fit are full: maxPods, the "
                         "pool's max-pods); they would stay Pending", d->meta.pos.file,
                         d->meta.pos.line, d->meta.pos.col, d->meta.ns, d->meta.name,
                         d->replicas - r, d->replicas, fitting);
            return LB_ENOMEM;
        }
        size_t ni = h->heap[0];
        cluster_node_t *n = c->nodes.v[ni];
        cluster_pod_t *pod = pod_create(c, d, n, r);
        pod_start_apps(c, pod, warn);
        kubelet_start(pod, c->p.warm_start);
        h->same[ni]++;
        if (n->pods >= n->max_pods) h->heap[0] = h->heap[--h->n];   /* full: no longer a candidate */
        sched_down(h, 0);
    }
    return 0;
}

/* ---- pods ---- */

static const k8s_gateway_t *gateway_of(const cluster_t *c, const k8s_deployment_t *d)
{
    for (size_t i = 0; i < c->gen.deployments.n; i++)
        if (c->gen.deployments.v[i] == d) return c->gen_gw.v[i];
    return NULL;
}

static void flow_link_cb(void *data, uint64_t down, uint64_t up, uint64_t req_id)
{
    (void)req_id;
    explain_link(data, down, up);
}

static const tls_cert_t *cert_of(const char *ref, void *data)
{
    const cluster_t *c = data;
    for (size_t i = 0; i < c->p.n_certs; i++)
        if (strcmp(c->p.cert_names[i], ref) == 0) return c->p.certs[i];
    return NULL;
}

static void pod_start_apps(cluster_t *c, cluster_pod_t *pod, FILE *warn)
{
    const k8s_deployment_t *d = pod->dep;
    const k8s_gateway_t *gw = gateway_of(c, d);
    if (gw) {                           /* Envoy, configured by istiod from the Gateway */
        istio_gw_opts_t o;
        istio_gw_opts_init(&o);
        o.name = pod->node->name;           /* unique across clusters: counters, streams */
        if (c->p.gateway_idle_timeout > 0) o.idle_timeout = c->p.gateway_idle_timeout;
        o.downstream_so_keepalive = c->p.gateway_so_keepalive;
        o.downstream_keepalive = c->p.gateway_keepalive;
        o.metrics = c->m;
        o.flow_link = c->ex ? flow_link_cb : NULL;
        o.flow_link_data = c->ex;
        o.cert_of = cert_of;
        o.cert_data = c;
        o.explain = c->ex;
        int rc = 0;
        pod->app = istio_gw_new(pod->node, c->objs, gw, &o, &rc);
        pod->app_kind = pod->app ? CLUSTER_APP_ISTIO : CLUSTER_APP_NONE;
        return;
    }
    for (size_t i = 0; i < d->containers.n; i++) {
        const k8s_container_t *ct = &d->containers.v[i];
        nginx_server_t srv;
        nginx_warnings_t w = {0};
        memset(&srv, 0, sizeof srv);
        int rc = nginx_conf_from_container(c->objs, d->meta.ns, ct, &srv, &w);
        if (warn)
            for (size_t k = 0; k < w.n; k++)
                fprintf(warn, "%s:%d:%d: warning: %s/%s container %s: %s\n", d->meta.pos.file,
                        d->meta.pos.line, d->meta.pos.col, d->meta.ns, d->meta.name, ct->name,
                        w.v[k].msg);
        nginx_warnings_free(&w);
        if (rc != 0) {
            nginx_server_free(&srv);
            continue;
        }
        app_http_server_opts_t o;
        app_http_server_opts_init(&o);
        o.name = pod->name;
        int err = 0;
        app_http_server_t *a = app_http_server_new(pod->node, (uint16_t)srv.listen_port,
                                                   srv.locs, srv.n_locs, &o, &err);
        nginx_server_free(&srv);
        if (a && !pod->app) {
            pod->app = a;
            pod->app_kind = CLUSTER_APP_NGINX;
        } else if (a) {
            app_http_server_free(a);            /* one server per pod is modelled */
        }
    }
}

static cluster_pod_t *pod_create(cluster_t *c, const k8s_deployment_t *d, cluster_node_t *n,
                                 int idx)
{
    cluster_pod_t *pod = lb_calloc(1, sizeof *pod);
    char name[256];
    snprintf(name, sizeof name, "%s-%d", d->meta.name, idx);
    pod->name = lb_strdup(name);
    if (net_node_find(c->net, name))        /* another cluster has it: "<cluster>/<pod>" */
        snprintf(name, sizeof name, "%s/%s", c->name, pod->name);
    if (net_node_find(c->net, name))        /* same name in another namespace */
        snprintf(name, sizeof name, "%s/%s/%s", c->name, d->meta.ns, pod->name);
    pod->ns = lb_strdup(d->meta.ns);
    pod->dep = d;
    pod->host = n;
    pod->ip = n->pod_base + 2 + (uint32_t)n->pods++;
    pod->node = net_node_add(c->net, name);
    pod->node->data = pod;
    /* its own netns: the kernel's defaults, not the node's sysctls */
    tcp_stack_set_params(pod->node, gateway_of(c, d) ? &c->p.gateway_pod_tcp : &c->p.pod_tcp);
    pod->node->icmp = c->p.pod_icmp;
    if (!c->p.pod_icmp.global_per_netns) pod->node->icmp_host = n->node;
    char veth[32];
    snprintf(veth, sizeof veth, "veth%d", n->pods);
    net_iface_t *host_if = net_iface_add(n->node, veth, 0, 0);
    net_iface_t *pod_if = net_iface_add(pod->node, "eth0", pod->ip, 32);
    net_link_params_t lp = {.latency = CLUSTER_VETH_LATENCY};
    net_link_new(c->net, host_if, pod_if, &lp);
    net_route_add(n->node, pod->ip, 32, 0, host_if);
    net_route_add(pod->node, 0, 0, 0, pod_if);
    pod->ready = true;   /* until kubelet's readiness prober says otherwise */
    lb_vec_push(&c->pods, pod);
    return pod;
}

static void pod_stop_apps(cluster_pod_t *pod)
{
    if (pod->app_kind == CLUSTER_APP_NGINX) app_http_server_free(pod->app);
    else if (pod->app_kind == CLUSTER_APP_ISTIO) istio_gw_free(pod->app);
    pod->app = NULL;
    pod->app_kind = CLUSTER_APP_NONE;
}

/* ---- kubelet readiness probes (pkg/kubelet/prober): HTTP GET or TCP connect from the
 * node to the pod, every periodSeconds after initialDelaySeconds, timeoutSeconds each;
 * successThreshold passes make the pod Ready, failureThreshold failures unready. The
 * shared health checker runs the state machine. ---- */

static void kubelet_cb(health_t *hc, size_t target, health_state_t from, health_state_t to,
                       const health_result_t *last, void *data)
{
    (void)hc;
    (void)target;
    (void)from;
    cluster_pod_t *pod = data;
    cluster_t *c = pod->host->cluster;
    bool ready = to == HEALTH_UP;
    explain_note(c->ex, pod->name, 0, 0, "kubelet readiness probe: %s -> pod %s",
                 last ? last->reason : "-", ready ? "Ready" : "NotReady");
    cluster_pod_set_ready(c, pod, ready);
}

static int probe_port(const cluster_pod_t *pod, const k8s_probe_t *pr)
{
    if (!pr->port.name) return pr->port.number;
    for (size_t i = 0; i < pod->dep->containers.n; i++)
        for (size_t k = 0; k < pod->dep->containers.v[i].ports.n; k++) {
            const k8s_container_port_t *cp = &pod->dep->containers.v[i].ports.v[k];
            if (cp->name && strcmp(cp->name, pr->port.name) == 0) return cp->port;
        }
    return 0;
}

/* warm: the pod has been Ready before (probing on its period); else unready until its
 * first probe passes after initialDelaySeconds. */
static void kubelet_start(cluster_pod_t *pod, bool warm)
{
    for (size_t i = 0; i < pod->dep->containers.n; i++) {
        const k8s_probe_t *pr = &pod->dep->containers.v[i].readiness;
        if (pr->kind != K8S_PROBE_HTTP && pr->kind != K8S_PROBE_TCP) continue;
        int port = probe_port(pod, pr);
        if (port <= 0) continue;
        health_params_t hp;
        health_params_default(&hp);
        hp.proto = pr->kind == K8S_PROBE_HTTP ? HEALTH_HTTP : HEALTH_TCP;
        hp.path = pr->path ? pr->path : "/";
        hp.user_agent = KUBELET_USER_AGENT;
        hp.who = "kubelet";
        health_matcher_parse(&hp.matcher, KUBELET_PROBE_MATCH);
        hp.interval = (sim_time_t)(pr->period_s > 0 ? pr->period_s : 10) * SIM_S;
        hp.timeout = (sim_time_t)(pr->timeout_s > 0 ? pr->timeout_s : 1) * SIM_S;
        if (hp.timeout > hp.interval) hp.timeout = hp.interval;
        hp.healthy_threshold = pr->success_threshold > 0 ? pr->success_threshold : 1;
        hp.unhealthy_threshold = pr->failure_threshold > 0 ? pr->failure_threshold : 3;
        hp.initial_passes = hp.healthy_threshold;
        if (warm) {
            hp.initial = HEALTH_UP;
            hp.first_delay = hp.interval;
        } else {
            hp.initial = HEALTH_INITIAL;
            hp.first_delay = (sim_time_t)pr->initial_delay_s * SIM_S;
        }
        char name[300];
        snprintf(name, sizeof name, "kubelet:%s", pod->name);
        int rc = 0;
        health_t *hc = health_new(pod->host->node, name, &hp, NULL, &rc);
        if (!hc) continue;
        health_set_callback(hc, kubelet_cb, pod);
        health_target_add(hc, pod->ip, (uint16_t)port, pod->name);
        pod->kubelet = hc;
        pod->ready = warm;
        return;                             /* one readiness prober per pod */
    }
}

/* ---- services ---- */

/* A random free port of the NodePort range (the API server's allocator draws at random;
 * the ports manifests name are taken first, and are distinct: checked when loaded); 0 when
 * every port is taken. */
static uint16_t alloc_node_port(cluster_t *c)
{
    if (!c->ports_free) return 0;
    for (;;) {
        uint16_t p = (uint16_t)(CLUSTER_NODEPORT_LO +
                                gsl_rng_uniform_int(c->port_rng,
                                                    CLUSTER_NODEPORT_HI - CLUSTER_NODEPORT_LO + 1));
        if (!c->port_used[p - CLUSTER_NODEPORT_LO]) {
            c->port_used[p - CLUSTER_NODEPORT_LO] = true;
            c->ports_free--;
            return p;
        }
    }
}

static void take_node_port(cluster_t *c, int port)
{
    if (port < CLUSTER_NODEPORT_LO || port > CLUSTER_NODEPORT_HI) return;
    if (!c->port_used[port - CLUSTER_NODEPORT_LO]) c->ports_free--;
    c->port_used[port - CLUSTER_NODEPORT_LO] = true;
}

/* Ports a Service asks for by value are taken before any is drawn at random, so that a
 * random draw never hands out one that a later manifest names (the API server's
 * allocation bitmap). */
static void reserve_node_ports(cluster_t *c, const k8s_service_t *s)
{
    for (size_t i = 0; i < s->ports.n; i++) take_node_port(c, s->ports.v[i].node_port);
    take_node_port(c, s->health_check_node_port);
}

static int ip_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int svc_ip_cmp(const void *a, const void *b)
{
    const k8s_service_t *x = *(const k8s_service_t *const *)a, *y = *(const k8s_service_t *const *)b;
    if (x->cluster_ip != y->cluster_ip) return x->cluster_ip < y->cluster_ip ? -1 : 1;
    return x->meta.order - y->meta.order;
}

/* The ClusterIPs Services name (spec.clusterIP) must lie in the service CIDR and be
 * distinct ("provided IP is already allocated", the API server's allocator); they are kept
 * sorted so that allocation skips them. 0, or LB_EINVAL with a message in err. */
static int reserve_cluster_ips(cluster_t *c, const k8s_objects_t *objs, char *err, size_t errlen)
{
    LB_VEC(const k8s_service_t *) named = {0};
    uint32_t mask = lb_prefix_mask(c->p.service_plen);
    int rc = 0;
    for (size_t i = 0; i < objs->services.n && rc == 0; i++) {
        const k8s_service_t *u = objs->services.v[i];
        if (!u->cluster_ip || k8s_service_find(&c->gen, u->meta.ns, u->meta.name)) continue;
        if ((u->cluster_ip & mask) != (c->p.service_cidr & mask)) {
            char a[16], b[16];
            snprintf(err, errlen, "%s:%d:%d: Service %s/%s: spec.clusterIP: provided IP %s is "
                     "not in the service CIDR %s/%d", u->meta.pos.file, u->meta.pos.line,
                     u->meta.pos.col, u->meta.ns, u->meta.name, lb_ip_str(u->cluster_ip, a),
                     lb_ip_str(c->p.service_cidr, b), c->p.service_plen);
            rc = LB_EINVAL;
        }
        lb_vec_push(&named, u);
    }
    if (rc == 0 && named.n) qsort(named.v, named.n, sizeof *named.v, svc_ip_cmp);
    for (size_t i = 0; i < named.n && rc == 0; i++) {
        const k8s_service_t *u = named.v[i], *first = i ? named.v[i - 1] : NULL;
        if (first && first->cluster_ip == u->cluster_ip) {
            char a[16];
            snprintf(err, errlen, "%s:%d:%d: Service %s/%s: spec.clusterIP: provided IP %s is "
                     "already allocated to Service %s/%s (%s:%d:%d)", u->meta.pos.file,
                     u->meta.pos.line, u->meta.pos.col, u->meta.ns, u->meta.name,
                     lb_ip_str(u->cluster_ip, a), first->meta.ns, first->meta.name,
                     first->meta.pos.file, first->meta.pos.line, first->meta.pos.col);
            rc = LB_EINVAL;
        }
        lb_vec_push(&c->named_ips, u->cluster_ip);
    }
    lb_vec_free(&named);
    return rc;
}

/* Fills what the API server allocates: the ClusterIP (the next address of the service CIDR
 * no manifest names) and the NodePorts. 0, or LB_ENOMEM with a message in err when the
 * service CIDR or the NodePort range is used up (the API server rejects such a Service:
 * "range is full"). */
static int service_allocate(cluster_t *c, k8s_service_t *s, char *err, size_t errlen)
{
    if (!s->cluster_ip) {
        uint32_t last = (c->p.service_cidr | ~lb_prefix_mask(c->p.service_plen)) - 1;
        uint32_t ip = c->next_cluster_ip;
        while (ip <= last && c->named_ips.n &&
               bsearch(&ip, c->named_ips.v, c->named_ips.n, sizeof ip, ip_cmp))
            ip++;
        if (ip > last || ip < c->next_cluster_ip) {
            char a[16];
            snprintf(err, errlen, "%s:%d:%d: Service %s/%s: the service CIDR %s/%d has no "
                     "ClusterIP left", s->meta.pos.file, s->meta.pos.line, s->meta.pos.col,
                     s->meta.ns, s->meta.name, lb_ip_str(c->p.service_cidr, a),
                     c->p.service_plen);
            return LB_ENOMEM;
        }
        s->cluster_ip = ip;
        c->next_cluster_ip = ip + 1;
    }
    bool external = s->type == K8S_SVC_NODE_PORT || s->type == K8S_SVC_LOAD_BALANCER;
    bool hcnp = s->type == K8S_SVC_LOAD_BALANCER && s->etp == K8S_ETP_LOCAL &&
                !s->health_check_node_port;
    for (size_t i = 0; i < s->ports.n + hcnp; i++) {
        int *np = i < s->ports.n ? &s->ports.v[i].node_port : &s->health_check_node_port;
        if ((i < s->ports.n && !external) || *np) continue;
        if (!(*np = alloc_node_port(c))) {
            snprintf(err, errlen, "%s:%d:%d: Service %s/%s: no free NodePort: all %d of "
                     "%d-%d are allocated (the API server rejects it: range is full)",
                     s->meta.pos.file, s->meta.pos.line, s->meta.pos.col, s->meta.ns,
                     s->meta.name, CLUSTER_NODEPORT_HI - CLUSTER_NODEPORT_LO + 1,
                     CLUSTER_NODEPORT_LO, CLUSTER_NODEPORT_HI);
            return LB_ENOMEM;
        }
    }
    return 0;
}

int cluster_pod_target_port(const cluster_pod_t *pod, const k8s_service_port_t *sp)
{
    if (!sp->target_port.name) return sp->target_port.number ? sp->target_port.number : sp->port;
    for (size_t i = 0; i < pod->dep->containers.n; i++) {
        const k8s_container_t *ct = &pod->dep->containers.v[i];
        for (size_t k = 0; k < ct->ports.n; k++)
            if (ct->ports.v[k].name && strcmp(ct->ports.v[k].name, sp->target_port.name) == 0)
                return ct->ports.v[k].port;
    }
    return 0;   /* the pod does not have the named port: not an endpoint */
}

static bool selects(const k8s_service_t *s, const cluster_pod_t *pod)
{
    return s->selector.n && strcmp(s->meta.ns, pod->ns) == 0 &&
           k8s_labels_match(&s->selector, &pod->dep->pod_labels);
}

/* ---- which pods each Service selects: found once, when the cluster is built (selectors
 * and pod labels do not change), through an index of the Deployments' pod labels, so that
 * many Services and many Deployments do not cost their product. ---- */

typedef struct label_bucket { const char *ns, *key, *value; LB_VEC(size_t) deps; } label_bucket_t;

static uint64_t label_hash(const char *ns, const char *key, const char *value)
{
    return lb_hash_str(ns) ^ lb_mix64(lb_hash_str(key) ^ lb_mix64(lb_hash_str(value)));
}

static label_bucket_t *bucket_find(label_bucket_t *b, const lb_index_t *ix, const char *ns,
                                   const char *key, const char *value)
{
    uint64_t h = label_hash(ns, key, value);
    for (size_t it, i = lb_index_first(ix, h, &it); i != LB_INDEX_NONE; i = lb_index_next(ix, h, &it))
        if (!strcmp(b[i].ns, ns) && !strcmp(b[i].key, key) && !strcmp(b[i].value, value))
            return &b[i];
    return NULL;
}

static uint64_t ptr_hash(const void *p) { return lb_mix64((uint64_t)(uintptr_t)p); }

static void select_build(cluster_t *c)
{
    for (size_t i = 0; i < c->pods.n; i++) {
        const k8s_deployment_t *d = c->pods.v[i]->dep;
        if (!c->deps.n || c->deps.v[c->deps.n - 1].dep != d) {
            dep_pods_t e = { d, i, 0 };
            lb_vec_push(&c->deps, e);
        }
        c->deps.v[c->deps.n - 1].n++;
    }
    LB_VEC(label_bucket_t) b = { 0 };
    lb_index_t ix = { 0 };
    for (size_t j = 0; j < c->deps.n; j++) {
        const k8s_deployment_t *d = c->deps.v[j].dep;
        for (size_t k = 0; k < d->pod_labels.n; k++) {
            const char *key = d->pod_labels.v[k].key, *val = d->pod_labels.v[k].value ? d->pod_labels.v[k].value : "";
            label_bucket_t *lb = bucket_find(b.v, &ix, d->meta.ns, key, val);
            if (!lb) {
                label_bucket_t e = { d->meta.ns, key, val, { 0 } };
                lb_vec_push(&b, e);
                lb_index_add(&ix, label_hash(d->meta.ns, key, val), b.n - 1);
                lb = &b.v[b.n - 1];
            }
            if (!lb->deps.n || lb->deps.v[lb->deps.n - 1] != j) lb_vec_push(&lb->deps, j);
        }
    }
    for (size_t k = 0; k < c->svcs.n; k++) {
        const k8s_service_t *s = c->svcs.v[k];
        svc_sel_t sel = { { 0 } };
        /* candidates: the Deployments with the selector's rarest label */
        const label_bucket_t *best = NULL;
        bool none = !s->selector.n;
        for (size_t i = 0; i < s->selector.n && !none; i++) {
            const char *v = s->selector.v[i].value ? s->selector.v[i].value : "";
            const label_bucket_t *lb = bucket_find(b.v, &ix, s->meta.ns, s->selector.v[i].key, v);
            if (!lb) none = true;
            else if (!best || lb->deps.n < best->deps.n) best = lb;
        }
        for (size_t i = 0; !none && i < best->deps.n; i++) {
            const dep_pods_t *dp = &c->deps.v[best->deps.v[i]];
            if (selects(s, c->pods.v[dp->first])) lb_vec_push(&sel.deps, best->deps.v[i]);
        }
        lb_vec_push(&c->sel, sel);
        lb_index_add(&c->sel_index, ptr_hash(s), k);
    }
    for (size_t i = 0; i < b.n; i++) lb_vec_free(&b.v[i].deps);
    lb_vec_free(&b);
    lb_index_free(&ix);
}

/* The svcs position of s, or -1 when it is not one of the cluster's. */
static long svc_pos(const cluster_t *c, const k8s_service_t *s)
{
    uint64_t h = ptr_hash(s);
    for (size_t it, i = lb_index_first(&c->sel_index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&c->sel_index, h, &it))
        if (c->svcs.v[i] == s) return (long)i;
    return -1;
}

/* Loops `pod` over every pod that Service k (c->svcs.v[k]) selects, in pod order. */
#define FOR_SELECTED(c, k, pod)                                                              \
    for (size_t d_ = 0; d_ < (c)->sel.v[k].deps.n; d_++)                                     \
        for (size_t p_ = (c)->deps.v[(c)->sel.v[k].deps.v[d_]].first,                        \
                    e_ = p_ + (c)->deps.v[(c)->sel.v[k].deps.v[d_]].n;                       \
             p_ < e_ && ((pod) = (c)->pods.v[p_], true); p_++)

/* The Services' ports as kube-proxy takes them (kp_service_set), built once per sync for
 * every node's kube-proxy: ports.v[i] points into eps and ranges (hence positions, fixed
 * up when all are built). */
typedef struct kp_ports {
    LB_VEC(kp_service_port_t) ports;
    LB_VEC(size_t) first_ep, first_range;   /* per port: its start in eps / ranges */
    LB_VEC(kp_endpoint_t) eps;
    LB_VEC(kp_cidr_t) ranges;
} kp_ports_t;

/* Appends Service k's ports (every port, its endpoints) to kps. */
static void kp_ports_add(cluster_t *c, kp_ports_t *kps, size_t k)
{
    const k8s_service_t *s = c->svcs.v[k];
    size_t r0 = kps->ranges.n;
    for (size_t r = 0; r < s->source_ranges.n; r++) {
        kp_cidr_t kc = {s->source_ranges.v[r].addr, s->source_ranges.v[r].plen};
        lb_vec_push(&kps->ranges, kc);
    }
    for (size_t i = 0; i < s->ports.n; i++) {
        const k8s_service_port_t *sp = &s->ports.v[i];
        size_t e0 = kps->eps.n;
        cluster_pod_t *pod;
        FOR_SELECTED(c, k, pod) {
            int tp = cluster_pod_target_port(pod, sp);
            if (!tp) continue;
            if (pod->phase == CLUSTER_POD_GONE) continue;
            bool term = pod->phase == CLUSTER_POD_TERMINATING;
            kp_endpoint_t e = {pod->ip, (uint16_t)tp, pod->host->node->name,
                               pod->ready && !term, pod->ready, term};
            lb_vec_push(&kps->eps, e);
        }
        kp_service_port_t p = {
            .n_lb_source_ranges = s->source_ranges.n,
            .ns = s->meta.ns, .name = s->meta.name, .port_name = sp->name,
            .protocol = sp->protocol, .cluster_ip = s->cluster_ip, .port = (uint16_t)sp->port,
            .node_port = (uint16_t)sp->node_port,
            .lb_ips = s->lb_ip ? &s->lb_ip : NULL, .n_lb_ips = s->lb_ip ? 1 : 0,
            .external_policy = s->etp == K8S_ETP_LOCAL ? KP_POLICY_LOCAL : KP_POLICY_CLUSTER,
            .health_check_node_port = (uint16_t)s->health_check_node_port,
            .n_endpoints = kps->eps.n - e0};
        lb_vec_push(&kps->ports, p);
        lb_vec_push(&kps->first_ep, e0);
        lb_vec_push(&kps->first_range, r0);
    }
}

static void kp_ports_fix(kp_ports_t *kps)
{
    for (size_t i = 0; i < kps->ports.n; i++) {
        kp_service_port_t *p = &kps->ports.v[i];
        p->endpoints = p->n_endpoints ? &kps->eps.v[kps->first_ep.v[i]] : NULL;
        p->lb_source_ranges = p->n_lb_source_ranges ? &kps->ranges.v[kps->first_range.v[i]] : NULL;
    }
}

static void kp_ports_free(kp_ports_t *kps)
{
    lb_vec_free(&kps->ports);
    lb_vec_free(&kps->first_ep);
    lb_vec_free(&kps->first_range);
    lb_vec_free(&kps->eps);
    lb_vec_free(&kps->ranges);
}

/* Envoy's EDS view: every Service port's endpoints (pod IP, target port, ready). */
static void istio_push(cluster_t *c, istio_gw_t *g)
{
    for (size_t k = 0; k < c->svcs.n; k++) {
        const k8s_service_t *s = c->svcs.v[k];
        for (size_t i = 0; i < s->ports.n; i++) {
            const k8s_service_port_t *sp = &s->ports.v[i];
            LB_VEC(istio_endpoint_t) eps = {0};
            cluster_pod_t *pod;
            FOR_SELECTED(c, k, pod) {
                int tp = cluster_pod_target_port(pod, sp);
                if (!tp) continue;
                if (pod->phase == CLUSTER_POD_GONE) continue;
                istio_endpoint_t e = {pod->ip, (uint16_t)tp,
                                      pod->ready && pod->phase == CLUSTER_POD_RUNNING};
                lb_vec_push(&eps, e);
            }
            istio_gw_set_endpoints(g, s->meta.ns, s->meta.name, sp->port, eps.v, eps.n);
            lb_vec_free(&eps);
        }
    }
}

/* For the explanations: a node that loses its last usable local endpoint (Ready, or
 * serving and terminating where kube-proxy uses those) of an externalTrafficPolicy Local
 * LoadBalancer Service, after having had one, drops that Service's new external
 * connections (KUBE-EXT -> KUBE-SVL without endpoints) until its load balancer stops
 * sending them: noted as the node's state, so that those drops name it as their cause. */
static void note_local_endpoints(cluster_t *c)
{
    for (size_t i = 0; i < c->nodes.n; i++) {
        cluster_node_t *n = c->nodes.v[i];
        const k8s_service_t *lost = NULL;
        const cluster_pod_t *last = NULL;
        bool any = false;
        for (size_t k = 0; k < c->svcs.n && !lost; k++) {
            const k8s_service_t *s = c->svcs.v[k];
            if (s->type != K8S_SVC_LOAD_BALANCER || s->etp != K8S_ETP_LOCAL) continue;
            any = true;
            int usable = 0;
            cluster_pod_t *pod;
            FOR_SELECTED(c, k, pod) {
                if (pod->host != n) continue;
                last = pod;
                if (pod->phase == CLUSTER_POD_GONE) continue;
                usable += pod->ready && (pod->phase == CLUSTER_POD_RUNNING || c->term_eps);
            }
            if (!usable) lost = s;
        }
        if (!any) continue;
        if (!lost) {
            n->had_local = true;
            if (n->lost_local) explain_set_state(c->ex, n->node->name, 0);
            n->lost_local = false;
        } else if (n->had_local && !n->lost_local) {
            n->lost_local = true;
            explain_set_state(c->ex, n->node->name, explain_note(c->ex, n->node->name, 0,
                              last ? explain_state(c->ex, last->name) : 0, "no usable local "
                              "endpoint of Service %s/%s left on this node: kube-proxy drops "
                              "its new external connections (externalTrafficPolicy Local) "
                              "until the load balancer's probe of the healthCheckNodePort "
                              "marks the node down", lost->meta.ns, lost->meta.name));
        }
    }
}

void cluster_sync(cluster_t *c)
{
    for (size_t i = 0; i < c->pods.n; i++)
        if (c->pods.v[i]->app_kind == CLUSTER_APP_ISTIO) istio_push(c, c->pods.v[i]->app);
    kp_ports_t kps = {0};
    for (size_t k = 0; k < c->svcs.n; k++) kp_ports_add(c, &kps, k);
    kp_ports_fix(&kps);
    for (size_t i = 0; i < c->nodes.n; i++) {
        cluster_node_t *n = c->nodes.v[i];
        if (c->building && c->p.interrupted && c->p.interrupted()) break;    /* abandoned */
        for (size_t k = 0; k < kps.ports.n; k++) kp_service_set(n->kp, &kps.ports.v[k]);
        char err[256];
        int rc = kp_sync(n->kp, err, sizeof err);
        /* a rule the netfilter model rejects is a bug in the kube-proxy model */
        if (rc && rc != LB_EADDRINUSE)
            fprintf(stderr, "cluster: kube-proxy sync on %s failed: %s\n", n->node->name, err);
        assert(rc == 0 || rc == LB_EADDRINUSE);
    }
    kp_ports_free(&kps);
    if (c->ex && !c->building) note_local_endpoints(c);
}

/* ---- Istio's deployment controller (pilot/pkg/config/kube/gateway/
 * deploymentcontroller.go): for each Gateway of class istio, a Service and a Deployment.
 * A Service manifest with the generated Service's namespace and name is applied on top,
 * as `kubectl patch` would be: Istio's server-side apply leaves the fields it does not
 * manage (externalTrafficPolicy, extra annotations) to the user. ---- */

static void kvs_merge(k8s_kvs_t *dst, const k8s_kvs_t *src)
{
    for (size_t i = 0; i < src->n; i++) {
        bool done = false;
        for (size_t k = 0; k < dst->n && !done; k++)
            if (strcmp(dst->v[k].key, src->v[i].key) == 0) {
                lb_free(dst->v[k].value);
                dst->v[k].value = lb_strdup(src->v[i].value);
                done = true;
            }
        if (!done) kvs_add(dst, src->v[i].key, src->v[i].value);
    }
}

/* A user's Service with the generated Service's name is an overlay: Istio applies its
 * generated Service with server-side apply, so the fields Istio sets (type, selector, each
 * port's name, port and appProtocol) are Istio's, and every other field the user wrote
 * stays: externalTrafficPolicy, healthCheckNodePort, loadBalancerIP,
 * loadBalancerSourceRanges, annotations and labels, a port's nodePort and targetPort (the
 * port list merges by port and protocol), and ports Istio does not generate. What Istio
 * replaces is reported as a note (the explanations), never dropped silently. */
static void overlay_service(cluster_t *c, k8s_service_t *svc, const k8s_service_t *patch)
{
    svc->etp = patch->etp;
    if (patch->health_check_node_port) svc->health_check_node_port = patch->health_check_node_port;
    if (patch->lb_ip) svc->lb_ip = patch->lb_ip;
    if (patch->cluster_ip) svc->cluster_ip = patch->cluster_ip;
    kvs_merge(&svc->meta.annotations, &patch->meta.annotations);
    kvs_merge(&svc->meta.labels, &patch->meta.labels);
    for (size_t i = 0; i < patch->source_ranges.n; i++)
        lb_vec_push(&svc->source_ranges, patch->source_ranges.v[i]);
    const char *f = patch->meta.pos.file ? patch->meta.pos.file : "?";
    for (size_t i = 0; i < patch->ports.n; i++) {
        const k8s_service_port_t *pp = &patch->ports.v[i];
        k8s_service_port_t *gp = NULL;
        for (size_t k = 0; k < svc->ports.n && !gp; k++)
            if (svc->ports.v[k].port == pp->port &&
                !strcmp(svc->ports.v[k].protocol ? svc->ports.v[k].protocol : "TCP",
                        pp->protocol ? pp->protocol : "TCP"))
                gp = &svc->ports.v[k];
        if (!gp) {                      /* a port Istio does not generate: kept as written */
            k8s_service_port_t np = {
                .name = pp->name ? lb_strdup(pp->name) : NULL, .port = pp->port,
                .target_port = {pp->target_port.number,
                                pp->target_port.name ? lb_strdup(pp->target_port.name) : NULL},
                .node_port = pp->node_port,
                .protocol = lb_strdup(pp->protocol ? pp->protocol : "TCP"),
                .app_protocol = pp->app_protocol ? lb_strdup(pp->app_protocol) : NULL};
            lb_vec_push(&svc->ports, np);
            continue;
        }
        if (pp->node_port) gp->node_port = pp->node_port;
        if (pp->target_port.name || pp->target_port.number != pp->port) {
            lb_free(gp->target_port.name);
            gp->target_port.number = pp->target_port.number;
            gp->target_port.name = pp->target_port.name ? lb_strdup(pp->target_port.name) : NULL;
        }
        bool ap_differs = (pp->app_protocol || gp->app_protocol) &&
                          (!pp->app_protocol || !gp->app_protocol ||
                           strcmp(pp->app_protocol, gp->app_protocol));
        if (ap_differs)
            explain_note(c->ex, c->name, 0, 0, "Service %s/%s (%s:%d): port %d appProtocol "
                         "'%s' is replaced by Istio's generated '%s'", patch->meta.ns,
                         patch->meta.name, f, patch->meta.pos.line, pp->port,
                         pp->app_protocol ? pp->app_protocol : "(none)",
                         gp->app_protocol ? gp->app_protocol : "(none)");
    }
    if (patch->has_selector)
        explain_note(c->ex, c->name, 0, 0, "Service %s/%s (%s:%d): spec.selector is replaced "
                     "by Istio's generated selector", patch->meta.ns, patch->meta.name, f,
                     patch->meta.pos.line);
    if (patch->type != svc->type)
        explain_note(c->ex, c->name, 0, 0, "Service %s/%s (%s:%d): spec.type is replaced by "
                     "Istio's generated type", patch->meta.ns, patch->meta.name, f,
                     patch->meta.pos.line);
}

static void generate_gateways(cluster_t *c)
{
    for (size_t i = 0; i < c->objs->gateways.n; i++) {
        const k8s_gateway_t *gw = c->objs->gateways.v[i];
        if (gw->class_name && strcmp(gw->class_name, ISTIO_GATEWAY_CLASS_DEFAULT) != 0) continue;
        k8s_service_t *svc = lb_calloc(1, sizeof *svc);
        istio_gw_service_fill(gw, svc);
        const k8s_service_t *patch = k8s_service_find(c->objs, svc->meta.ns, svc->meta.name);
        if (patch) overlay_service(c, svc, patch);
        lb_vec_push(&c->gen.services, svc);
        k8s_deployment_t *dep = lb_calloc(1, sizeof *dep);
        istio_gw_deployment_fill(gw, dep);
        if (c->p.gateway_replicas > 0) dep->replicas = c->p.gateway_replicas;
        for (size_t k = 0; k < c->p.n_gateway_tolerations; k++) {
            char *t = lb_strdup(c->p.gateway_tolerations[k]);
            char *colon = strrchr(t, ':'), *eq = strchr(t, '=');
            k8s_toleration_t tol = {0};
            if (colon) *colon = '\0';
            if (eq && (!colon || eq < colon)) *eq = '\0';
            tol.key = lb_strdup(t);
            if (colon && strcmp(colon + 1, "Exists") == 0) {
                tol.op = lb_strdup("Exists");
            } else {
                tol.op = lb_strdup("Equal");
                tol.value = lb_strdup(eq ? eq + 1 : "");
                if (colon) tol.effect = lb_strdup(colon + 1);
            }
            lb_vec_push(&dep->tolerations, tol);
            lb_free(t);
        }
        if (c->p.gateway_node_selector) {
            char *kv = lb_strdup(c->p.gateway_node_selector), *eq = strchr(kv, '=');
            if (eq) {
                *eq = '\0';
                kvs_add(&dep->node_selector, kv, eq + 1);
            }
            lb_free(kv);
        }
        lb_vec_push(&c->gen.deployments, dep);
        lb_vec_push(&c->gen_gw, gw);
    }
}

/* The `scale` key's synthetic workload (cluster_params_t scale_*): Services and
 * Deployments as `kubectl create deployment NAME --image=registry.k8s.io/pause:3.9
 * --replicas=R` and `kubectl expose deployment NAME --port=P` would make them. Their
 * gen_gw entry is NULL (no gateway behind them). */
static void generate_scale(cluster_t *c)
{
    const cluster_params_t *p = &c->p;
    for (int i = 0; i < p->scale_services; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s-%d", p->scale_prefix ? p->scale_prefix : "svc", i);
        const char *ns = p->scale_namespace ? p->scale_namespace : "default";
        k8s_service_t *svc = lb_calloc(1, sizeof *svc);
        svc->meta.name = lb_strdup(name);
        svc->meta.ns = lb_strdup(ns);
        svc->meta.pos = p->scale_pos;
        svc->type = K8S_SVC_CLUSTER_IP;
        kvs_add(&svc->selector, "app", name);
        svc->has_selector = true;
        k8s_service_port_t sp = {0};
        sp.port = p->scale_port;
        sp.target_port.number = p->scale_port;
        sp.protocol = lb_strdup("TCP");
        lb_vec_push(&svc->ports, sp);
        lb_vec_push(&c->gen.services, svc);
        k8s_deployment_t *dep = lb_calloc(1, sizeof *dep);
        dep->meta.name = lb_strdup(name);
        dep->meta.ns = lb_strdup(ns);
        dep->meta.pos = p->scale_pos;
        dep->replicas = p->scale_replicas;
        kvs_add(&dep->selector, "app", name);
        kvs_add(&dep->pod_labels, "app", name);
        k8s_container_t ct = {0};
        ct.name = lb_strdup("pause");
        ct.image = lb_strdup("registry.k8s.io/pause:3.9");
        lb_vec_push(&dep->containers, ct);
        lb_vec_push(&c->gen.deployments, dep);
        lb_vec_push(&c->gen_gw, (const k8s_gateway_t *)NULL);
    }
}

/* ---- construction ---- */

cluster_t *cluster_new(net_t *net, net_fabric_t *fab, const cluster_params_t *p,
                       const k8s_objects_t *objs, metrics_t *m, char *err, size_t errlen)
{
    cluster_t *c = lb_calloc(1, sizeof *c);
    c->net = net;
    c->fab = fab;
    c->m = m;
    c->p = *p;
    c->name = lb_strdup(p->name ? p->name : "cluster");
    c->version = lb_strdup(p->version ? p->version : "1.29");
    c->objs = objs;
    c->next_cluster_ip = p->service_cidr + 16;   /* .1 kubernetes, .10 kube-dns */
    char stream[160];
    snprintf(stream, sizeof stream, "cluster:%s:nodeport", c->name);
    c->port_rng = sim_rng(net_sim(net), stream);
    c->building = true;
    c->ports_free = CLUSTER_NODEPORT_HI - CLUSTER_NODEPORT_LO + 1;

    c->ex = p->explain;
    for (size_t i = 0; i < p->n_pools; i++)
        for (int k = 0; k < p->pools[i].count; k++)
            if (!node_create(c, &p->pools[i], k, err, errlen)) {
                cluster_free(c);
                return NULL;
            }
    generate_scale(c);
    generate_gateways(c);
    if (!c->nodes.n) {
        snprintf(err, errlen, "the cluster has no nodes (every pool has count 0)");
        cluster_free(c);
        return NULL;
    }
    size_t n_user = objs->deployments.n, n_dep = n_user + c->gen.deployments.n;
    sched_t h = { c, lb_calloc(c->nodes.n, sizeof *h.heap), 0, lb_calloc(c->nodes.n, sizeof *h.same) };
    int rc = 0;
    for (size_t i = 0; i < n_dep && rc == 0; i++) {
        const k8s_deployment_t *d = i < n_user ? objs->deployments.v[i]
                                               : c->gen.deployments.v[i - n_user];
        rc = schedule_deployment(c, &h, d, p->warn, err, errlen);
    }
    lb_free(h.heap);
    lb_free(h.same);
    for (size_t i = 0; i < objs->services.n && rc == 0; i++) reserve_node_ports(c, objs->services.v[i]);
    for (size_t i = 0; i < c->gen.services.n && rc == 0; i++) reserve_node_ports(c, c->gen.services.v[i]);
    if (rc == 0) rc = reserve_cluster_ips(c, objs, err, errlen);
    for (size_t i = 0; i < objs->services.n && rc == 0; i++) {
        const k8s_service_t *u = objs->services.v[i];
        if (k8s_service_find(&c->gen, u->meta.ns, u->meta.name)) continue;  /* a patch */
        k8s_service_t *s = lb_malloc(sizeof *s);
        *s = *u;                        /* shallow: strings stay owned by objs */
        lb_vec_push(&c->svcs, s);
        rc = service_allocate(c, s, err, errlen);
    }
    for (size_t i = 0; i < c->gen.services.n && rc == 0; i++) {
        k8s_service_t *s = lb_malloc(sizeof *s);
        *s = *c->gen.services.v[i];     /* shallow: strings stay owned by c->gen */
        lb_vec_push(&c->svcs, s);
        rc = service_allocate(c, s, err, errlen);
    }
    if (rc < 0) {
        cluster_free(c);
        return NULL;
    }
    select_build(c);
    kp_config_t kc;
    kp_config_default(&kc);
    kc.cluster_cidr = (kp_cidr_t){p->pod_cidr, p->pod_plen};
    int vmaj = 0, vmin = 0;
    if (sscanf(c->version, "%*[vV]%d.%d", &vmaj, &vmin) == 2 ||
        sscanf(c->version, "%d.%d", &vmaj, &vmin) == 2)
        kc.terminating_endpoints = vmaj > 1 || vmin >= KP_TERMINATING_ENDPOINTS_SINCE_MINOR;
    c->term_eps = kc.terminating_endpoints;
    if (p->kp_conntrack_established >= 0)
        kc.conntrack_tcp_established = p->kp_conntrack_established;
    c->kp_texts = kp_text_cache_new();      /* every node writes the same rules */
    kc.text_cache = c->kp_texts;
    kc.mode = (kp_mode_t)p->kp_mode;
    if (kc.mode == KP_MODE_NFTABLES) {
        c->kp_nft = nft_cache_new();
        kc.nft_cache = c->kp_nft;
        /* ServiceCIDR objects (MultiCIDRServiceAllocator, on by default from 1.33): the
         * apiserver's "kubernetes" ServiceCIDR is the service-cidr */
        if (vmaj > 1 || vmin >= KP_SERVICE_CIDR_SINCE_MINOR)
            kc.service_cidr = (kp_cidr_t){p->service_cidr, p->service_plen};
    }
    for (size_t i = 0; i < c->nodes.n; i++) c->nodes.v[i]->kp = kp_new(c->nodes.v[i]->node, &kc);
    cluster_sync(c);
    c->building = false;
    return c;
}

void cluster_free(cluster_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->pods.n; i++) {
        cluster_pod_t *pod = c->pods.v[i];
        health_free(pod->kubelet);
        pod_stop_apps(pod);
        lb_free(pod->name);
        lb_free(pod->ns);
        lb_free(pod);
    }
    for (size_t i = 0; i < c->nodes.n; i++) {
        cluster_node_t *n = c->nodes.v[i];
        kp_free(n->kp);
        for (size_t k = 0; k < n->labels.n; k++) {
            lb_free(n->labels.v[k].key);
            lb_free(n->labels.v[k].value);
        }
        lb_vec_free(&n->labels);
        for (size_t k = 0; k < n->taints.n; k++) {
            lb_free((char *)n->taints.v[k].key);
            lb_free((char *)n->taints.v[k].value);
            lb_free((char *)n->taints.v[k].effect);
        }
        lb_vec_free(&n->taints);
        lb_free(n);
    }
    kp_text_cache_free(c->kp_texts);
    nft_cache_free(c->kp_nft);              /* nodes keep their references */
    for (size_t i = 0; i < c->svcs.n; i++) lb_free(c->svcs.v[i]);
    lb_vec_free(&c->named_ips);
    lb_vec_free(&c->pods);
    lb_vec_free(&c->nodes);
    lb_vec_free(&c->svcs);
    for (size_t i = 0; i < c->sel.n; i++) lb_vec_free(&c->sel.v[i].deps);
    lb_vec_free(&c->sel);
    for (size_t i = 0; i < c->dels.n; i++) lb_free(c->dels.v[i]);
    lb_vec_free(&c->dels);
    rollouts_free(c);
    lb_vec_free(&c->watchers);
    lb_index_free(&c->sel_index);
    lb_vec_free(&c->deps);
    k8s_objects_free(&c->gen);
    lb_vec_free(&c->gen_gw);
    lb_free(c->name);
    lb_free(c->version);
    lb_free(c);
}

/* ---- queries and changes ---- */

size_t cluster_node_count(const cluster_t *c) { return c->nodes.n; }
cluster_node_t *cluster_node_at(cluster_t *c, size_t i) { return i < c->nodes.n ? c->nodes.v[i] : NULL; }
size_t cluster_pod_count(const cluster_t *c) { return c->pods.n; }
cluster_pod_t *cluster_pod_at(cluster_t *c, size_t i) { return i < c->pods.n ? c->pods.v[i] : NULL; }
const char *cluster_version(const cluster_t *c) { return c->version; }
net_fabric_t *cluster_fabric(const cluster_t *c) { return c->fab; }
void cluster_node_subnet(const cluster_t *c, uint32_t *prefix, int *plen)
{
    *prefix = c->p.node_subnet;
    *plen = c->p.node_plen;
}

cluster_node_t *cluster_node_find(cluster_t *c, const char *name)
{
    for (size_t i = 0; i < c->nodes.n; i++)
        if (strcmp(c->nodes.v[i]->node->name, name) == 0) return c->nodes.v[i];
    return NULL;
}

size_t cluster_service_count(const cluster_t *c) { return c->svcs.n; }

k8s_service_t *cluster_service_at(cluster_t *c, size_t i)
{
    assert(i < c->svcs.n);
    return c->svcs.v[i];
}

k8s_service_t *cluster_service(cluster_t *c, const char *ns, const char *name)
{
    for (size_t i = 0; i < c->svcs.n; i++)
        if (strcmp(c->svcs.v[i]->meta.ns, ns) == 0 && strcmp(c->svcs.v[i]->meta.name, name) == 0)
            return c->svcs.v[i];
    return NULL;
}

k8s_service_t *cluster_service_ref(cluster_t *c, const char *ref)
{
    const char *slash = strchr(ref, '/');
    char ns[256];
    if (!slash || slash == ref || !slash[1] || (size_t)(slash - ref) >= sizeof ns) return NULL;
    memcpy(ns, ref, (size_t)(slash - ref));
    ns[slash - ref] = '\0';
    return cluster_service(c, ns, slash + 1);
}

void cluster_set_lb_ip(cluster_t *c, k8s_service_t *svc, uint32_t ip)
{
    svc->lb_ip = ip;
    cluster_sync(c);
}

size_t cluster_service_pods(cluster_t *c, const k8s_service_t *svc, cluster_pod_t **out,
                            size_t max)
{
    size_t n = 0;
    long k = svc_pos(c, svc);
    if (k >= 0) {
        cluster_pod_t *pod;
        FOR_SELECTED(c, (size_t)k, pod) {
            if (n < max) out[n] = pod;
            n++;
        }
        return n;
    }
    for (size_t i = 0; i < c->pods.n; i++)      /* a Service that is not the cluster's copy */
        if (selects(svc, c->pods.v[i])) {
            if (n < max) out[n] = c->pods.v[i];
            n++;
        }
    return n;
}

cluster_pod_t *cluster_pod_find(cluster_t *c, const char *name)
{
    for (size_t i = 0; i < c->pods.n; i++)
        if (strcmp(c->pods.v[i]->name, name) == 0) return c->pods.v[i];
    return NULL;
}

static void restart_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    cluster_t *c = a;
    cluster_pod_t *pod = b;
    explain_note(c->ex, pod->name, 0, 0, "container restarted by kubelet (readiness decides "
                 "when it gets traffic again)");
    pod_start_apps(c, pod, NULL);
    cluster_sync(c);                        /* a restarted Envoy needs its endpoints */
}

void cluster_pod_crash(cluster_t *c, cluster_pod_t *pod, sim_time_t down_for)
{
    uint64_t n = explain_note(c->ex, pod->name, 0, 0, "container killed: connections reset, "
                              "new connections refused");
    explain_set_state(c->ex, pod->name, n);
    pod_stop_apps(pod);
    if (down_for > 0) sim_schedule(net_sim(c->net), down_for, restart_cb, c, pod);
}

static void notify(cluster_t *c, cluster_pod_t *pod)
{
    for (size_t i = 0; i < c->watchers.n; i++) c->watchers.v[i].cb(c, pod, c->watchers.v[i].data);
}

void cluster_watch_pods(cluster_t *c, cluster_pod_cb cb, void *data)
{
    struct watcher w = {cb, data};
    lb_vec_push(&c->watchers, w);
}

void cluster_pod_set_ready(cluster_t *c, cluster_pod_t *pod, bool ready)
{
    if (pod->ready == ready) return;
    pod->ready = ready;
    cluster_sync(c);
    notify(c, pod);
    rollouts_kick(c);
}

/* ---- pod deletion (cluster.h) ---- */

typedef struct pod_del {
    cluster_t *c;
    cluster_pod_t *pod;
    cluster_delete_opts_t o;
    sim_time_t t0;
    bool exited;
    uint64_t note;                  /* "deleted: terminating", the cause of what follows */
} pod_del_t;

static void del_exit(pod_del_t *d, const char *why)
{
    if (d->exited) return;
    d->exited = true;
    cluster_pod_t *pod = d->pod;
    explain_set_state(d->c->ex, pod->name, explain_note(d->c->ex, pod->name, 0, d->note,
                      "containers exited (%s): connections reset, new ones refused; the pod "
                      "leaves the endpoints", why));
    pod_stop_apps(pod);
    pod->phase = CLUSTER_POD_GONE;
    cluster_sync(d->c);
    notify(d->c, pod);
    rollouts_kick(d->c);
}

static void del_kill_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    (void)b;
    pod_del_t *d = a;
    del_exit(d, "SIGKILL at the end of terminationGracePeriodSeconds");
}

static void del_drained_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    (void)b;
    del_exit(a, "Envoy's drain over: pilot-agent stops it");
}

static void del_term_cb(sim_t *sim, void *a, void *b)
{
    (void)b;
    pod_del_t *d = a;
    cluster_pod_t *pod = d->pod;
    sim_time_t left = d->t0 + d->o.grace - sim_now(sim);
    if (pod->app_kind == CLUSTER_APP_ISTIO) {
        explain_note(d->c->ex, pod->name, 0, 0, "SIGTERM: pilot-agent drains Envoy for %llds "
                     "(readiness 503, responses with Connection: close)",
                     (long long)(d->o.drain / SIM_S));
        istio_gw_drain(pod->app);
        if (d->o.drain < left) sim_schedule(sim, d->o.drain, del_drained_cb, d, NULL);
    } else {
        del_exit(d, "SIGTERM: nginx's fast shutdown");
    }
}

static void pod_delete(cluster_t *c, cluster_pod_t *pod, const cluster_delete_opts_t *o,
                       uint64_t cause);

void cluster_pod_delete(cluster_t *c, cluster_pod_t *pod, const cluster_delete_opts_t *o)
{
    pod_delete(c, pod, o, 0);
}

/* cause: the note that led to the deletion (a rollout's scale-down; 0: none known). */
static void pod_delete(cluster_t *c, cluster_pod_t *pod, const cluster_delete_opts_t *o,
                       uint64_t cause)
{
    if (!pod || pod->phase != CLUSTER_POD_RUNNING) return;
    pod_del_t *d = lb_calloc(1, sizeof *d);     /* freed with the cluster */
    lb_vec_push(&c->dels, d);
    d->c = c;
    d->pod = pod;
    if (o) d->o = *o;
    if (d->o.grace <= 0) d->o.grace = CLUSTER_GRACE_DEFAULT;
    if (d->o.drain <= 0) d->o.drain = CLUSTER_ISTIO_DRAIN_DEFAULT;
    if (d->o.pre_stop < 0) d->o.pre_stop = 0;
    sim_t *sim = net_sim(c->net);
    d->t0 = sim_now(sim);
    pod->phase = CLUSTER_POD_TERMINATING;
    d->note = explain_note(c->ex, pod->name, 0, cause, "deleted: terminating (endpoint "
                           "ready=false, terminating=true); preStop %llds, grace period %llds",
                           (long long)(d->o.pre_stop / SIM_S), (long long)(d->o.grace / SIM_S));
    explain_set_state(c->ex, pod->name, d->note);
    cluster_sync(c);
    notify(c, pod);
    if (d->o.pre_stop < d->o.grace) sim_schedule(sim, d->o.pre_stop, del_term_cb, d, NULL);
    sim_schedule(sim, d->o.grace, del_kill_cb, d, NULL);
}

/* ---- rolling updates (cluster.h) ---- */

typedef struct rollout {
    cluster_t *c;
    const k8s_deployment_t *d;
    cluster_rollout_opts_t o;
    LB_VEC(cluster_pod_t *) old, neu;   /* the old ReplicaSet's pods; the new one's */
    int seq;                            /* next new pod's name suffix */
    bool done;
    uint64_t note;                      /* "rolling update of ...": its notes' cause */
} rollout_t;

static const k8s_deployment_t *deployment_find(const cluster_t *c, const char *ns,
                                               const char *name)
{
    for (size_t j = 0; j < c->deps.n; j++) {
        const k8s_deployment_t *d = c->deps.v[j].dep;
        if (!strcmp(d->meta.ns, ns) && !strcmp(d->meta.name, name)) return d;
    }
    return NULL;
}

int cluster_deployment_replicas(const cluster_t *c, const char *ns, const char *deployment)
{
    const k8s_deployment_t *d = deployment_find(c, ns, deployment);
    return d ? d->replicas : 0;
}

static size_t dep_index(const cluster_t *c, const k8s_deployment_t *d)
{
    for (size_t j = 0; j < c->deps.n; j++)
        if (c->deps.v[j].dep == d) return j;
    assert(!"a rollout's Deployment has pods");
    return 0;
}

/* The scheduler's node for one more pod of d (as schedule_deployment ranks them, counting
 * the Deployment's running pods: PodTopologySpread skips terminating ones); NULL when none
 * fits with room. */
static cluster_node_t *rollout_node(cluster_t *c, const k8s_deployment_t *d)
{
    const dep_pods_t *dp = &c->deps.v[dep_index(c, d)];
    cluster_node_t *best = NULL;
    int best_same = 0;
    for (size_t i = 0; i < c->nodes.n; i++) {
        cluster_node_t *n = c->nodes.v[i];
        if (!fits(d, n) || n->pods >= n->max_pods) continue;
        int same = 0;
        for (size_t k = dp->first; k < dp->first + dp->n; k++)
            same += c->pods.v[k]->host == n && c->pods.v[k]->phase == CLUSTER_POD_RUNNING;
        if (!best || same < best_same || (same == best_same && n->pods < best->pods)) {
            best = n;
            best_same = same;
        }
    }
    return best;
}

static void rollout_start_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    cluster_t *c = a;
    cluster_pod_t *pod = b;
    if (pod->phase != CLUSTER_POD_RUNNING) return;
    explain_note(c->ex, pod->name, 0, 0, "containers started; Ready once kubelet's readiness "
                 "probe passes");
    pod_start_apps(c, pod, NULL);
    kubelet_start(pod, false);
    cluster_sync(c);
}

/* Scales the new ReplicaSet up by one pod: created unready, at the end of its
 * Deployment's range in c->pods. */
static bool rollout_scale_up(rollout_t *r)
{
    cluster_t *c = r->c;
    cluster_node_t *n = rollout_node(c, r->d);
    if (!n) {
        explain_note(c->ex, r->d->meta.name, 0, 0, "rolling update: no node fits a new pod "
                     "(it stays Pending)");
        return false;
    }
    size_t j = dep_index(c, r->d);
    cluster_pod_t *pod = pod_create(c, r->d, n, r->seq++);
    pod->ready = false;
    c->pods.n--;                                /* pod_create appended it: move it */
    size_t at = c->deps.v[j].first + c->deps.v[j].n;
    memmove(&c->pods.v[at + 1], &c->pods.v[at], (c->pods.n - at) * sizeof c->pods.v[0]);
    c->pods.v[at] = pod;
    c->pods.n++;
    c->deps.v[j].n++;
    for (size_t k = 0; k < c->deps.n; k++)
        if (k != j && c->deps.v[k].first >= at) c->deps.v[k].first++;
    lb_vec_push(&r->neu, pod);
    explain_note(c->ex, pod->name, 0, 0, "rolling update of %s/%s: new pod scheduled on %s "
                 "(unready; containers start in %.3f s)", r->d->meta.ns, r->d->meta.name,
                 n->node->name, (double)r->o.pod_start / SIM_S);
    sim_schedule(net_sim(c->net), r->o.pod_start, rollout_start_cb, c, pod);
    cluster_sync(c);
    notify(c, pod);
    return true;
}

/* One pass of the Deployment controller over r. */
static void rollout_reconcile(rollout_t *r)
{
    cluster_t *c = r->c;
    int replicas = r->d->replicas;
    int old_active = 0, old_avail = 0, new_active = 0, new_avail = 0;
    for (size_t i = 0; i < r->old.n; i++)
        if (r->old.v[i]->phase == CLUSTER_POD_RUNNING) {
            old_active++;
            old_avail += r->old.v[i]->ready;
        }
    for (size_t i = 0; i < r->neu.n; i++)
        if (r->neu.v[i]->phase == CLUSTER_POD_RUNNING) {
            new_active++;
            new_avail += r->neu.v[i]->ready;
        }
    /* reconcileNewReplicaSet: up to replicas + maxSurge pods, the new ones at most replicas */
    int want = replicas + r->o.max_surge - old_active;
    if (want > replicas) want = replicas;
    while (new_active < want && rollout_scale_up(r)) new_active++;
    /* reconcileOldReplicaSets: keep replicas - maxUnavailable available */
    int min_avail = replicas - r->o.max_unavailable;
    int max_down = old_active + new_active - min_avail - (new_active - new_avail);
    bool scaled_down = false;
    for (int pass = 0; pass < 2 && max_down > 0; pass++) {
        /* cleanupUnhealthyReplicas first (unready old pods), then available ones while the
         * available count allows */
        for (size_t i = 0; i < r->old.n && max_down > 0; i++) {
            cluster_pod_t *pod = r->old.v[i];
            if (pod->phase != CLUSTER_POD_RUNNING || pod->ready != (pass == 1)) continue;
            if (pass == 1 && old_avail + new_avail - min_avail <= 0) break;
            uint64_t why = explain_note(c->ex, pod->name, 0, r->note, "rolling update of "
                                        "%s/%s: old pod scaled down (%d of %d new pods "
                                        "available, %d old)", r->d->meta.ns,
                                        r->d->meta.name, new_avail, replicas, old_avail);
            old_avail -= pod->ready;
            max_down--;
            scaled_down = true;
            pod_delete(c, pod, &r->o.del, why);
        }
    }
    /* the old ReplicaSet's new size syncs the Deployment again: room for new pods */
    if (scaled_down) rollouts_kick(c);
    old_active = 0;
    for (size_t i = 0; i < r->old.n; i++) old_active += r->old.v[i]->phase == CLUSTER_POD_RUNNING;
    if (!old_active && new_avail >= replicas && !r->done) {
        r->done = true;
        explain_note(c->ex, r->d->meta.name, 0, 0, "rolling update of %s/%s complete: %d new "
                     "pods available", r->d->meta.ns, r->d->meta.name, new_avail);
    }
}

static void rollouts_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    (void)b;
    cluster_t *c = a;
    c->rollout_pending = false;
    for (size_t i = 0; i < c->rollouts.n; i++)
        if (!c->rollouts.v[i]->done) rollout_reconcile(c->rollouts.v[i]);
}

static void rollouts_free(cluster_t *c)
{
    for (size_t i = 0; i < c->rollouts.n; i++) {
        lb_vec_free(&c->rollouts.v[i]->old);
        lb_vec_free(&c->rollouts.v[i]->neu);
        lb_free(c->rollouts.v[i]);
    }
    lb_vec_free(&c->rollouts);
}

/* The controllers react to a change after the event that made it (never inside it). */
static void rollouts_kick(cluster_t *c)
{
    if (c->rollout_pending || !c->rollouts.n) return;
    c->rollout_pending = true;
    sim_schedule(net_sim(c->net), 0, rollouts_cb, c, NULL);
}

int cluster_rollout(cluster_t *c, const char *ns, const char *deployment,
                    const cluster_rollout_opts_t *o)
{
    const k8s_deployment_t *d = deployment_find(c, ns, deployment);
    if (!d) return LB_ENOENT;
    if (o->max_surge < 0 || o->max_unavailable < 0 || (!o->max_surge && !o->max_unavailable))
        return LB_EINVAL;
    for (size_t i = 0; i < c->rollouts.n; i++)
        if (c->rollouts.v[i]->d == d && !c->rollouts.v[i]->done) return LB_ESTATE;
    rollout_t *r = lb_calloc(1, sizeof *r);     /* freed with the cluster */
    r->c = c;
    r->d = d;
    r->o = *o;
    const dep_pods_t *dp = &c->deps.v[dep_index(c, d)];
    for (size_t k = dp->first; k < dp->first + dp->n; k++)
        if (c->pods.v[k]->phase == CLUSTER_POD_RUNNING) lb_vec_push(&r->old, c->pods.v[k]);
    r->seq = (int)dp->n;
    lb_vec_push(&c->rollouts, r);
    r->note = explain_note(c->ex, d->meta.name, 0, 0, "rolling update of %s/%s: %d replicas, "
                           "maxSurge %d, maxUnavailable %d", ns, deployment, d->replicas,
                           o->max_surge, o->max_unavailable);
    rollout_reconcile(r);
    return 0;
}
