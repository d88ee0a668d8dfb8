/* kube_proxy.c -- kube-proxy (iptables mode, Kubernetes 1.29) on one node: the rules of
 * pkg/proxy/iptables/proxier.go syncProxyRules() line for line and in its order, its jump
 * rules, endpoint choice as pkg/proxy/topology.go CategorizeEndpoints(), and the
 * healthCheckNodePort servers of pkg/proxy/healthcheck/service_health.go.
 *
 * Data: kp_t holds a list of service ports (svc_t), each with its endpoints sorted by
 * "ip:port" as the EndpointsMap is (endpointslicecache.go byEndpoint), and one health-check
 * server per Service that has a healthCheckNodePort. Invariant: a svc_t's chain names are
 * derived from its ServicePortName string and lowercase protocol, computed once at set.
 * Nothing in a svc_t depends on the node, so the kube-proxies of a cluster (sharing a
 * kp_text_cache) share one svc_t per identical service port: counted references, found
 * through the cache, copied before a kube-proxy changes one that others hold. The chains
 * a sync wrote (active_t) are shared the same way.
 *
 * Where 1.29 differs from other releases (1.29 is followed):
 *   - no KUBE-MARK-DROP (KEP-3178, 1.25): "has no local endpoints" is a filter-table DROP
 *     in KUBE-EXTERNAL-SERVICES; older releases (e.g. 1.22-1.24) had a KUBE-MARK-DROP rule
 *     in KUBE-XLB-<hash> / KUBE-SVL-<hash>;
 *   - KUBE-EXT-<hash> replaced KUBE-XLB-<hash> (1.24);
 *   - new in 1.29 (kubernetes#120412): no INVALID drop when nf_conntrack_tcp_be_liberal=1;
 *   - 1.30 added `-m nfacct` counters to two rules and localhost NodePort rules; 1.29 has
 *     neither.
 * Not modelled: partial syncs (MinimizeIPTablesRestore writes only changed services; the
 * resulting tables are the same), topology hints, IPv6, the min-sync-period rate limit
 * (the caller decides when kp_sync runs), health-check servers bound to each
 * --nodeport-addresses IP (they listen on every address here). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/sha.h>
#include "kube_proxy_int.h"
#include "netfilter.h"
#include "http.h"

/* Chain names (proxier.go constants). */
#define CH_SERVICES "KUBE-SERVICES"
#define CH_EXT_SERVICES "KUBE-EXTERNAL-SERVICES"
#define CH_NODEPORTS "KUBE-NODEPORTS"
#define CH_POSTROUTING "KUBE-POSTROUTING"
#define CH_MARK_MASQ "KUBE-MARK-MASQ"
#define CH_FORWARD "KUBE-FORWARD"
#define CH_PROXY_FW "KUBE-PROXY-FIREWALL"
#define CH_KUBELET_FW "KUBE-FIREWALL"

#define PFX_SVC "KUBE-SVC-"
#define PFX_SVL "KUBE-SVL-"
#define PFX_FW "KUBE-FW-"
#define PFX_EXT "KUBE-EXT-"
#define PFX_SEP "KUBE-SEP-"

/* ---- the service and endpoint store ------------------------------------------------------ */

typedef struct ep {
    uint32_t ip;
    uint16_t port;
    char *node;
    bool ready, serving, terminating;
    char str[24];                       /* "ip:port" (BaseEndpointInfo.String) */
    char chain[KP_CHAIN_MAX];           /* KUBE-SEP-... */
} ep_t;

typedef struct svc {
    char *ns, *name, *port_name;
    char proto[8];                      /* lowercase, as proxier.go uses it */
    char *spn;                          /* ServicePortName.String() */
    uint32_t cluster_ip;
    uint16_t port, node_port, hcnp;
    LB_VEC(uint32_t) lb_ips;
    LB_VEC(uint32_t) ext_ips;
    LB_VEC(kp_cidr_t) src_ranges;
    kp_policy_t etp, itp;
    bool affinity;
    int affinity_s;
    LB_VEC(ep_t) eps;
    /* the endpoints as kp_service_set was given them (order and all), to see that a
     * repeated push changes nothing; raw_ok false once anything else changed eps */
    LB_VEC(struct raw_ep { uint32_t ip; uint16_t port; uint8_t flags; char *node; }) raw;
    bool raw_ok;
    kp_policy_t in_itp;                 /* internal_policy as given */
    char svc_chain[KP_CHAIN_MAX], svl_chain[KP_CHAIN_MAX];
    char ext_chain[KP_CHAIN_MAX], fw_chain[KP_CHAIN_MAX];
    /* sharing: the kube-proxies holding it (freed at 0); the cache it can be found in
     * (NULL: none) and its slot there; a 128-bit hash of its content for sync_key, valid
     * while keyed */
    int refs;
    struct kp_text_cache *reg;
    size_t reg_pos;
    uint64_t h;                         /* svc_hash of its key (ns, name, port name, proto) */
    bool keyed;
    uint64_t key[2];
} svc_t;

/* The chains one sync wrote (the "existing" set the next one compares against), shared by
 * the kube-proxies that took the same restore text; immutable, freed at refs 0. key: a
 * hash of the names, for sync_key. */
typedef struct active {
    int refs;
    size_t n;
    char **v;
    uint64_t key[2];
} active_t;

/* A healthCheckNodePort listener (service_health.go hcInstance): one per Service. */
typedef struct hc {
    kp_t *kp;
    char *ns, *name;
    uint16_t port;
    http_server_t *srv;
    int endpoints;                      /* localEndpoints as of the last sync */
    uint64_t n200, n503;
} hc_t;

struct kp {
    net_node_t *node;
    char *node_name;
    int mbit;
    kp_cidr_t cluster_cidr;
    bool masq_all, localhost_np, random_fully, be_liberal, term_eps;
    LB_VEC(kp_cidr_t) np_addrs;
    char mark[16];                      /* fmt.Sprintf("%#08x", 1<<bit): "0x00004000" */
    LB_VEC(svc_t *) svcs;
    lb_index_t svc_index;               /* hash of (ns, name, port name, proto) -> svcs */
    active_t *active;                   /* service chains written by the last sync
                                         * (a reference; NULL: none yet) */
    LB_VEC(hc_t *) hcs;
    bool healthy;
    kp_text_cache_t *tc;                /* borrowed, may be NULL */
    kp_mode_t mode;                     /* nftables: kube_proxy_nft.c writes the rules */
    kp_cidr_t service_cidr;             /* nftables mode's ServiceCIDRs */
    struct nft_cache *nft_cache;        /* borrowed, may be NULL */
};

void kp_config_default(kp_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->masquerade_bit = KP_MASQUERADE_BIT_DEFAULT;
    c->localhost_nodeports = true;      /* iptables.localhostNodePorts default */
    c->random_fully = true;             /* every supported distro ships iptables >= 1.6.2 */
    c->terminating_endpoints = true;    /* ProxyTerminatingEndpoints, on since 1.26 */
    c->conntrack_tcp_established = 24 * 3600 * SIM_S;
    c->conntrack_tcp_close_wait = 3600 * SIM_S;
    c->conntrack_max_per_core = 32768;
    c->conntrack_min = 131072;
    c->node_cpus = 2;
}

int kp_conntrack_max(const kp_config_t *cfg)
{
    /* server_linux.go getConntrackMax(): per-core scaling, floored at min */
    if (cfg->conntrack_max_per_core <= 0) return 0;
    long long m = (long long)cfg->conntrack_max_per_core * (cfg->node_cpus > 0 ? cfg->node_cpus : 1);
    if (m < cfg->conntrack_min) m = cfg->conntrack_min;
    return m > INT32_MAX ? INT32_MAX : (int)m;
}

/* kube-proxy's conntrack setup (server_linux.go: ct.SetMax, SetTCPEstablishedTimeout,
 * SetTCPCloseWaitTimeout): the node's sysctls change before the first sync, so every
 * connection through the node is forgotten after 24 h idle, not the kernel's 5 days. */
static void apply_conntrack(net_node_t *node, const kp_config_t *cfg)
{
    nf_t *nf = nf_get(node);
    nf_params_t p = *nf_params(nf);
    int max = kp_conntrack_max(cfg);
    if (max > 0) p.ct_max = max;
    if (cfg->conntrack_tcp_established > 0) p.to_established = cfg->conntrack_tcp_established;
    if (cfg->conntrack_tcp_close_wait > 0) p.to_close_wait = cfg->conntrack_tcp_close_wait;
    nf_set_params(nf, &p);
}

/* ---- names and hashes --------------------------------------------------------------------- */

/* base32.StdEncoding of sha256(text)[...], first 16 characters = the first 10 bytes. */
static void hash16(const char *text, char out[KP_HASH_LEN + 1])
{
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)text, strlen(text), d);
    for (int g = 0; g < 2; g++) {               /* two groups of 5 bytes -> 8 chars each */
        uint64_t v = 0;
        for (int i = 0; i < 5; i++) v = v << 8 | d[g * 5 + i];
        for (int i = 0; i < 8; i++) out[g * 8 + i] = b32[(v >> (35 - 5 * i)) & 31];
    }
    out[KP_HASH_LEN] = '\0';
}

const char *kp_chain_name(char out[KP_CHAIN_MAX], const char *prefix, const char *spn,
                          const char *protocol, const char *endpoint)
{
    /* portProtoHash(servicePortName, protocol) / servicePortEndpointChainName(..., endpoint) */
    char *text = lb_sprintf("%s%s%s", spn, protocol, endpoint ? endpoint : "");
    char h[KP_HASH_LEN + 1];
    hash16(text, h);
    lb_free(text);
    snprintf(out, KP_CHAIN_MAX, "%s%s", prefix, h);
    return out;
}

