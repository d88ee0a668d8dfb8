/* kube_proxy_nft.c -- kube-proxy's nftables mode (KEP-3866: alpha 1.29, beta 1.31, GA
 * 1.33): the table `ip kube-proxy` as pkg/proxy/nftables/proxier.go writes it --
 * setupNFTables() (base chains, the jump chains, masquerading, cluster-ips-check, the
 * no-endpoint maps, firewall-check, the service-ips and service-nodeports dispatch maps)
 * and syncProxyRules() for every service port (service-/external-/firewall-/endpoint-
 * chains, `numgen random mod N vmap`, the map elements), in its order. The text is the
 * transaction of a first, full sync: the table from nothing.
 *
 * Where the model differs from proxier.go: partial syncs and the delayed deletion of stale
 * chains are not modelled (every sync writes the whole table; the resulting ruleset is the
 * same); sessionAffinity ClientIP is written as proxier.go writes it (affinity-* sets with
 * flags dynamic,timeout and `update @set`), but the nftables model refuses those sets, so
 * such a sync fails (no scenario can ask for it: the manifests have no sessionAffinity);
 * IPv6 is not modelled. Priorities are written as numbers (-110 for
 * "dstnat-10") because nft 1.0.6 refuses the name dstnat at the output hook. */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <openssl/sha.h>
#include "kube_proxy_int.h"
#include "netfilter.h"
#include "nftables.h"

#define TBL "ip kube-proxy"

typedef struct sb { char *v; size_t n, cap; } sb_t;

static void out(sb_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(sb_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->v ? b->v + b->n : NULL, b->v ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (b->v && b->n + (size_t)k + 2 <= b->cap) {
            b->n += (size_t)k;
            b->v[b->n++] = '\n';
            b->v[b->n] = '\0';
            return;
        }
        size_t want = b->n + (size_t)k + 2, c = b->cap ? b->cap : 4096;
        while (c < want) c *= 2;
        b->v = lb_realloc(b->v, c);
        b->cap = c;
    }
}

/* hashAndTruncate(): base32(sha256(name))[:8] + "-" + name (never truncated here: the
 * names of Kubernetes objects keep it under 240 characters). */
static void chain_base(char *buf, size_t n, const char *name)
{
    static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)name, strlen(name), d);
    uint64_t v = 0;
    for (int i = 0; i < 5; i++) v = v << 8 | d[i];
    char h[9];
    for (int i = 0; i < 8; i++) h[i] = b32[(v >> (35 - 5 * i)) & 31];
    h[8] = '\0';
    snprintf(buf, n, "%s-%s", h, name);
}

/* servicePortChainNameBase: "ns/name/proto/portname". */
static void svc_base(char *buf, size_t n, const kp_port_view_t *s)
{
    char name[512];
    snprintf(name, sizeof name, "%s/%s/%s/%s", s->ns, s->name, s->proto, s->port_name);
    chain_base(buf, n, name);
}

/* servicePortEndpointChainNameBase: "ns/name/proto/portname__ip/port", with prefix
 * "endpoint-" (its chain) or "affinity-" (its session-affinity set). */
static void ep_name(char *buf, size_t n, const char *prefix, const kp_port_view_t *s,
                    const kp_ep_view_t *e)
{
    char name[600], ip[16], base[700];
    snprintf(name, sizeof name, "%s/%s/%s/%s__%s/%u", s->ns, s->name, s->proto, s->port_name,
             lb_ip_str(e->ip, ip), e->port);
    chain_base(base, sizeof base, name);
    snprintf(buf, n, "%s%s", prefix, base);
}

static void ep_chain(char *buf, size_t n, const kp_port_view_t *s, const kp_ep_view_t *e)
{
    ep_name(buf, n, "endpoint-", s, e);
}