const char *kp_service_port_name(char *out, size_t n, const char *ns, const char *name,
                                 const char *port_name)
{
    /* ServicePortName.String(): NamespacedName + fmtPortName (":" + name, "" if unnamed) */
    bool named = port_name && *port_name;
    snprintf(out, n, "%s/%s%s%s", ns, name, named ? ":" : "", named ? port_name : "");
    return out;
}

static bool is_service_chain(const char *c)
{
    /* proxier.go isServiceChainName */
    return !strncmp(c, PFX_SVC, 9) || !strncmp(c, PFX_SVL, 9) || !strncmp(c, PFX_SEP, 9) ||
           !strncmp(c, PFX_FW, 8) || !strncmp(c, PFX_EXT, 9);
}

/* ---- lifetime ----------------------------------------------------------------------------- */

kp_t *kp_new(net_node_t *node, const kp_config_t *cfg)
{
    const char *name = cfg->node_name ? cfg->node_name : node ? node->name : NULL;
    assert(name && cfg->masquerade_bit >= 0 && cfg->masquerade_bit < 32);
    kp_t *kp = lb_calloc(1, sizeof *kp);
    kp->node = node;
    kp->node_name = lb_strdup(name);
    kp->mbit = cfg->masquerade_bit;
    kp->cluster_cidr = cfg->cluster_cidr;
    kp->masq_all = cfg->masquerade_all;
    kp->random_fully = cfg->random_fully;
    kp->be_liberal = cfg->conntrack_tcp_be_liberal;
    kp->term_eps = cfg->terminating_endpoints;
    for (size_t i = 0; i < cfg->n_nodeport_addresses; i++)
        lb_vec_push(&kp->np_addrs, cfg->nodeport_addresses[i]);
    /* NewProxier: localhostNodePorts is turned off unless nodePortAddresses contains
     * 127.0.0.1 (an empty list, or 0.0.0.0/0, matches everything). */
    bool match_all = kp->np_addrs.n == 0, lo = false;
    for (size_t i = 0; i < kp->np_addrs.n; i++) {
        kp_cidr_t c = kp->np_addrs.v[i];
        if (c.plen == 0) match_all = true;
        if ((0x7f000001u & lb_prefix_mask(c.plen)) == (c.addr & lb_prefix_mask(c.plen))) lo = true;
    }
    kp->localhost_np = cfg->localhost_nodeports && (match_all || lo);
    /* masqueradeMark := fmt.Sprintf("%#08x", 1<<masqueradeBit): Go pads 8 digits after
     * the 0x, so the restore text says 0x00004000 (iptables-save prints 0x4000). */
    snprintf(kp->mark, sizeof kp->mark, "0x%08x", 1u << kp->mbit);
    kp->healthy = true;
    kp->tc = cfg->text_cache;
    kp->mode = cfg->mode;
    kp->service_cidr = cfg->service_cidr;
    kp->nft_cache = cfg->nft_cache;
    if (node) apply_conntrack(node, cfg);
    return kp;
}

static void shared_forget(svc_t *s);

/* Drops one kube-proxy's reference to s; the last one frees it (and takes it out of the
 * cache it can be found in). */
static void svc_release(svc_t *s)
{
    assert(s->refs > 0);
    if (--s->refs > 0) return;
    if (s->reg) shared_forget(s);
    lb_free(s->ns);
    lb_free(s->name);
    lb_free(s->port_name);
    lb_free(s->spn);
    lb_vec_free(&s->lb_ips);
    lb_vec_free(&s->ext_ips);
    lb_vec_free(&s->src_ranges);
    for (size_t i = 0; i < s->eps.n; i++) lb_free(s->eps.v[i].node);
    lb_vec_free(&s->eps);
    for (size_t i = 0; i < s->raw.n; i++) lb_free(s->raw.v[i].node);
    lb_vec_free(&s->raw);
    lb_free(s);
}

static uint8_t ep_flags(const kp_endpoint_t *e)
{
    return (uint8_t)(e->ready | e->serving << 1 | e->terminating << 2);
}

/* True when pushing sp to the existing o would change nothing (a resync of an unchanged
 * Service: on a large cluster most of them). */
static bool svc_unchanged(const svc_t *o, const kp_service_port_t *sp)
{
    if (!o->raw_ok || o->cluster_ip != sp->cluster_ip || o->port != sp->port ||
        o->node_port != sp->node_port || o->etp != sp->external_policy ||
        o->in_itp != sp->internal_policy || o->affinity != sp->affinity_client_ip ||
        o->affinity_s != (sp->affinity_timeout_s > 0 ? sp->affinity_timeout_s
                                                     : KP_AFFINITY_TIMEOUT_DEFAULT) ||
        o->hcnp != (sp->external_policy == KP_POLICY_LOCAL ? sp->health_check_node_port : 0) ||
        o->lb_ips.n != sp->n_lb_ips || o->ext_ips.n != sp->n_external_ips ||
        o->src_ranges.n != sp->n_lb_source_ranges || o->raw.n != sp->n_endpoints)
        return false;
    for (size_t i = 0; i < sp->n_lb_ips; i++)
        if (o->lb_ips.v[i] != sp->lb_ips[i]) return false;
    for (size_t i = 0; i < sp->n_external_ips; i++)
        if (o->ext_ips.v[i] != sp->external_ips[i]) return false;
    for (size_t i = 0; i < sp->n_lb_source_ranges; i++)
        if (o->src_ranges.v[i].addr != sp->lb_source_ranges[i].addr ||
            o->src_ranges.v[i].plen != sp->lb_source_ranges[i].plen)
            return false;
    for (size_t i = 0; i < sp->n_endpoints; i++) {
        const kp_endpoint_t *e = &sp->endpoints[i];
        const struct raw_ep *r = &o->raw.v[i];
        if (r->ip != e->ip || r->port != e->port || r->flags != ep_flags(e) ||
            !r->node != !e->node_name || (r->node && strcmp(r->node, e->node_name)))
            return false;
    }
    return true;
}

static void hc_free(hc_t *h)
{
    if (h->srv) http_server_free(h->srv);
    lb_free(h->ns);
    lb_free(h->name);
    lb_free(h);
}

static void active_release(active_t *a)
{
    if (!a || --a->refs > 0) return;
    for (size_t i = 0; i < a->n; i++) lb_free(a->v[i]);
    lb_free(a->v);
    lb_free(a);
}

void kp_free(kp_t *kp)
{
    if (!kp) return;
    for (size_t i = 0; i < kp->svcs.n; i++) svc_release(kp->svcs.v[i]);
    lb_vec_free(&kp->svcs);
    lb_index_free(&kp->svc_index);
    active_release(kp->active);
    for (size_t i = 0; i < kp->hcs.n; i++) hc_free(kp->hcs.v[i]);
    lb_vec_free(&kp->hcs);
    lb_vec_free(&kp->np_addrs);
    lb_free(kp->node_name);
    lb_free(kp);
}

void kp_set_healthy(kp_t *kp, bool healthy) { kp->healthy = healthy; }

/* ---- services and endpoints --------------------------------------------------------------- */

static bool proto_lower(const char *p, char out[8])
{
    if (!p || !strcmp(p, "TCP")) strcpy(out, "tcp");
    else if (!strcmp(p, "UDP")) strcpy(out, "udp");
    else if (!strcmp(p, "SCTP")) strcpy(out, "sctp");
    else return false;
    return true;
}

static bool str_eq(const char *a, const char *b)
{
    return !strcmp(a ? a : "", b ? b : "");
}

static uint64_t svc_hash(const char *ns, const char *name, const char *port_name,
                         const char *proto_lc)
{
    return lb_hash_str(ns) ^ lb_mix64(lb_hash_str(name) ^
                                      lb_mix64(lb_hash_str(port_name ? port_name : "") ^
                                               lb_mix64(lb_hash_str(proto_lc))));
}

static bool svc_is(const svc_t *s, const char *ns, const char *name, const char *port_name,
                   const char *proto_lc)
{
    return !strcmp(s->ns, ns) && !strcmp(s->name, name) && str_eq(s->port_name, port_name) &&
           !strcmp(s->proto, proto_lc);
}

/* kp's service port with that key (h = svc_hash of it), its position in *idx; NULL if none. */
static svc_t *svc_find(const kp_t *kp, uint64_t h, const char *ns, const char *name,
                       const char *port_name, const char *proto_lc, size_t *idx)
{
    for (size_t it, i = lb_index_first(&kp->svc_index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&kp->svc_index, h, &it)) {
        svc_t *s = kp->svcs.v[i];
        if (svc_is(s, ns, name, port_name, proto_lc)) {
            if (idx) *idx = i;
            return s;
        }
    }
    return NULL;
}

static int ep_cmp(const void *a, const void *b)
{
    return strcmp(((const ep_t *)a)->str, ((const ep_t *)b)->str);
}

static void chain_name(kp_t *kp, char out[KP_CHAIN_MAX], const char *prefix, const char *spn,
                       const char *protocol, const char *endpoint);

/* Replaces s's endpoints: copied, named, sorted by "ip:port", duplicates dropped (the
 * EndpointsMap is keyed by that string). */
static void svc_set_eps(kp_t *kp, svc_t *s, const kp_endpoint_t *eps, size_t n)
{
    for (size_t i = 0; i < s->eps.n; i++) lb_free(s->eps.v[i].node);
    s->eps.n = 0;
    lb_vec_reserve(&s->eps, n);
    lb_index_t seen = { 0 };                /* "ip:port" -> eps position: the first wins */
    for (size_t i = 0; i < n; i++) {
        ep_t e = {0};
        char ip[16];
        e.ip = eps[i].ip;
        e.port = eps[i].port;
        e.ready = eps[i].ready;
        e.serving = eps[i].serving;
        e.terminating = eps[i].terminating;
        snprintf(e.str, sizeof e.str, "%s:%u", lb_ip_str(e.ip, ip), e.port);
        uint64_t h = lb_hash_str(e.str);
        bool dup = false;
        for (size_t it, j = lb_index_first(&seen, h, &it); j != LB_INDEX_NONE && !dup;
             j = lb_index_next(&seen, h, &it))
            dup = !strcmp(s->eps.v[j].str, e.str);
        if (dup) continue;
        e.node = eps[i].node_name ? lb_strdup(eps[i].node_name) : NULL;
        chain_name(kp, e.chain, PFX_SEP, s->spn, s->proto, e.str);
        lb_vec_push(&s->eps, e);
        lb_index_add(&seen, h, s->eps.n - 1);
    }
    lb_index_free(&seen);
    if (s->eps.n > 1) qsort(s->eps.v, s->eps.n, sizeof s->eps.v[0], ep_cmp);
}

/* A new service port from sp (proto: its lowercase protocol), held once. */
static svc_t *svc_create(kp_t *kp, const kp_service_port_t *sp, const char *proto, uint64_t h)
{
    svc_t *s = lb_calloc(1, sizeof *s);
    s->refs = 1;
    s->h = h;
    s->ns = lb_strdup(sp->ns);
    s->name = lb_strdup(sp->name);
    s->port_name = lb_strdup(sp->port_name ? sp->port_name : "");
    strcpy(s->proto, proto);
    char spn[512];
    s->spn = lb_strdup(kp_service_port_name(spn, sizeof spn, s->ns, s->name, s->port_name));
    s->cluster_ip = sp->cluster_ip;
    s->port = sp->port;
    s->node_port = sp->node_port;
    /* newBaseServiceInfo: healthCheckNodePort only where apiservice.NeedsHealthCheck
     * (type LoadBalancer with Local external policy); elsewhere the field is ignored */
    s->hcnp = sp->external_policy == KP_POLICY_LOCAL ? sp->health_check_node_port : 0;
    for (size_t i = 0; i < sp->n_lb_ips; i++) lb_vec_push(&s->lb_ips, sp->lb_ips[i]);
    for (size_t i = 0; i < sp->n_external_ips; i++) lb_vec_push(&s->ext_ips, sp->external_ips[i]);
    for (size_t i = 0; i < sp->n_lb_source_ranges; i++)
        lb_vec_push(&s->src_ranges, sp->lb_source_ranges[i]);
    s->etp = sp->external_policy;
    s->itp = s->in_itp = sp->internal_policy;
    s->affinity = sp->affinity_client_ip;
    s->affinity_s = sp->affinity_timeout_s > 0 ? sp->affinity_timeout_s : KP_AFFINITY_TIMEOUT_DEFAULT;
    chain_name(kp, s->svc_chain, PFX_SVC, s->spn, s->proto, NULL);
    chain_name(kp, s->svl_chain, PFX_SVL, s->spn, s->proto, NULL);
    chain_name(kp, s->ext_chain, PFX_EXT, s->spn, s->proto, NULL);
    chain_name(kp, s->fw_chain, PFX_FW, s->spn, s->proto, NULL);
    svc_set_eps(kp, s, sp->endpoints, sp->n_endpoints);
    lb_vec_reserve(&s->raw, sp->n_endpoints);
    for (size_t i = 0; i < sp->n_endpoints; i++) {
        const kp_endpoint_t *e = &sp->endpoints[i];
        struct raw_ep r = { e->ip, e->port, ep_flags(e), e->node_name ? lb_strdup(e->node_name) : NULL };
        lb_vec_push(&s->raw, r);
    }
    s->raw_ok = true;
    return s;
}

/* A private copy of s (held once, in no cache). */
static svc_t *svc_clone(const svc_t *o)
{
    svc_t *s = lb_calloc(1, sizeof *s);
    *s = *o;
    s->refs = 1;
    s->reg = NULL;
    s->keyed = false;
    s->ns = lb_strdup(o->ns);
    s->name = lb_strdup(o->name);
    s->port_name = lb_strdup(o->port_name);
    s->spn = lb_strdup(o->spn);
    memset(&s->lb_ips, 0, sizeof s->lb_ips);
    memset(&s->ext_ips, 0, sizeof s->ext_ips);
    memset(&s->src_ranges, 0, sizeof s->src_ranges);
    memset(&s->eps, 0, sizeof s->eps);
    memset(&s->raw, 0, sizeof s->raw);
    for (size_t i = 0; i < o->lb_ips.n; i++) lb_vec_push(&s->lb_ips, o->lb_ips.v[i]);
    for (size_t i = 0; i < o->ext_ips.n; i++) lb_vec_push(&s->ext_ips, o->ext_ips.v[i]);
    for (size_t i = 0; i < o->src_ranges.n; i++) lb_vec_push(&s->src_ranges, o->src_ranges.v[i]);
    for (size_t i = 0; i < o->eps.n; i++) {
        ep_t e = o->eps.v[i];
        e.node = e.node ? lb_strdup(e.node) : NULL;
        lb_vec_push(&s->eps, e);
    }
    for (size_t i = 0; i < o->raw.n; i++) {
        struct raw_ep r = o->raw.v[i];
        r.node = r.node ? lb_strdup(r.node) : NULL;
        lb_vec_push(&s->raw, r);
    }
    return s;
}

/* kp->svcs.v[i] made kp's own before kp changes it: copied when other kube-proxies hold it
 * too, taken out of the cache (it will no longer be what it was found by). Returns it. */
static svc_t *svc_own(kp_t *kp, size_t i)
{
    svc_t *s = kp->svcs.v[i];
    if (s->refs > 1) {
        svc_t *c = svc_clone(s);
        s->refs--;
        kp->svcs.v[i] = s = c;
    } else if (s->reg) {
        shared_forget(s);
    }
    s->keyed = false;
    return s;
}

static svc_t *shared_find(kp_text_cache_t *tc, uint64_t h, const kp_service_port_t *sp,
                          const char *proto_lc);
static void shared_add(kp_text_cache_t *tc, svc_t *s);

int kp_service_set(kp_t *kp, const kp_service_port_t *sp)
{
    char proto[8];
    if (!sp || !sp->ns || !*sp->ns || !sp->name || !*sp->name || sp->port == 0 ||
        !proto_lower(sp->protocol, proto))
        return LB_EINVAL;
    uint64_t h = svc_hash(sp->ns, sp->name, sp->port_name, proto);
    size_t idx = 0;
    svc_t *old = svc_find(kp, h, sp->ns, sp->name, sp->port_name, proto, &idx);
    if (old && svc_unchanged(old, sp)) return 0;
    /* another kube-proxy of the cluster has the same service port already: share it */
    svc_t *s = kp->tc ? shared_find(kp->tc, h, sp, proto) : NULL;
    if (s) {
        s->refs++;
    } else {
        s = svc_create(kp, sp, proto, h);
        if (kp->tc) shared_add(kp->tc, s);
    }
    if (old) {
        svc_release(old);
        kp->svcs.v[idx] = s;            /* same key: the index stays right */
    } else {
        lb_vec_push(&kp->svcs, s);
        lb_index_add(&kp->svc_index, h, kp->svcs.n - 1);
    }
    return 0;
}

int kp_service_delete(kp_t *kp, const char *ns, const char *name, const char *port_name,
                      const char *protocol)
{
    char proto[8];
    size_t idx = 0;
    if (!ns || !name || !proto_lower(protocol, proto)) return LB_EINVAL;
    svc_t *s = svc_find(kp, svc_hash(ns, name, port_name, proto), ns, name, port_name, proto,
                        &idx);
    if (!s) return LB_ENOENT;
    svc_release(s);
    memmove(&kp->svcs.v[idx], &kp->svcs.v[idx + 1], (kp->svcs.n - idx - 1) * sizeof(svc_t *));
    kp->svcs.n--;
    lb_index_clear(&kp->svc_index);         /* positions moved: index them again */
    for (size_t i = 0; i < kp->svcs.n; i++) lb_index_add(&kp->svc_index, kp->svcs.v[i]->h, i);
    return 0;
}

int kp_endpoints_set(kp_t *kp, const char *ns, const char *name, const char *port_name,
                     const kp_endpoint_t *eps, size_t n)
{
    int count = 0;
    for (size_t i = 0; i < kp->svcs.n; i++) {
        svc_t *s = kp->svcs.v[i];
        if (strcmp(s->ns, ns) || strcmp(s->name, name)) continue;
        if (port_name && strcmp(s->port_name, port_name)) continue;
        s = svc_own(kp, i);
        svc_set_eps(kp, s, eps, n);
        s->raw_ok = false;
        count++;
    }
    return count ? count : LB_ENOENT;
}

int kp_endpoint_conditions(kp_t *kp, uint32_t ip, bool ready, bool serving, bool terminating)
{
    int count = 0;
    for (size_t i = 0; i < kp->svcs.n; i++) {
        svc_t *s = kp->svcs.v[i];
        for (size_t j = 0; j < s->eps.n; j++) {
            const ep_t *e = &s->eps.v[j];
            if (e->ip != ip ||
                (e->ready == ready && e->serving == serving && e->terminating == terminating))
                continue;
            s = svc_own(kp, i);
            ep_t *w = &s->eps.v[j];
            w->ready = ready;
            w->serving = serving;
            w->terminating = terminating;
            s->raw_ok = false;
            count++;
        }
    }
    return count;
}

/* ---- endpoint categories (pkg/proxy/topology.go CategorizeEndpoints) ---------------------- */

static bool ep_local(const kp_t *kp, const ep_t *e)
{
    return e->node && !strcmp(e->node, kp->node_name);
}

static bool svc_ext_accessible(const svc_t *s)
{
    /* BaseServicePortInfo.ExternallyAccessible */
    return s->node_port || s->lb_ips.n || s->ext_ips.n;
}
static bool svc_etp_local(const svc_t *s)
{
    /* apiservice.ExternalPolicyLocal: only for externally accessible services */
    return s->etp == KP_POLICY_LOCAL && svc_ext_accessible(s);
}
static bool svc_itp_local(const svc_t *s) { return s->itp == KP_POLICY_LOCAL; }
static bool svc_uses_cluster(const svc_t *s) { return !svc_itp_local(s) || svc_ext_accessible(s); }
static bool svc_uses_local(const svc_t *s) { return svc_itp_local(s) || svc_etp_local(s); }