static const char *cidr_s(kp_cidr_t c, char buf[20])
{
    char ip[16];
    snprintf(buf, 20, "%s/%d", lb_ip_str(c.addr & lb_prefix_mask(c.plen), ip), c.plen);
    return buf;
}

static bool cidr_has(kp_cidr_t c, uint32_t a)
{
    uint32_t m = lb_prefix_mask(c.plen);
    return (a & m) == (c.addr & m);
}

/* nodePortAddresses.MatchAll(): a 0.0.0.0/0 entry. Empty means "primary" in this mode. */
static bool np_match_all(const kp_cfg_view_t *cfg)
{
    for (size_t i = 0; i < cfg->n_np_addrs; i++)
        if (cfg->np_addrs[i].plen == 0) return true;
    return false;
}

/* The node's addresses that accept NodePorts (GetNodeIPs; loopback refused). */
static void nodeport_ips(const kp_cfg_view_t *cfg, sb_t *b)
{
    char ip[16];
    if (!cfg->node) return;
    if (!cfg->n_np_addrs) {             /* "primary": the node's primary IP */
        uint32_t a = net_node_addr(cfg->node);
        if (a) out(b, "add element " TBL " nodeport-ips { %s }", lb_ip_str(a, ip));
        return;
    }
    for (size_t i = 0; i < cfg->node->local_addrs.n; i++) {
        uint32_t a = cfg->node->local_addrs.v[i];
        if ((a >> 24) == 127) continue;
        for (size_t k = 0; k < cfg->n_np_addrs; k++)
            if (cidr_has(cfg->np_addrs[k], a)) {
                out(b, "add element " TBL " nodeport-ips { %s }", lb_ip_str(a, ip));
                break;
            }
    }
}

/* writeServiceToEndpointRules: the affinity rules, then the numgen vmap. */
static void endpoint_rules(sb_t *b, const kp_port_view_t *s, const char *chain,
                           const kp_ep_view_t *eps, size_t n)
{
    sb_t el = {0};
    for (size_t i = 0; s->affinity && i < n; i++) {
        char ec[800], as[800];
        ep_chain(ec, sizeof ec, s, &eps[i]);
        ep_name(as, sizeof as, "affinity-", s, &eps[i]);
        out(b, "add rule " TBL " %s ip saddr @%s goto %s", chain, as, ec);
    }
    for (size_t i = 0; i < n; i++) {
        char ec[800];
        ep_chain(ec, sizeof ec, s, &eps[i]);
        out(&el, "%zu : goto %s%s", i, ec, i + 1 < n ? " ," : "");
        el.v[el.n - 1] = ' ';               /* one line: the newline becomes a space */
    }
    if (el.n) el.v[--el.n] = '\0';
    out(b, "add rule " TBL " %s numgen random mod %zu vmap { %s }", chain, n, el.v ? el.v : "");
    lb_free(el.v);
}