typedef struct cats {
    const ep_t **cluster, **local, **all;
    size_t n_cluster, n_local, n_all;
    bool has_any;
} cats_t;

static void cats_free(cats_t *c)
{
    lb_free(c->cluster);
    lb_free(c->local);
    lb_free(c->all);
}

static int epp_cmp(const void *a, const void *b)
{
    return strcmp((*(const ep_t *const *)a)->str, (*(const ep_t *const *)b)->str);
}

/* Fills c; the caller frees with cats_free. Topology hints are not modelled (without
 * hints canUseTopology is false). */
static void categorize(const kp_t *kp, const svc_t *s, cats_t *c)
{
    size_t n = s->eps.n;
    memset(c, 0, sizeof *c);
    c->cluster = lb_calloc(n + 1, sizeof *c->cluster);
    c->local = lb_calloc(n + 1, sizeof *c->local);
    c->all = lb_calloc(2 * n + 1, sizeof *c->all);
    if (svc_uses_cluster(s)) {
        for (size_t i = 0; i < n; i++)
            if (s->eps.v[i].ready) c->cluster[c->n_cluster++] = &s->eps.v[i];
        /* no ready endpoint anywhere: fall back to serving, terminating ones */
        if (!c->n_cluster && kp->term_eps)
            for (size_t i = 0; i < n; i++)
                if (s->eps.v[i].serving && s->eps.v[i].terminating)
                    c->cluster[c->n_cluster++] = &s->eps.v[i];
        if (c->n_cluster) c->has_any = true;
    }
    if (!svc_uses_local(s)) {
        memcpy(c->all, c->cluster, c->n_cluster * sizeof *c->all);
        c->n_all = c->n_cluster;
        return;
    }
    bool local_ready = false, local_st = false, use_st = false;
    for (size_t i = 0; i < n; i++) {
        const ep_t *e = &s->eps.v[i];
        if (e->ready) {
            c->has_any = true;
            if (ep_local(kp, e)) local_ready = true;
        } else if (kp->term_eps && e->serving && e->terminating) {
            c->has_any = true;
            if (ep_local(kp, e)) local_st = true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const ep_t *e = &s->eps.v[i];
        if (!ep_local(kp, e)) continue;
        if (local_ready ? e->ready : local_st && e->serving && e->terminating)
            c->local[c->n_local++] = e;
    }
    use_st = !local_ready && local_st;
    if (!svc_uses_cluster(s)) {
        memcpy(c->all, c->local, c->n_local * sizeof *c->all);
        c->n_all = c->n_local;
        return;
    }
    if (!use_st) {              /* clusterEndpoints is a superset of localEndpoints */
        memcpy(c->all, c->cluster, c->n_cluster * sizeof *c->all);
        c->n_all = c->n_cluster;
        return;
    }
    /* merge (a Go map there, so unordered; sorted here for determinism) */
    for (size_t i = 0; i < c->n_cluster; i++) c->all[c->n_all++] = c->cluster[i];
    for (size_t i = 0; i < c->n_local; i++) {
        bool dup = false;
        for (size_t j = 0; j < c->n_cluster && !dup; j++) dup = c->cluster[j] == c->local[i];
        if (!dup) c->all[c->n_all++] = c->local[i];
    }
    qsort(c->all, c->n_all, sizeof *c->all, epp_cmp);
}

/* ---- text output (proxyutil.LineBuffer) ---------------------------------------------------- */

typedef struct sb { char *v; size_t n, cap; } sb_t;

static void sb_vadd(sb_t *b, const char *fmt, va_list ap)
{
    va_list aq;
    va_copy(aq, ap);
    int k = vsnprintf(NULL, 0, fmt, aq);
    va_end(aq);
    assert(k >= 0);
    lb_vec_reserve(b, b->n + (size_t)k + 1);
    vsnprintf(b->v + b->n, (size_t)k + 1, fmt, ap);
    b->n += (size_t)k;
}

/* Appends one formatted line and its newline. */
static void line(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vadd(b, fmt, ap);
    va_end(ap);
    lb_vec_reserve(b, b->n + 2);
    b->v[b->n++] = '\n';
    b->v[b->n] = '\0';
}

static void sb_cat(sb_t *b, const sb_t *o)
{
    if (!o->n) return;
    lb_vec_reserve(b, b->n + o->n + 1);
    memcpy(b->v + b->n, o->v, o->n);
    b->n += o->n;
    b->v[b->n] = '\0';
}

static char *sb_take(sb_t *b)
{
    if (!b->v) return lb_strdup("");
    return b->v;
}

/* utiliptables.MakeChainLine */
static void chain_line(sb_t *b, const char *chain) { line(b, ":%s - [0:0]", chain); }

static const char *cidr_str(kp_cidr_t c, char buf[20])
{
    char ip[16];
    snprintf(buf, 20, "%s/%d", lb_ip_str(c.addr, ip), c.plen);
    return buf;
}

static bool cidr_has(kp_cidr_t c, uint32_t a)
{
    uint32_t m = lb_prefix_mask(c.plen);
    return (a & m) == (c.addr & m);
}

/* The four buffers of syncProxyRules and the set of NAT chains it keeps. */
typedef struct gen {
    const kp_t *kp;
    sb_t fchains, frules, nchains, nrules;
    LB_VEC(const char *) active;        /* borrowed chain names */
    lb_index_t active_ix;               /* name hash -> active position */
    bool large;                         /* largeClusterMode */
    bool node_dep;                      /* the text depends on which node writes it */
    bool detect;                        /* localDetector.IsImplemented() */
    char cidr[20];
} gen_t;

static void activate(gen_t *g, sb_t *chains, const char *chain)
{
    chain_line(chains, chain);
    lb_vec_push(&g->active, chain);
    lb_index_add(&g->active_ix, lb_hash_str(chain), g->active.n - 1);
}

/* `-m comment --comment C ` unless largeClusterMode (appendServiceCommentLocked). */
static const char *svc_comment(const gen_t *g, const char *c, char *buf, size_t n)
{
    if (g->large) return "";
    snprintf(buf, n, "-m comment --comment %s ", c);
    return buf;
}

/* writeServiceToEndpointRules: affinity checks, then one rule per endpoint with
 * --probability 1/(n-i) (computeProbability: %0.10f), the last one unconditional. */
static void endpoint_rules(gen_t *g, const svc_t *s, const char *chain, const ep_t *const *eps,
                           size_t n)
{
    char cm[300], c[256];
    if (s->affinity)
        for (size_t i = 0; i < n; i++) {
            snprintf(c, sizeof c, "\"%s -> %s\"", s->spn, eps[i]->str);
            line(&g->nrules, "-A %s %s-m recent --name %s --rcheck --seconds %d --reap -j %s",
                 chain, svc_comment(g, c, cm, sizeof cm), eps[i]->chain, s->affinity_s,
                 eps[i]->chain);
        }
    for (size_t i = 0; i < n; i++) {
        snprintf(c, sizeof c, "\"%s -> %s\"", s->spn, eps[i]->str);
        if (i + 1 < n)
            line(&g->nrules, "-A %s %s-m statistic --mode random --probability %0.10f -j %s",
                 chain, svc_comment(g, c, cm, sizeof cm), 1.0 / (double)(n - i), eps[i]->chain);
        else
            line(&g->nrules, "-A %s %s-j %s", chain, svc_comment(g, c, cm, sizeof cm),
                 eps[i]->chain);
    }
}

/* The body of syncProxyRules' "Build rules for each service-port" loop. */
static void gen_service(gen_t *g, const svc_t *s)
{
    const kp_t *kp = g->kp;
    const char *P = s->proto, *spn = s->spn;
    char ip[16], buf[20];
    cats_t c;
    categorize(kp, s, &c);

    const char *cluster_chain = s->svc_chain, *local_chain = s->svl_chain;
    bool uses_cluster_chain = c.n_cluster > 0 && svc_uses_cluster(s);
    bool uses_local_chain = c.n_local > 0 && svc_uses_local(s);
    bool has_eps = c.has_any;

    const char *internal_chain = cluster_chain;
    bool has_internal = has_eps;
    if (svc_itp_local(s)) {
        internal_chain = local_chain;
        if (!c.n_local) has_internal = false;
    }
    const char *external_policy_chain = cluster_chain;
    bool has_external = has_eps;
    if (svc_etp_local(s)) {
        external_policy_chain = local_chain;
        if (!c.n_local) has_external = false;
    }
    const char *ext_chain = s->ext_chain;
    bool uses_ext_chain = has_eps && svc_ext_accessible(s);
    const char *lb_chain = ext_chain;
    bool uses_fw = has_eps && s->lb_ips.n && s->src_ranges.n;
    if (uses_fw) lb_chain = s->fw_chain;
    if (uses_fw || svc_uses_local(s)) g->node_dep = true;  /* node IP, local endpoints */

    char int_target[8] = "", int_comment[300] = "", ext_target[8] = "", ext_comment[300] = "";
    if (!has_eps) {
        strcpy(int_target, "REJECT");
        snprintf(int_comment, sizeof int_comment, "\"%s has no endpoints\"", spn);
        strcpy(ext_target, "REJECT");
        strcpy(ext_comment, int_comment);
    } else {
        if (!has_internal) {
            strcpy(int_target, "DROP");
            snprintf(int_comment, sizeof int_comment, "\"%s has no local endpoints\"", spn);
        }
        if (!has_external) {
            strcpy(ext_target, "DROP");
            snprintf(ext_comment, sizeof ext_comment, "\"%s has no local endpoints\"", spn);
        }
    }

    /* Capture the clusterIP. */
    if (has_internal)
        line(&g->nrules, "-A %s -m comment --comment \"%s cluster IP\" -m %s -p %s -d %s "
             "--dport %u -j %s", CH_SERVICES, spn, P, P, lb_ip_str(s->cluster_ip, ip), s->port,
             internal_chain);
    else
        line(&g->frules, "-A %s -m comment --comment %s -m %s -p %s -d %s --dport %u -j %s",
             CH_SERVICES, int_comment, P, P, lb_ip_str(s->cluster_ip, ip), s->port, int_target);

    /* Capture externalIPs. */
    for (size_t i = 0; i < s->ext_ips.n; i++) {
        lb_ip_str(s->ext_ips.v[i], ip);
        if (has_eps)
            line(&g->nrules, "-A %s -m comment --comment \"%s external IP\" -m %s -p %s -d %s "
                 "--dport %u -j %s", CH_SERVICES, spn, P, P, ip, s->port, ext_chain);
        if (!has_external)
            line(&g->frules, "-A %s -m comment --comment %s -m %s -p %s -d %s --dport %u -j %s",
                 CH_EXT_SERVICES, ext_comment, P, P, ip, s->port, ext_target);
    }

    /* Capture load-balancer ingress. */
    for (size_t i = 0; i < s->lb_ips.n; i++) {
        lb_ip_str(s->lb_ips.v[i], ip);
        if (has_eps)
            line(&g->nrules, "-A %s -m comment --comment \"%s loadbalancer IP\" -m %s -p %s "
                 "-d %s --dport %u -j %s", CH_SERVICES, spn, P, P, ip, s->port, lb_chain);
        if (uses_fw)
            line(&g->frules, "-A %s -m comment --comment \"%s traffic not accepted by %s\" "
                 "-m %s -p %s -d %s --dport %u -j DROP", CH_PROXY_FW, spn, s->fw_chain, P, P,
                 ip, s->port);
    }
    if (!has_external)
        for (size_t i = 0; i < s->lb_ips.n; i++)
            line(&g->frules, "-A %s -m comment --comment %s -m %s -p %s -d %s --dport %u -j %s",
                 CH_EXT_SERVICES, ext_comment, P, P, lb_ip_str(s->lb_ips.v[i], ip), s->port,
                 ext_target);

    /* Capture nodeports. */
    if (s->node_port) {
        if (has_eps)
            line(&g->nrules, "-A %s -m comment --comment %s -m %s -p %s --dport %u -j %s",
                 CH_NODEPORTS, spn, P, P, s->node_port, ext_chain);
        if (!has_external)
            line(&g->frules, "-A %s -m comment --comment %s -m addrtype --dst-type LOCAL "
                 "-m %s -p %s --dport %u -j %s", CH_EXT_SERVICES, ext_comment, P, P,
                 s->node_port, ext_target);
    }

    /* Capture healthCheckNodePorts: accepted whether or not there are local endpoints. */
    if (s->hcnp)
        line(&g->frules, "-A %s -m comment --comment \"%s health check node port\" -m tcp "
             "-p tcp --dport %u -j ACCEPT", CH_NODEPORTS, spn, s->hcnp);

    /* Internal traffic: masquerade off-cluster sources to the clusterIP. */
    if (has_internal) {
        char args[400];
        snprintf(args, sizeof args, "-m comment --comment \"%s cluster IP\" -m %s -p %s -d %s "
                 "--dport %u", spn, P, P, lb_ip_str(s->cluster_ip, ip), s->port);
        if (kp->masq_all)
            line(&g->nrules, "-A %s %s -j %s", internal_chain, args, CH_MARK_MASQ);
        else if (g->detect)
            line(&g->nrules, "-A %s %s ! -s %s -j %s", internal_chain, args, g->cidr,
                 CH_MARK_MASQ);
    }

    /* External traffic: every external destination jumps to KUBE-EXT. */
    if (uses_ext_chain) {
        activate(g, &g->nchains, ext_chain);
        if (!svc_etp_local(s)) {
            /* non-local endpoints may be on another node: masquerade */
            line(&g->nrules, "-A %s -m comment --comment \"masquerade traffic for %s external "
                 "destinations\" -j %s", ext_chain, spn, CH_MARK_MASQ);
        } else {
            if (g->detect)      /* pods going up-and-out to the LB and back: any endpoint */
                line(&g->nrules, "-A %s -m comment --comment \"pod traffic for %s external "
                     "destinations\" -s %s -j %s", ext_chain, spn, g->cidr, cluster_chain);
            /* the host itself: its source would be the (local) LB IP */
            line(&g->nrules, "-A %s -m comment --comment \"masquerade LOCAL traffic for %s "
                 "external destinations\" -m addrtype --src-type LOCAL -j %s", ext_chain, spn,
                 CH_MARK_MASQ);
            line(&g->nrules, "-A %s -m comment --comment \"route LOCAL traffic for %s external "
                 "destinations\" -m addrtype --src-type LOCAL -j %s", ext_chain, spn,
                 cluster_chain);
        }
        if (has_external) line(&g->nrules, "-A %s -j %s", ext_chain, external_policy_chain);
    }

    /* loadBalancerSourceRanges firewall chain. */
    if (uses_fw) {
        activate(g, &g->nchains, s->fw_chain);
        char args[300];
        snprintf(args, sizeof args, "-A %s -m comment --comment \"%s loadbalancer IP\"",
                 s->fw_chain, spn);
        bool allow_node = false;
        uint32_t node_ip = kp->node ? net_node_addr(kp->node) : 0;
        for (size_t i = 0; i < s->src_ranges.n; i++) {
            line(&g->nrules, "%s -s %s -j %s", args, cidr_str(s->src_ranges.v[i], buf), ext_chain);
            if (node_ip && cidr_has(s->src_ranges.v[i], node_ip)) allow_node = true;
        }
        if (allow_node)
            for (size_t i = 0; i < s->lb_ips.n; i++)
                line(&g->nrules, "%s -s %s -j %s", args, lb_ip_str(s->lb_ips.v[i], ip), ext_chain);
        line(&g->nrules, "-A %s -m comment --comment \"other traffic to %s will be dropped by "
             "%s\"", s->fw_chain, spn, CH_PROXY_FW);
    }

    if (uses_cluster_chain) {
        activate(g, &g->nchains, cluster_chain);
        endpoint_rules(g, s, cluster_chain, c.cluster, c.n_cluster);
    }
    if (uses_local_chain) {
        activate(g, &g->nchains, local_chain);
        endpoint_rules(g, s, local_chain, c.local, c.n_local);
    }

    /* Per-endpoint chains: hairpin masquerade, then DNAT. */
    for (size_t i = 0; i < c.n_all; i++) {
        const ep_t *e = c.all[i];
        char cm[300], aff[80] = "";
        activate(g, &g->nchains, e->chain);
        const char *com = svc_comment(g, spn, cm, sizeof cm);
        line(&g->nrules, "-A %s %s-s %s -j %s", e->chain, com, lb_ip_str(e->ip, ip), CH_MARK_MASQ);
        if (s->affinity) snprintf(aff, sizeof aff, "-m recent --name %s --set ", e->chain);
        line(&g->nrules, "-A %s %s%s-m %s -p %s -j DNAT --to-destination %s", e->chain, com, aff,
             P, P, e->str);
    }
    cats_free(&c);
}

/* GetNodeIPs for non-default nodePortAddresses: the node's addresses (lo first) in the CIDRs. */
static size_t nodeport_ips(const kp_t *kp, uint32_t *out, size_t max)
{
    size_t n = 0;
    uint32_t cand[64];
    size_t nc = 0;
    cand[nc++] = 0x7f000001u;
    if (kp->node)
        for (size_t i = 0; i < kp->node->local_addrs.n && nc < 64; i++)
            cand[nc++] = kp->node->local_addrs.v[i];
    for (size_t i = 0; i < nc && n < max; i++)
        for (size_t j = 0; j < kp->np_addrs.n; j++)
            if (cidr_has(kp->np_addrs.v[j], cand[i])) {
                out[n++] = cand[i];
                break;
            }
    return n;
}

static bool np_match_all(const kp_t *kp)
{
    if (!kp->np_addrs.n) return true;
    for (size_t i = 0; i < kp->np_addrs.n; i++)
        if (kp->np_addrs.v[i].plen == 0) return true;
    return false;
}

static bool active_has(const gen_t *g, const char *chain)
{
    uint64_t h = lb_hash_str(chain);
    size_t it;
    for (size_t p = lb_index_first(&g->active_ix, h, &it); p != LB_INDEX_NONE;
         p = lb_index_next(&g->active_ix, h, &it))
        if (!strcmp(g->active.v[p], chain)) return true;
    return false;
}

static active_t *active_new(const char *const *names, size_t n);

/* syncProxyRules: the whole restore text. When keep is set, *keep becomes the active chain
 * names (a new active_t, held once): the "existing" set the next sync compares against. */
static char *generate(const kp_t *kp, active_t **keep, bool *node_dep)
{
    gen_t g = { .kp = kp };
    g.node_dep = !np_match_all(kp);     /* the node's own addresses */
    g.detect = kp->cluster_cidr.plen > 0;
    if (g.detect) cidr_str(kp->cluster_cidr, g.cidr);

    const char *top_filter[] = { CH_SERVICES, CH_EXT_SERVICES, CH_FORWARD, CH_NODEPORTS,
                                 CH_PROXY_FW };
    const char *top_nat[] = { CH_SERVICES, CH_NODEPORTS, CH_POSTROUTING, CH_MARK_MASQ };
    for (size_t i = 0; i < 5; i++) chain_line(&g.fchains, top_filter[i]);
    for (size_t i = 0; i < 4; i++) chain_line(&g.nchains, top_nat[i]);

    /* KUBE-POSTROUTING: only marked packets; clear the mark so a re-traversal is not
     * masqueraded twice; MASQUERADE. KUBE-MARK-MASQ sets the mark. */
    line(&g.nrules, "-A %s -m mark ! --mark %s/%s -j RETURN", CH_POSTROUTING, kp->mark, kp->mark);
    line(&g.nrules, "-A %s -j MARK --xor-mark %s", CH_POSTROUTING, kp->mark);
    line(&g.nrules, "-A %s -m comment --comment \"kubernetes service traffic requiring SNAT\" "
         "-j MASQUERADE%s", CH_POSTROUTING, kp->random_fully ? " --random-fully" : "");
    line(&g.nrules, "-A %s -j MARK --or-mark %s", CH_MARK_MASQ, kp->mark);

    if (kp->localhost_np) {
        /* route_localnet mitigation (https://issue.k8s.io/90259), duplicated by kubelet */
        chain_line(&g.fchains, CH_KUBELET_FW);
        line(&g.frules, "-A %s -m comment --comment \"block incoming localnet connections\" "
             "-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT "
             "-j DROP", CH_KUBELET_FW);
    }

    size_t total = 0;
    for (size_t i = 0; i < kp->svcs.n; i++) total += kp->svcs.v[i]->eps.n;
    g.large = total > KP_LARGE_CLUSTER_ENDPOINTS;

    for (size_t i = 0; i < kp->svcs.n; i++)
        if (kp->svcs.v[i]->cluster_ip)   /* headless services are not proxied */
            gen_service(&g, kp->svcs.v[i]);

    /* Delete service chains no longer in use (iptables-save diffed with activeNATChains). */
    for (size_t i = 0; kp->active && i < kp->active->n; i++) {
        const char *ch = kp->active->v[i];
        if (!is_service_chain(ch) || active_has(&g, ch)) continue;
        chain_line(&g.nchains, ch);
        line(&g.nrules, "-X %s", ch);
    }

    /* Finally the tail call to KUBE-NODEPORTS, which must stay last in KUBE-SERVICES. */
    static const char np_comment[] =
        "\"kubernetes service nodeports; NOTE: this must be the last rule in this chain\"";
    if (np_match_all(kp)) {
        line(&g.nrules, "-A %s -m comment --comment %s -m addrtype --dst-type LOCAL%s -j %s",
             CH_SERVICES, np_comment, kp->localhost_np ? "" : " ! -d 127.0.0.0/8", CH_NODEPORTS);
    } else {
        uint32_t ips[64];
        size_t n = nodeport_ips(kp, ips, 64);
        for (size_t i = 0; i < n; i++) {
            char ip[16];
            if ((ips[i] >> 24) == 127 && !kp->localhost_np) continue;
            line(&g.nrules, "-A %s -m comment --comment %s -d %s -j %s", CH_SERVICES, np_comment,
                 lb_ip_str(ips[i], ip), CH_NODEPORTS);
        }
    }

    /* KUBE-FORWARD: INVALID drop (kubernetes#74839, #117924), then accept marked traffic
     * even under a DROP FORWARD policy, and its replies. */
    if (!kp->be_liberal)
        line(&g.frules, "-A %s -m conntrack --ctstate INVALID -j DROP", CH_FORWARD);
    line(&g.frules, "-A %s -m comment --comment \"kubernetes forwarding rules\" -m mark --mark "
         "%s/%s -j ACCEPT", CH_FORWARD, kp->mark, kp->mark);
    line(&g.frules, "-A %s -m comment --comment \"kubernetes forwarding conntrack rule\" -m "
         "conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", CH_FORWARD);

    sb_t out = {0};
    line(&out, "*filter");
    sb_cat(&out, &g.fchains);
    sb_cat(&out, &g.frules);
    line(&out, "COMMIT");
    line(&out, "*nat");
    sb_cat(&out, &g.nchains);
    sb_cat(&out, &g.nrules);
    line(&out, "COMMIT");

    if (keep) *keep = active_new(g.active.v, g.active.n);
    lb_free(g.fchains.v);
    lb_free(g.frules.v);
    lb_free(g.nchains.v);
    lb_free(g.nrules.v);
    lb_vec_free(&g.active);
    lb_index_free(&g.active_ix);
    if (node_dep) *node_dep = g.node_dep;
    return sb_take(&out);
}

char *kp_restore_text(const kp_t *kp) { return generate(kp, NULL, NULL); }

/* ---- the text cache (kube_proxy.h) ---------------------------------------------------------- */
#define KP_TEXT_CACHE_SLOTS 4

typedef struct tc_entry {
    uint64_t key[2];
    char *text;                         /* NULL: empty slot */
    active_t *active;                   /* the chains that sync wrote (a reference) */
} tc_entry_t;

struct kp_text_cache {
    tc_entry_t e[KP_TEXT_CACHE_SLOTS];
    size_t next;                        /* slot replaced next (oldest) */
    /* chain names: prefix + hash16(spn + protocol + endpoint), the same on every node */
    LB_VEC(struct tc_name { char *text; char name[KP_CHAIN_MAX]; }) names;
    lb_index_t name_ix;                 /* hash of text -> names position */
    /* the service ports kube-proxies hold (borrowed: each leaves when freed, or when the
     * kube-proxy holding it alone changes it); NULL slots are free, listed in svc_free */
    LB_VEC(svc_t *) svcs;
    LB_VEC(size_t) svc_free;
    lb_index_t svc_ix;                  /* svc_t.h -> svcs position */
};

/* A service port of the cache that pushing sp (protocol proto_lc, key hash h) would make,
 * or NULL. */
static svc_t *shared_find(kp_text_cache_t *tc, uint64_t h, const kp_service_port_t *sp,
                          const char *proto_lc)
{
    for (size_t it, p = lb_index_first(&tc->svc_ix, h, &it); p != LB_INDEX_NONE;
         p = lb_index_next(&tc->svc_ix, h, &it)) {
        svc_t *s = tc->svcs.v[p];
        if (svc_is(s, sp->ns, sp->name, sp->port_name, proto_lc) && svc_unchanged(s, sp))
            return s;
    }
    return NULL;
}

static void shared_add(kp_text_cache_t *tc, svc_t *s)
{
    assert(!s->reg);
    size_t pos;
    if (tc->svc_free.n) {
        pos = tc->svc_free.v[--tc->svc_free.n];
        tc->svcs.v[pos] = s;
    } else {
        pos = tc->svcs.n;
        lb_vec_push(&tc->svcs, s);
    }
    s->reg = tc;
    s->reg_pos = pos;
    lb_index_add(&tc->svc_ix, s->h, pos);
}

static void shared_forget(svc_t *s)
{
    kp_text_cache_t *tc = s->reg;
    assert(tc && tc->svcs.v[s->reg_pos] == s);
    lb_index_remove(&tc->svc_ix, s->h, s->reg_pos);
    tc->svcs.v[s->reg_pos] = NULL;
    lb_vec_push(&tc->svc_free, s->reg_pos);
    s->reg = NULL;
}

/* kp_chain_name, remembered in the cluster's cache (a SHA-256 per chain and node adds up
 * on a cluster of 200 nodes). */
static void chain_name(kp_t *kp, char out[KP_CHAIN_MAX], const char *prefix, const char *spn,
                       const char *protocol, const char *endpoint)
{
    kp_text_cache_t *tc = kp->tc;
    if (!tc) {
        kp_chain_name(out, prefix, spn, protocol, endpoint);
        return;
    }
    char *text = lb_sprintf("%s|%s%s%s", prefix, spn, protocol, endpoint ? endpoint : "");
    uint64_t h = lb_hash_str(text);
    size_t it;
    for (size_t p = lb_index_first(&tc->name_ix, h, &it); p != LB_INDEX_NONE;
         p = lb_index_next(&tc->name_ix, h, &it))
        if (!strcmp(tc->names.v[p].text, text)) {
            memcpy(out, tc->names.v[p].name, KP_CHAIN_MAX);
            lb_free(text);
            return;
        }
    struct tc_name nm = { text, {0} };
    kp_chain_name(nm.name, prefix, spn, protocol, endpoint);
    memcpy(out, nm.name, KP_CHAIN_MAX);
    lb_vec_push(&tc->names, nm);
    lb_index_add(&tc->name_ix, h, tc->names.n - 1);
}

kp_text_cache_t *kp_text_cache_new(void) { return lb_calloc(1, sizeof(kp_text_cache_t)); }

static void tc_entry_clear(tc_entry_t *e)
{
    lb_free(e->text);
    e->text = NULL;
    active_release(e->active);
    e->active = NULL;
}

void kp_text_cache_free(kp_text_cache_t *tc)
{
    if (!tc) return;
    for (size_t i = 0; i < KP_TEXT_CACHE_SLOTS; i++) tc_entry_clear(&tc->e[i]);
    for (size_t i = 0; i < tc->names.n; i++) lb_free(tc->names.v[i].text);
    lb_vec_free(&tc->names);
    lb_index_free(&tc->name_ix);
    for (size_t i = 0; i < tc->svcs.n; i++)     /* none, when every kp_free came first */
        if (tc->svcs.v[i]) tc->svcs.v[i]->reg = NULL;
    lb_vec_free(&tc->svcs);
    lb_vec_free(&tc->svc_free);
    lb_index_free(&tc->svc_ix);
    lb_free(tc);
}

/* Two independent 64-bit lanes over everything generate() reads but the node. */
typedef struct hk { uint64_t a, b; } hk_t;
static void hk_u(hk_t *h, uint64_t v)
{
    h->a = lb_mix64(h->a ^ v);
    h->b = lb_mix64(h->b + v * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull);
}
static void hk_s(hk_t *h, const char *s)
{
    hk_u(h, s ? lb_hash_str(s) : 0x5bd1e995u);
    hk_u(h, s ? strlen(s) : (uint64_t)-1);
}

/* s->key: everything of s that generate() reads, hashed once per content (a kube-proxy
 * that changes s clears keyed, svc_own). */
static void svc_key(svc_t *s)
{
    if (s->keyed) return;
    hk_t h = { 0x452821e638d01377ull, 0xbe5466cf34e90c6cull };
    hk_s(&h, s->ns);
    hk_s(&h, s->name);
    hk_s(&h, s->port_name);
    hk_s(&h, s->proto);
    hk_u(&h, (uint64_t)s->cluster_ip << 32 | (uint64_t)s->port << 16 | s->node_port);
    hk_u(&h, (uint64_t)s->hcnp << 32 | (uint64_t)s->etp << 24 | (uint64_t)s->itp << 16 |
             (uint64_t)s->affinity << 8);
    hk_u(&h, (uint64_t)s->affinity_s);
    hk_u(&h, s->lb_ips.n);
    for (size_t k = 0; k < s->lb_ips.n; k++) hk_u(&h, s->lb_ips.v[k]);
    hk_u(&h, s->ext_ips.n);
    for (size_t k = 0; k < s->ext_ips.n; k++) hk_u(&h, s->ext_ips.v[k]);
    hk_u(&h, s->src_ranges.n);
    for (size_t k = 0; k < s->src_ranges.n; k++)
        hk_u(&h, (uint64_t)s->src_ranges.v[k].addr << 8 | (uint64_t)s->src_ranges.v[k].plen);
    hk_u(&h, s->eps.n);
    for (size_t k = 0; k < s->eps.n; k++) {
        const ep_t *e = &s->eps.v[k];
        hk_u(&h, (uint64_t)e->ip << 32 | (uint64_t)e->port << 8 | (uint64_t)e->ready << 2 |
                 (uint64_t)e->serving << 1 | e->terminating);
        hk_s(&h, e->node);
    }
    s->key[0] = h.a;
    s->key[1] = h.b;
    s->keyed = true;
}

static active_t *active_new(const char *const *names, size_t n)
{
    active_t *a = lb_calloc(1, sizeof *a);
    hk_t h = { 0xc0ac29b7c97c50ddull, 0x3f84d5b5b5470917ull };
    a->refs = 1;
    a->n = n;
    a->v = lb_calloc(n + 1, sizeof *a->v);
    hk_u(&h, n);
    for (size_t i = 0; i < n; i++) {
        a->v[i] = lb_strdup(names[i]);
        hk_s(&h, names[i]);
    }
    a->key[0] = h.a;
    a->key[1] = h.b;
    return a;
}

/* The text cache's key for kp's next sync: its configuration, the chains its last sync
 * wrote and its service ports (their keys, each hashed once however many kube-proxies
 * hold it). */
static void sync_key(const kp_t *kp, uint64_t key[2])
{
    hk_t h = { 0x243f6a8885a308d3ull, 0x13198a2e03707344ull };
    hk_u(&h, (uint64_t)kp->mbit << 32 | (uint64_t)kp->masq_all << 4 |
             (uint64_t)kp->localhost_np << 3 | (uint64_t)kp->random_fully << 2 |
             (uint64_t)kp->be_liberal << 1 | kp->term_eps);
    hk_u(&h, (uint64_t)kp->cluster_cidr.addr << 8 | (uint64_t)kp->cluster_cidr.plen);
    hk_s(&h, kp->mark);
    hk_u(&h, kp->np_addrs.n);
    for (size_t i = 0; i < kp->np_addrs.n; i++)
        hk_u(&h, (uint64_t)kp->np_addrs.v[i].addr << 8 | (uint64_t)kp->np_addrs.v[i].plen);
    hk_u(&h, kp->active ? kp->active->key[0] : 0);
    hk_u(&h, kp->active ? kp->active->key[1] : 0);
    hk_u(&h, kp->svcs.n);
    for (size_t i = 0; i < kp->svcs.n; i++) {
        svc_t *s = kp->svcs.v[i];
        svc_key(s);
        hk_u(&h, s->key[0]);
        hk_u(&h, s->key[1]);
    }
    key[0] = h.a;
    key[1] = h.b;
}

/* ---- jump rules (iptablesJumpChains, iptablesKubeletJumpChains) ---------------------------- */

typedef struct jump {
    const char *table, *dst, *src, *comment, *extra;
} jump_t;

/* In application order. kubelet's two KUBE-FIREWALL jumps come first: on a node kubelet
 * starts before kube-proxy and creates them, and kube-proxy's EnsureRule then finds them
 * (-C) and leaves them where they are; its own jumps are each prepended (-I), so they end
 * up in the reverse of proxier.go's list order, as `iptables-save` on a node shows. */
static const jump_t jumps[] = {
    { "filter", CH_KUBELET_FW, "INPUT", NULL, NULL },
    { "filter", CH_KUBELET_FW, "OUTPUT", NULL, NULL },
    { "filter", CH_EXT_SERVICES, "INPUT", "kubernetes externally-visible service portals",
      "-m conntrack --ctstate NEW" },
    { "filter", CH_EXT_SERVICES, "FORWARD", "kubernetes externally-visible service portals",
      "-m conntrack --ctstate NEW" },
    { "filter", CH_NODEPORTS, "INPUT", "kubernetes health check service ports", NULL },
    { "filter", CH_SERVICES, "FORWARD", "kubernetes service portals", "-m conntrack --ctstate NEW" },
    { "filter", CH_SERVICES, "OUTPUT", "kubernetes service portals", "-m conntrack --ctstate NEW" },
    { "filter", CH_FORWARD, "FORWARD", "kubernetes forwarding rules", NULL },
    { "filter", CH_PROXY_FW, "INPUT", "kubernetes load balancer firewall",
      "-m conntrack --ctstate NEW" },
    { "filter", CH_PROXY_FW, "OUTPUT", "kubernetes load balancer firewall",
      "-m conntrack --ctstate NEW" },
    { "filter", CH_PROXY_FW, "FORWARD", "kubernetes load balancer firewall",
      "-m conntrack --ctstate NEW" },
    { "nat", CH_SERVICES, "OUTPUT", "kubernetes service portals", NULL },
    { "nat", CH_SERVICES, "PREROUTING", "kubernetes service portals", NULL },
    { "nat", CH_POSTROUTING, "POSTROUTING", "kubernetes postrouting rules", NULL },
};
#define N_JUMPS (sizeof jumps / sizeof jumps[0])

/* The rule spec of jump j: extraArgs, then the comment, then -j. */
static void jump_spec(const jump_t *j, char *buf, size_t n)
{
    snprintf(buf, n, "%s%s%s%s%s-j %s", j->extra ? j->extra : "", j->extra ? " " : "",
             j->comment ? "-m comment --comment \"" : "", j->comment ? j->comment : "",
             j->comment ? "\" " : "", j->dst);
}

char *kp_jump_commands(const kp_t *kp)
{
    (void)kp;
    sb_t out = {0};
    char spec[256];
    for (size_t i = 0; i < N_JUMPS; i++) {
        jump_spec(&jumps[i], spec, sizeof spec);
        line(&out, "-t %s -N %s", jumps[i].table, jumps[i].dst);
        line(&out, "-t %s -I %s %s", jumps[i].table, jumps[i].src, spec);
    }
    return sb_take(&out);
}

/* EnsureChain + EnsureRule(Prepend) for every jump. */
static int ensure_jumps(kp_t *kp, nf_t *nf, char *err, size_t errlen)
{
    (void)kp;
    char spec[256], cmd[400], e[256];
    for (size_t i = 0; i < N_JUMPS; i++) {
        const jump_t *j = &jumps[i];
        snprintf(cmd, sizeof cmd, "-t %s -N %s", j->table, j->dst);
        nf_exec(nf, cmd, e, sizeof e);              /* exists already: fine */
        jump_spec(j, spec, sizeof spec);
        snprintf(cmd, sizeof cmd, "-t %s -C %s %s", j->table, j->src, spec);
        if (nf_exec(nf, cmd, e, sizeof e) == 0) continue;
        snprintf(cmd, sizeof cmd, "-t %s -I %s %s", j->table, j->src, spec);
        int rc = nf_exec(nf, cmd, err, errlen);
        if (rc) return rc;
    }
    return 0;
}

/* ---- health-check node ports (service_health.go) ------------------------------------------- */

/* Go's %q for the names Kubernetes allows (DNS labels): quotes, escaping " and \. */
static void go_quote(char *out, size_t n, const char *s)
{
    size_t k = 0;
    if (n < 3) return;
    out[k++] = '"';
    for (; *s && k + 3 < n; s++) {
        if (*s == '"' || *s == '\\') out[k++] = '\\';
        out[k++] = *s;
    }
    out[k++] = '"';
    out[k] = '\0';
}

/* hcHandler.ServeHTTP: any method, any path. 200 when the service has local endpoints and
 * kube-proxy is healthy, else 503; the JSON body as dedent.Dedent leaves it (tab
 * indented, no trailing newline). */
static http_msg_t *hc_response(const hc_t *h)
{
    int count = h->endpoints;
    bool healthy = h->kp->healthy;
    int status = count != 0 && healthy ? 200 : 503;
    char ns[300], name[300], weight[16];
    go_quote(ns, sizeof ns, h->ns);
    go_quote(name, sizeof name, h->name);
    char *body = lb_sprintf("{\n\t\"service\": {\n\t\t\"namespace\": %s,\n\t\t\"name\": %s\n\t},"
                            "\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": %s\n}",
                            ns, name, count, healthy ? "true" : "false");
    http_msg_t *resp = http_response_new(status, body, (uint32_t)strlen(body));
    lb_free(body);
    snprintf(weight, sizeof weight, "%d", count);
    http_header_set(resp, "Content-Type", "application/json");
    http_header_set(resp, "X-Content-Type-Options", "nosniff");
    http_header_set(resp, "X-Load-Balancing-Endpoint-Weight", weight);
    return resp;
}

static void hc_serve(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    (void)req;
    hc_t *h = data;
    http_msg_t *resp = hc_response(h);
    if (resp->status == 200) h->n200++;
    else h->n503++;
    http_respond(ex, resp);
}

static hc_t *hc_find(const kp_t *kp, const char *ns, const char *name, size_t *idx)
{
    for (size_t i = 0; i < kp->hcs.n; i++)
        if (!strcmp(kp->hcs.v[i]->ns, ns) && !strcmp(kp->hcs.v[i]->name, name)) {
            if (idx) *idx = i;
            return kp->hcs.v[i];
        }
    return NULL;
}

/* The healthCheckNodePort of ns/name (svcPortMap.HealthCheckNodePorts); 0 if none. */
static uint16_t svc_hcnp(const kp_t *kp, const char *ns, const char *name)
{
    uint16_t port = 0;
    for (size_t i = 0; i < kp->svcs.n; i++) {
        const svc_t *s = kp->svcs.v[i];     /* headless services are not proxied at all */
        if (s->hcnp && s->cluster_ip && !strcmp(s->ns, ns) && !strcmp(s->name, name))
            port = s->hcnp;
    }
    return port;
}

/* EndpointsMap.LocalReadyEndpoints: distinct ready local endpoint IPs over all ports. */
static int local_ready_ips(const kp_t *kp, const char *ns, const char *name)
{
    LB_VEC(uint32_t) ips = {0};
    for (size_t i = 0; i < kp->svcs.n; i++) {
        const svc_t *s = kp->svcs.v[i];
        if (strcmp(s->ns, ns) || strcmp(s->name, name)) continue;
        for (size_t j = 0; j < s->eps.n; j++) {
            const ep_t *e = &s->eps.v[j];
            if (!e->ready || !ep_local(kp, e)) continue;
            bool dup = false;
            for (size_t k = 0; k < ips.n && !dup; k++) dup = ips.v[k] == e->ip;
            if (!dup) lb_vec_push(&ips, e->ip);
        }
    }
    int n = (int)ips.n;
    lb_vec_free(&ips);
    return n;
}