/* The per-service part of syncProxyRules. */
static void gen_service(sb_t *b, const kp_cfg_view_t *cfg, const kp_port_view_t *s,
                        bool detect, const char *cidr, bool *node_dep)
{
    char base[600], cluster_chain[640], local_chain[640], ext_chain[640], fw_chain[640];
    char ip[16], ec[800];
    const char *P = s->proto, *spn = s->spn;
    svc_base(base, sizeof base, s);
    snprintf(cluster_chain, sizeof cluster_chain, "service-%s", base);
    snprintf(local_chain, sizeof local_chain, "local-%s", base);
    snprintf(ext_chain, sizeof ext_chain, "external-%s", base);
    snprintf(fw_chain, sizeof fw_chain, "firewall-%s", base);
    if (s->etp_local || s->itp_local) *node_dep = true;   /* the node's own endpoints */

    for (size_t i = 0; i < s->n_all; i++) {
        ep_chain(ec, sizeof ec, s, &s->all[i]);
        out(b, "add chain " TBL " %s", ec);
    }
    bool uses_cluster_chain = s->n_cluster > 0 && s->uses_cluster;
    if (uses_cluster_chain) out(b, "add chain " TBL " %s", cluster_chain);
    bool uses_local_chain = s->n_local > 0 && s->uses_local;
    if (uses_local_chain) out(b, "add chain " TBL " %s", local_chain);

    const char *internal_chain = cluster_chain;
    bool has_eps = s->has_any, has_internal = has_eps;
    if (s->itp_local) {
        internal_chain = local_chain;
        if (!s->n_local) has_internal = false;
    }
    const char *external_policy_chain = cluster_chain;
    bool has_external = has_eps;
    if (s->etp_local) {
        external_policy_chain = local_chain;
        if (!s->n_local) has_external = false;
    }
    bool uses_ext_chain = has_eps && s->ext_accessible;
    if (uses_ext_chain) out(b, "add chain " TBL " %s", ext_chain);

    const char *int_verdict = "", *ext_verdict = "";
    if (!has_eps) {
        int_verdict = ext_verdict = "goto reject-chain";
    } else {
        if (!has_internal) int_verdict = "drop";
        if (!has_external) ext_verdict = "drop";
    }

    char cip[16];                       /* ip is reused below */
    lb_ip_str(s->cluster_ip, cip);
    out(b, "add element " TBL " cluster-ips { %s }", cip);
    if (has_internal)
        out(b, "add element " TBL " service-ips { %s . %s . %u : goto %s }", cip, P, s->port,
            internal_chain);
    else
        out(b, "add element " TBL " no-endpoint-services { %s . %s . %u comment \"%s\" : %s }",
            cip, P, s->port, spn, int_verdict);

    for (size_t i = 0; i < s->n_ext_ips; i++) {
        const char *e = lb_ip_str(s->ext_ips[i], ip);
        if (has_eps)
            out(b, "add element " TBL " service-ips { %s . %s . %u : goto %s }", e, P, s->port,
                ext_chain);
        if (!has_external)
            out(b, "add element " TBL " no-endpoint-services { %s . %s . %u comment \"%s\" : %s }",
                e, P, s->port, spn, ext_verdict);
    }

    bool uses_fw = s->n_lb_ips > 0 && s->n_src_ranges > 0;
    if (uses_fw) out(b, "add chain " TBL " %s", fw_chain);
    for (size_t i = 0; i < s->n_lb_ips; i++) {
        const char *l = lb_ip_str(s->lb_ips[i], ip);
        if (has_eps)
            out(b, "add element " TBL " service-ips { %s . %s . %u : goto %s }", l, P, s->port,
                ext_chain);
        if (uses_fw)
            out(b, "add element " TBL " firewall-ips { %s . %s . %u : goto %s }", l, P, s->port,
                fw_chain);
    }
    if (!has_external)
        for (size_t i = 0; i < s->n_lb_ips; i++)
            out(b, "add element " TBL " no-endpoint-services { %s . %s . %u comment \"%s\" : %s }",
                lb_ip_str(s->lb_ips[i], ip), P, s->port, spn, ext_verdict);

    if (s->node_port) {
        if (has_eps)
            out(b, "add element " TBL " service-nodeports { %s . %u : goto %s }", P, s->node_port,
                ext_chain);
        if (!has_external)
            out(b, "add element " TBL " no-endpoint-nodeports { %s . %u comment \"%s\" : %s }", P,
                s->node_port, spn, ext_verdict);
    }

    if (has_internal) {
        if (cfg->masq_all)
            out(b, "add rule " TBL " %s ip daddr %s %s dport %u jump mark-for-masquerade",
                internal_chain, cip, P, s->port);
        else if (detect)
            out(b, "add rule " TBL " %s ip daddr %s %s dport %u ip saddr != %s jump "
                "mark-for-masquerade", internal_chain, cip, P, s->port, cidr);
    }

    if (uses_ext_chain) {
        if (!s->etp_local) {
            out(b, "add rule " TBL " %s jump mark-for-masquerade", ext_chain);
        } else {
            if (detect)
                out(b, "add rule " TBL " %s ip saddr %s goto %s comment \"short-circuit pod "
                    "traffic\"", ext_chain, cidr, cluster_chain);
            out(b, "add rule " TBL " %s fib saddr type local jump mark-for-masquerade comment "
                "\"masquerade local traffic\"", ext_chain);
            out(b, "add rule " TBL " %s fib saddr type local goto %s comment \"short-circuit "
                "local traffic\"", ext_chain, cluster_chain);
        }
        if (has_external)
            out(b, "add rule " TBL " %s goto %s", ext_chain, external_policy_chain);
    }

    if (uses_fw) {
        sb_t src = {0};
        bool from_node = false;
        uint32_t node_ip = cfg->node ? net_node_addr(cfg->node) : 0;
        char cb[20];
        for (size_t i = 0; i < s->n_src_ranges; i++) {
            out(&src, "%s%s", i ? ", " : "", cidr_s(s->src_ranges[i], cb));
            src.v[--src.n] = '\0';
            if (node_ip && cidr_has(s->src_ranges[i], node_ip)) from_node = true;
        }
        if (from_node) {
            *node_dep = true;
            for (size_t i = 0; i < s->n_lb_ips; i++) {
                out(&src, ", %s", lb_ip_str(s->lb_ips[i], ip));
                src.v[--src.n] = '\0';
            }
        }
        out(b, "add rule " TBL " %s ip saddr != { %s } drop", fw_chain, src.v);
        lb_free(src.v);
    }

    for (size_t i = 0; s->affinity && i < s->n_all; i++) {
        ep_name(ec, sizeof ec, "affinity-", s, &s->all[i]);
        out(b, "add set " TBL " %s { type ipv4_addr ; flags dynamic,timeout ; timeout %ds ; }",
            ec, s->affinity_s);
    }
    if (uses_cluster_chain) endpoint_rules(b, s, cluster_chain, s->cluster, s->n_cluster);
    if (uses_local_chain) endpoint_rules(b, s, local_chain, s->local, s->n_local);

    for (size_t i = 0; i < s->n_all; i++) {
        ep_chain(ec, sizeof ec, s, &s->all[i]);
        out(b, "add rule " TBL " %s ip saddr %s jump mark-for-masquerade", ec,
            lb_ip_str(s->all[i].ip, ip));
        if (s->affinity) {
            char as[800];
            ep_name(as, sizeof as, "affinity-", s, &s->all[i]);
            out(b, "add rule " TBL " %s update @%s { ip saddr }", ec, as);
        }
        out(b, "add rule " TBL " %s meta l4proto %s dnat to %s:%u", ec, P,
            lb_ip_str(s->all[i].ip, ip), s->all[i].port);
    }
}