/* SyncServices then SyncEndpoints. Returns LB_EADDRINUSE if a port could not be opened
 * (kube-proxy logs and emits an event, and retries on the next sync). */
static int sync_health(kp_t *kp, char *err, size_t errlen)
{
    int rc = 0;
    /* close servers no longer wanted, or whose port changed */
    for (size_t i = 0; i < kp->hcs.n;) {
        hc_t *h = kp->hcs.v[i];
        if (svc_hcnp(kp, h->ns, h->name) != h->port) {
            hc_free(h);
            memmove(&kp->hcs.v[i], &kp->hcs.v[i + 1], (kp->hcs.n - i - 1) * sizeof(hc_t *));
            kp->hcs.n--;
        } else {
            i++;
        }
    }
    /* open the missing ones; Go's http.Server as kube-proxy builds it has no idle timeout */
    http_server_opts_t opts = { .keepalive_timeout = 0, .max_requests_per_conn = 0 };
    for (size_t i = 0; i < kp->svcs.n; i++) {
        const svc_t *s = kp->svcs.v[i];
        if (!s->hcnp || !s->cluster_ip || hc_find(kp, s->ns, s->name, NULL)) continue;
        uint16_t port = svc_hcnp(kp, s->ns, s->name);
        hc_t *h = lb_calloc(1, sizeof *h);
        h->kp = kp;
        h->ns = lb_strdup(s->ns);
        h->name = lb_strdup(s->name);
        h->port = port;
        int hrc = 0;
        h->srv = http_server_new(kp->node, 0, port, &opts, hc_serve, h, &hrc);
        if (!h->srv) {
            if (!rc && err && errlen)
                snprintf(err, errlen, "node %s failed to start healthcheck \"%s/%s\" on port "
                         "%u: %s", kp->node_name, s->ns, s->name, port, lb_strerror(hrc));
            rc = rc ? rc : (hrc ? hrc : LB_EADDRINUSE);
            hc_free(h);
            continue;
        }
        lb_vec_push(&kp->hcs, h);
    }
    for (size_t i = 0; i < kp->hcs.n; i++)
        kp->hcs.v[i]->endpoints = local_ready_ips(kp, kp->hcs.v[i]->ns, kp->hcs.v[i]->name);
    return rc;
}