char *kp_nft_generate_(const kp_t *kp, char **node_text, bool *node_dep)
{
    kp_cfg_view_t cfg;
    kp_cfg_view_(kp, &cfg);
    sb_t b = {0}, nb = {0};
    bool dep = false, all = np_match_all(&cfg);
    char mk[16], cidr[20] = "";
    snprintf(mk, sizeof mk, "0x%08x", cfg.mark);
    bool detect = cfg.cluster_cidr.plen > 0;
    if (detect) cidr_s(cfg.cluster_cidr, cidr);

    /* setupNFTables */
    out(&b, "add table " TBL " { comment \"rules for kube-proxy\" ; }");
    static const struct { const char *name, *type, *hook; int prio; } base[] = {
        {"filter-prerouting", "filter", "prerouting", -110},
        {"filter-input", "filter", "input", -110},
        {"filter-forward", "filter", "forward", -110},
        {"filter-output", "filter", "output", -110},
        {"filter-output-post-dnat", "filter", "output", -90},
        {"nat-prerouting", "nat", "prerouting", -100},
        {"nat-output", "nat", "output", -100},
        {"nat-postrouting", "nat", "postrouting", 100},
    };
    for (size_t i = 0; i < sizeof base / sizeof *base; i++)
        out(&b, "add chain " TBL " %s { type %s hook %s priority %d ; }", base[i].name,
            base[i].type, base[i].hook, base[i].prio);
    static const struct { const char *dst, *src, *extra; } jumps[] = {
        {"nodeport-endpoints-check", "filter-input", "ct state new "},
        {"service-endpoints-check", "filter-input", "ct state new "},
        {"service-endpoints-check", "filter-forward", "ct state new "},
        {"service-endpoints-check", "filter-output", "ct state new "},
        {"firewall-check", "filter-prerouting", "ct state new "},
        {"firewall-check", "filter-output", "ct state new "},
        {"services", "nat-output", ""},
        {"services", "nat-prerouting", ""},
        {"masquerading", "nat-postrouting", ""},
        {"cluster-ips-check", "filter-forward", "ct state new "},
        {"cluster-ips-check", "filter-output-post-dnat", "ct state new "},
    };
    for (size_t i = 0; i < sizeof jumps / sizeof *jumps; i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++) seen |= !strcmp(jumps[k].dst, jumps[i].dst);
        if (!seen) out(&b, "add chain " TBL " %s", jumps[i].dst);
        out(&b, "add rule " TBL " %s %sjump %s", jumps[i].src, jumps[i].extra, jumps[i].dst);
    }
    out(&b, "add chain " TBL " mark-for-masquerade");
    out(&b, "add rule " TBL " mark-for-masquerade mark set mark or %s", mk);
    out(&b, "add rule " TBL " masquerading mark and %s == 0 return", mk);
    out(&b, "add rule " TBL " masquerading mark set mark xor %s", mk);
    out(&b, "add rule " TBL " masquerading masquerade fully-random");
    out(&b, "add set " TBL " cluster-ips { type ipv4_addr ; comment \"Active ClusterIPs\" ; }");
    out(&b, "add rule " TBL " cluster-ips-check ip daddr @cluster-ips reject comment \"Reject "
        "traffic to invalid ports of ClusterIPs\"");
    if (cfg.service_cidr.plen > 0) {
        char sc[20];
        out(&b, "add rule " TBL " cluster-ips-check ip daddr { %s } drop comment \"Drop traffic "
            "to unallocated ClusterIPs\"", cidr_s(cfg.service_cidr, sc));
    }
    if (!all) {
        out(&b, "add set " TBL " nodeport-ips { type ipv4_addr ; comment \"IPs that accept "
            "NodePort traffic\" ; }");
        nodeport_ips(&cfg, node_text ? &nb : &b);
    }
    out(&b, "add map " TBL " no-endpoint-services { type ipv4_addr . inet_proto . inet_service "
        ": verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }");
    out(&b, "add map " TBL " no-endpoint-nodeports { type inet_proto . inet_service : verdict ; "
        "comment \"vmap to drop or reject packets to service nodeports with no endpoints\" ; }");
    out(&b, "add chain " TBL " reject-chain { comment \"helper for @no-endpoint-services / "
        "@no-endpoint-nodeports\" ; }");
    out(&b, "add rule " TBL " reject-chain reject");
    out(&b, "add rule " TBL " service-endpoints-check ip daddr . meta l4proto . th dport vmap "
        "@no-endpoint-services");
    if (all)
        out(&b, "add rule " TBL " nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto "
            ". th dport vmap @no-endpoint-nodeports");
    else
        out(&b, "add rule " TBL " nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . "
            "th dport vmap @no-endpoint-nodeports");
    out(&b, "add map " TBL " firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict "
        "; comment \"destinations that are subject to LoadBalancerSourceRanges\" ; }");
    out(&b, "add rule " TBL " firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips");
    out(&b, "add map " TBL " service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; "
        "comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }");
    out(&b, "add map " TBL " service-nodeports { type inet_proto . inet_service : verdict ; "
        "comment \"NodePort traffic\" ; }");
    out(&b, "add rule " TBL " services ip daddr . meta l4proto . th dport vmap @service-ips");
    if (all)
        out(&b, "add rule " TBL " services fib daddr type local ip daddr != 127.0.0.0/8 meta "
            "l4proto . th dport vmap @service-nodeports");
    else
        out(&b, "add rule " TBL " services ip daddr @nodeport-ips meta l4proto . th dport vmap "
            "@service-nodeports");

    /* syncProxyRules: every service port (headless ones are not proxied) */
    for (size_t i = 0; i < kp_port_count_(kp); i++) {
        kp_port_view_t v;
        kp_port_view_(kp, i, &v, true);
        if (v.cluster_ip) gen_service(&b, &cfg, &v, detect, cidr, &dep);
        kp_port_view_free_(&v);
    }
    if (node_text) *node_text = nb.v ? nb.v : lb_strdup("");
    if (node_dep) *node_dep = dep;
    return b.v;
}