int kp_health_local_endpoints(const kp_t *kp, const char *ns, const char *name)
{
    const hc_t *h = hc_find(kp, ns, name, NULL);
    return h ? h->endpoints : -1;
}

http_msg_t *kp_health_response(const kp_t *kp, const char *ns, const char *name)
{
    const hc_t *h = hc_find(kp, ns, name, NULL);
    return h ? hc_response(h) : NULL;
}

uint16_t kp_health_port(const kp_t *kp, const char *ns, const char *name)
{
    const hc_t *h = hc_find(kp, ns, name, NULL);
    return h ? h->port : 0;
}

uint64_t kp_health_requests(const kp_t *kp, const char *ns, const char *name, int status)
{
    const hc_t *h = hc_find(kp, ns, name, NULL);
    if (!h) return 0;
    return status == 200 ? h->n200 : status == 503 ? h->n503 : 0;
}

/* ---- sync -------------------------------------------------------------------------------- */

int kp_sync(kp_t *kp, char *err, size_t errlen)
{
    assert(kp->node);
    if (err && errlen) err[0] = '\0';
    nf_t *nf = nf_get(kp->node);
    if (kp->mode == KP_MODE_NFTABLES) {
        int rc = kp_nft_sync_(kp, err, errlen);
        return rc ? rc : sync_health(kp, err, errlen);
    }
    int rc = ensure_jumps(kp, nf, err, errlen);
    if (rc) return rc;
    active_t *next = NULL;
    uint64_t key[2] = {0, 0};
    tc_entry_t *hit = NULL;
    if (kp->tc) {
        sync_key(kp, key);
        for (size_t i = 0; i < KP_TEXT_CACHE_SLOTS && !hit; i++)
            if (kp->tc->e[i].text && kp->tc->e[i].key[0] == key[0] && kp->tc->e[i].key[1] == key[1])
                hit = &kp->tc->e[i];
    }
    char *text;
    if (hit) {                          /* another node's text from the same inputs */
        text = hit->text;
        next = hit->active;
        next->refs++;
    } else {
        bool dep = true;
        text = generate(kp, &next, &dep);
        if (kp->tc && !dep) {           /* the cache owns the text from now on */
            tc_entry_t *e = &kp->tc->e[kp->tc->next];
            kp->tc->next = (kp->tc->next + 1) % KP_TEXT_CACHE_SLOTS;
            tc_entry_clear(e);
            e->key[0] = key[0];
            e->key[1] = key[1];
            e->text = text;
            e->active = next;
            next->refs++;
            hit = e;
        }
    }
    if (hit)                            /* the cache's key names the text exactly */
        rc = nf_restore_keyed(nf, text, NF_RESTORE_NOFLUSH, hit->key, err, errlen);
    else
        rc = nf_restore_flags(nf, text, NF_RESTORE_NOFLUSH | NF_RESTORE_SHARED, err, errlen);
    if (!hit) lb_free(text);
    if (rc) {                       /* kube-proxy retries with a full sync; keep old set */
        active_release(next);
        return rc;
    }
    active_release(kp->active);
    kp->active = next;
    return sync_health(kp, err, errlen);
}

/* ---- the view kube_proxy_nft.c writes the nftables mode from (kube_proxy_int.h) ---------- */

size_t kp_port_count_(const kp_t *kp) { return kp->svcs.n; }

static kp_ep_view_t *ep_views(const ep_t *const *eps, size_t n)
{
    kp_ep_view_t *v = lb_calloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        v[i].ip = eps[i]->ip;
        v[i].port = eps[i]->port;
    }
    return v;
}

void kp_port_view_(const kp_t *kp, size_t i, kp_port_view_t *v, bool eps)
{
    const svc_t *s = kp->svcs.v[i];
    cats_t c;
    memset(v, 0, sizeof *v);
    v->ns = s->ns;
    v->name = s->name;
    v->port_name = s->port_name;
    v->proto = s->proto;
    v->spn = s->spn;
    v->cluster_ip = s->cluster_ip;
    v->port = s->port;
    v->node_port = s->node_port;
    v->lb_ips = s->lb_ips.v;
    v->n_lb_ips = s->lb_ips.n;
    v->ext_ips = s->ext_ips.v;
    v->n_ext_ips = s->ext_ips.n;
    v->src_ranges = s->src_ranges.v;
    v->n_src_ranges = s->src_ranges.n;
    v->ext_accessible = svc_ext_accessible(s);
    v->etp_local = svc_etp_local(s);
    v->itp_local = svc_itp_local(s);
    v->uses_cluster = svc_uses_cluster(s);
    v->uses_local = svc_uses_local(s);
    v->affinity = s->affinity;
    v->affinity_s = s->affinity_s;
    if (!eps) return;
    categorize(kp, s, &c);
    v->cluster = ep_views(c.cluster, c.n_cluster);
    v->local = ep_views(c.local, c.n_local);
    v->all = ep_views(c.all, c.n_all);
    v->n_cluster = c.n_cluster;
    v->n_local = c.n_local;
    v->n_all = c.n_all;
    v->has_any = c.has_any;
    cats_free(&c);
}

void kp_port_view_free_(kp_port_view_t *v)
{
    lb_free(v->cluster);
    lb_free(v->local);
    lb_free(v->all);
}

void kp_cfg_view_(const kp_t *kp, kp_cfg_view_t *v)
{
    memset(v, 0, sizeof *v);
    v->node = kp->node;
    v->node_name = kp->node_name;
    v->mark = 1u << kp->mbit;
    v->cluster_cidr = kp->cluster_cidr;
    v->service_cidr = kp->service_cidr;
    v->masq_all = kp->masq_all;
    v->np_addrs = kp->np_addrs.v;
    v->n_np_addrs = kp->np_addrs.n;
}

void kp_sync_key_(const kp_t *kp, uint64_t key[2]) { sync_key(kp, key); }

struct nft_cache *kp_nft_cache_(const kp_t *kp) { return kp->nft_cache; }