char *kp_nft_text(const kp_t *kp) { return kp_nft_generate_(kp, NULL, NULL); }

/* Whether the table (but the nodeport-ips elements) depends on the node: gen_service's
 * node_dep, without writing the text. */
static bool node_dependent(const kp_t *kp, const kp_cfg_view_t *cfg)
{
    uint32_t node_ip = cfg->node ? net_node_addr(cfg->node) : 0;
    for (size_t i = 0; i < kp_port_count_(kp); i++) {
        kp_port_view_t v;
        kp_port_view_(kp, i, &v, false);
        bool dep = v.cluster_ip && (v.etp_local || v.itp_local);
        for (size_t k = 0; v.cluster_ip && v.n_lb_ips && k < v.n_src_ranges && node_ip; k++)
            dep |= cidr_has(v.src_ranges[k], node_ip);
        if (dep) return true;
    }
    return false;
}

int kp_nft_sync_(kp_t *kp, char *err, size_t errlen)
{
    kp_cfg_view_t cfg;
    kp_cfg_view_(kp, &cfg);
    nf_t *nf = nf_get(cfg.node);
    nft_cache_t *cache = kp_nft_cache_(kp);
    char *node_text = NULL, *text = NULL;
    bool dep = false;
    int rc;
    if (cache && !node_dependent(kp, &cfg)) {
        uint64_t key[2];
        kp_sync_key_(kp, key);          /* everything the text is made from, and: */
        key[0] = lb_mix64(key[0] ^ ((uint64_t)cfg.service_cidr.addr << 8 | cfg.service_cidr.plen));
        key[1] = lb_mix64(key[1] ^ 0x6e667461626c6573ull);      /* "nftables" */
        if (nft_cache_has(cache, key)) {        /* another node wrote the same table */
            sb_t nb = {0};
            if (!np_match_all(&cfg)) nodeport_ips(&cfg, &nb);
            node_text = nb.v;
        } else {
            text = kp_nft_generate_(kp, &node_text, &dep);
            assert(!dep);
        }
        rc = nft_apply_shared(nf, cache, key, text, err, errlen);
        if (!rc && node_text && node_text[0]) rc = nft_apply(nf, node_text, err, errlen);
    } else {
        text = kp_nft_generate_(kp, cache ? &node_text : NULL, &dep);
        if (node_text && node_text[0]) {        /* one private transaction */
            size_t a = strlen(text), n = strlen(node_text);
            text = lb_realloc(text, a + n + 1);
            memcpy(text + a, node_text, n + 1);
        }
        nft_flush_ruleset(nf);
        rc = nft_apply(nf, text, err, errlen);
    }
    lb_free(text);
    lb_free(node_text);
    return rc;
}
