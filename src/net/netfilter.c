/* netfilter.c -- a node's iptables: tables and chains, the iptables / iptables-restore
 * parsers, iptables-save output, and the rule engine run at the five hooks (conntrack and
 * NAT live in conntrack.c). Follows Linux ip_tables.c ipt_do_table(), the libxt_*.c save
 * formats, and the rule forms kube-proxy writes (kubernetes pkg/proxy/iptables/proxier.go).
 * For large clusters: a dispatch index per long chain (first match kept; the rules it
 * skips are counted as the kernel's linear walk evaluates them -- "rules traversed per
 * new connection"), and tables shared copy-on-write between nodes with the same rules,
 * counters per node, with remembered restores ("shared tables" below).
 *
 * Supported rule syntax (anything else is LB_EPARSE naming the option):
 *   commands  -A CHAIN | -I CHAIN [N] | -R CHAIN N | -D CHAIN (N | rulespec) | -C CHAIN rulespec |
 *             -N CHAIN | -F [CHAIN] | -X [CHAIN] | -P CHAIN ACCEPT|DROP | -Z [CHAIN] |
 *             -t TABLE (nf_exec only); -w [S] and -W US are accepted and ignored
 *   matches   [!] -s ADDR[/LEN|/MASK]  [!] -d ...  [!] -p tcp|udp|icmp|sctp|all|N
 *             [!] -i IF[+]  [!] -o IF[+]
 *             -m tcp|udp [!] --sport P[:P] [!] --dport P[:P]   (implicit after -p tcp|udp)
 *             -m icmp [!] --icmp-type N|name
 *             -m comment --comment TEXT
 *             -m mark [!] --mark V[/M]
 *             -m addrtype [!] --src-type T[,T]  [!] --dst-type T[,T]  (LOCAL UNICAST
 *                BROADCAST MULTICAST)
 *             -m statistic --mode random [!] --probability P
 *             -m conntrack [!] --ctstate S[,S]   (INVALID NEW ESTABLISHED RELATED
 *                UNTRACKED SNAT DNAT);  -m state [!] --state S[,S]
 *             -m recent [!] --set|--rcheck|--update|--remove --name N [--seconds S]
 *                [--reap] [--rsource|--rdest] [--mask M]
 *             -m nfacct --nfacct-name N  (accepted, counts nothing)
 *   targets   -j ACCEPT | DROP | RETURN | CHAIN;  -g CHAIN
 *             -j REJECT [--reject-with icmp-port-unreachable|icmp-net-unreachable|
 *                icmp-host-unreachable|icmp-proto-unreachable|icmp-net-prohibited|
 *                icmp-host-prohibited|icmp-admin-prohibited|tcp-reset]
 *             -j DNAT --to-destination IP[:PORT[-PORT]] [--random] [--persistent]
 *             -j SNAT --to-source IP[:PORT[-PORT]] [--random] [--random-fully] [--persistent]
 *             -j MASQUERADE [--to-ports P[-P]] [--random] [--random-fully]
 *             -j MARK --set-xmark V[/M] | --set-mark V[/M] | --and-mark V | --or-mark V |
 *                --xor-mark V
 * Quoting: "..." (with \" and \\) and '...', as iptables-restore and a shell accept. */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "nf_int.h"
#include "net_int.h"

#define NF_MAX_DEPTH 64             /* jump nesting the engine supports (checked at commit) */
#define NF_CHAIN_NAME_MAX 28        /* XT_EXTENSION_MAXNAMELEN - 1 */
#define NF_COMMENT_MAX 256          /* XT_MAX_COMMENT_LEN */

typedef struct nf_share nf_share_t;
static const char *const table_names[NF_TBL_COUNT] = { "filter", "nat", "mangle", "raw" };
static const char *const hook_names[NF_HOOK_COUNT] = {
    "PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING" };
/* Built-in chains of each table (net/ipv4/netfilter/iptable_*.c valid_hooks). */
static const uint8_t table_hooks[NF_TBL_COUNT] = {
    [NF_TBL_FILTER] = 1u << NF_INPUT | 1u << NF_FORWARD | 1u << NF_OUTPUT,
    [NF_TBL_NAT] = 1u << NF_PREROUTING | 1u << NF_INPUT | 1u << NF_OUTPUT | 1u << NF_POSTROUTING,
    [NF_TBL_MANGLE] = 0x1f,
    [NF_TBL_RAW] = 1u << NF_PREROUTING | 1u << NF_OUTPUT,
};

const char *nf_hook_name(enum nf_hook h) { return hook_names[h]; }

/* ---- parameters and lifetime ---------------------------------------------------------- */

void nf_params_default(nf_params_t *p)
{
    memset(p, 0, sizeof *p);
    p->conntrack = false;
    p->tcp_loose = true;                    /* nf_conntrack_tcp_loose = 1 */
    p->to_syn_sent = 120 * SIM_S;           /* nf_conntrack_tcp_timeout_syn_sent */
    p->to_syn_recv = 60 * SIM_S;
    p->to_established = 432000 * SIM_S;
    p->to_fin_wait = 120 * SIM_S;
    p->to_close_wait = 60 * SIM_S;
    p->to_last_ack = 30 * SIM_S;
    p->to_time_wait = 120 * SIM_S;
    p->to_close = 10 * SIM_S;
    p->to_unacknowledged = 300 * SIM_S;     /* also tcp_timeout_max_retrans */
    p->nat_port_lo = 1024;                  /* nf_nat_l4proto_unique_tuple default range */
    p->nat_port_hi = 65535;
    p->to_udp = 30 * SIM_S;                 /* nf_conntrack_udp_timeout */
    p->to_udp_stream = 120 * SIM_S;         /* nf_conntrack_udp_timeout_stream */
    p->to_icmp = 30 * SIM_S;                /* nf_conntrack_icmp_timeout */
    p->tcp_max_retrans = 3;                 /* nf_conntrack_tcp_max_retrans */
    p->sweep_interval = 10 * SIM_S;         /* model choice: reaping cadence only */
    p->recent_list_tot = 100;               /* xt_recent ip_list_tot */
    p->ct_max = NF_CT_MAX_DEFAULT;
}

const nf_params_t *nf_params(const nf_t *nf) { return &nf->params; }

static nf_table_t *table_new(int id);
static void table_free(nf_table_t *t);
static void table_release(nf_t *nf, int ti);
static void nf_refresh(nf_t *nf);

nf_t *nf_get(net_node_t *node)
{
    if (node->nf) return node->nf;
    nf_t *nf = lb_calloc(1, sizeof *nf);
    nf->node = node;
    nf->net = node->net;
    nf->sim = net_sim(node->net);
    nf_params_default(&nf->params);
    for (int i = 0; i < NF_TBL_COUNT; i++) nf->tables[i] = table_new(i);
    char name[160];
    snprintf(name, sizeof name, "nf:%s", node->name);
    nf->rng = sim_rng(nf->sim, name);
    ct_init(nf);
    node->nf = nf;
    nf_refresh(nf);
    return nf;
}

void nf_free(nf_t *nf)
{
    if (!nf) return;
    ct_fini(nf);
    nft_state_free_(nf->nft);
    for (int i = 0; i < NF_TBL_COUNT; i++) table_release(nf, i);
    for (size_t i = 0; i < nf->recents.n; i++) {
        lb_free(nf->recents.v[i]->name);
        lb_free(nf->recents.v[i]->ent);
        lb_free(nf->recents.v[i]);
    }
    lb_vec_free(&nf->recents);
    lb_free(nf->walk_hist);
    if (nf->node && nf->node->nf == nf) nf->node->nf = NULL;
    lb_free(nf);
}

void nf_set_params(nf_t *nf, const nf_params_t *p)
{
    nf->params = *p;
    nf_refresh(nf);
}

/* ---- tables and chains ------------------------------------------------------------------ */

static nf_chain_t *chain_new(const char *name, int hook)
{
    nf_chain_t *c = lb_calloc(1, sizeof *c);
    c->name = lb_strdup(name);
    c->hook = hook;
    c->policy = NFT_ACCEPT;
    return c;
}

static void rule_fini(nf_rule_t *r)
{
    lb_free(r->text);
    lb_free(r->comment);
    lb_free(r->nfacct);
}

static void cidx_free(nf_chain_t *c)
{
    if (!c->idx) return;
    lb_free(c->idx->ent);
    lb_free(c->idx->other);
    lb_index_free(&c->idx->ix);
    lb_free(c->idx);
    c->idx = NULL;
    c->idx_gen = 0;
}

static void chain_flush(nf_chain_t *c)
{
    for (size_t i = 0; i < c->rules.n; i++) rule_fini(&c->rules.v[i]);
    c->rules.n = 0;
    cidx_free(c);
}

static void chain_free(nf_chain_t *c)
{
    chain_flush(c);
    lb_vec_free(&c->rules);
    lb_free(c->name);
    lb_free(c);
}

static void index_rebuild(nf_table_t *t)
{
    size_t want = 16;
    while (want < t->chains.n * 2 + 2) want *= 2;
    if (want != t->nslots) {
        lb_free(t->slots);
        t->slots = lb_calloc(want, sizeof *t->slots);
        t->nslots = want;
    } else {
        memset(t->slots, 0, want * sizeof *t->slots);
    }
    for (size_t i = 0; i < t->chains.n; i++) {
        size_t k = lb_hash_str(t->chains.v[i]->name) & (t->nslots - 1);
        while (t->slots[k]) k = (k + 1) & (t->nslots - 1);
        t->slots[k] = t->chains.v[i];
    }
}

static nf_chain_t *chain_find(const nf_table_t *t, const char *name)
{
    size_t k = lb_hash_str(name) & (t->nslots - 1);
    for (nf_chain_t *c; (c = t->slots[k]) != NULL; k = (k + 1) & (t->nslots - 1))
        if (strcmp(c->name, name) == 0) return c;
    return NULL;
}

static void chain_add(nf_table_t *t, nf_chain_t *c)
{
    lb_vec_push(&t->chains, c);
    if (t->chains.n * 2 + 2 > t->nslots) {
        index_rebuild(t);
    } else {
        size_t k = lb_hash_str(c->name) & (t->nslots - 1);
        while (t->slots[k]) k = (k + 1) & (t->nslots - 1);
        t->slots[k] = c;
    }
}

static void chain_remove(nf_table_t *t, nf_chain_t *c)
{
    for (size_t i = 0; i < t->chains.n; i++)
        if (t->chains.v[i] == c) {
            memmove(&t->chains.v[i], &t->chains.v[i + 1],
                    (t->chains.n - i - 1) * sizeof *t->chains.v);
            t->chains.n--;
            break;
        }
    chain_free(c);
    index_rebuild(t);
}

static nf_table_t *table_new(int id)
{
    nf_table_t *t = lb_calloc(1, sizeof *t);
    t->id = id;
    index_rebuild(t);
    for (int h = 0; h < NF_HOOK_COUNT; h++)
        if (table_hooks[id] & (1u << h)) {
            t->builtin[h] = chain_new(hook_names[h], h);
            chain_add(t, t->builtin[h]);
        }
    return t;
}

static void table_free(nf_table_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->chains.n; i++) chain_free(t->chains.v[i]);
    lb_vec_free(&t->chains);
    lb_free(t->slots);
    lb_free(t);
}

static char *dup_or_null(const char *s) { return s ? lb_strdup(s) : NULL; }

/* A deep copy; with rules=false only the built-in chains' policies and counters. */
static nf_table_t *table_clone(const nf_table_t *src, bool rules)
{
    nf_table_t *t = table_new(src->id);
    t->touched = src->touched;
    for (int h = 0; h < NF_HOOK_COUNT; h++)
        if (src->builtin[h]) {
            t->builtin[h]->policy = src->builtin[h]->policy;
            t->builtin[h]->pkts = src->builtin[h]->pkts;
            t->builtin[h]->bytes = src->builtin[h]->bytes;
        }
    if (!rules) return t;
    uint32_t ord = 0;
    for (size_t i = 0; i < src->chains.n; i++) {
        src->chains.v[i]->mark_ = (int)i;
        if (src->chains.v[i]->hook < 0) chain_add(t, chain_new(src->chains.v[i]->name, -1));
    }
    assert(t->chains.n == src->chains.n);
    for (size_t i = 0; i < src->chains.n; i++) {
        const nf_chain_t *sc = src->chains.v[i];
        nf_chain_t *dc = t->chains.v[i];
        lb_vec_reserve(&dc->rules, sc->rules.n);
        for (size_t j = 0; j < sc->rules.n; j++) {
            nf_rule_t r = sc->rules.v[j];
            r.origin = ord++;
            r.text = lb_strdup(r.text);
            r.comment = dup_or_null(r.comment);
            r.nfacct = dup_or_null(r.nfacct);
            if (r.jump) r.jump = t->chains.v[r.jump->mark_];
            dc->rules.v[dc->rules.n++] = r;
        }
    }
    return t;
}

/* ---- shared tables ------------------------------------------------------------------------
 * Every node of a large cluster holds the same kube-proxy rules. A table can therefore be
 * interned: made immutable and shared by every node whose table has the same content
 * (chains, policies, rule texts; a table with `-m recent` rules is never shared, its lists
 * are per node). A node's counters of a shared table live in its nf->ctr / nf->pol, in
 * table order (chain by chain, rule by rule), so iptables-save -c still shows each node's
 * own. Changing a shared table copies it first (unshare: a private table with the node's
 * counters back in its rules). nf_restore_flags with NF_RESTORE_SHARED interns the table
 * before and after each section and remembers (table before, section text) -> table
 * after, with where each rule of the result came from, so the next node that applies the
 * same text to the same table gets the result without parsing it, its counters carried
 * over as the parser would have (kept for rules that stay, zero for new ones).
 *
 *   private table --intern--> shared (refs: nodes + memo entries) --unshare--> private copy
 */
#define NF_MEMO_MAX 64              /* remembered restores (oldest forgotten first) */
#define NF_KEYED 0x100              /* memo flag: keyed by the caller (nf_restore_keyed) */

typedef struct nf_memo {
    nf_table_t *base, *result;      /* both hold a ref */
    uint64_t text_hash;
    size_t text_len;
    int flags;
    uint32_t *origin;               /* result rule k came from base rule origin[k] */
    size_t lines;                   /* newlines in the section's body */
} nf_memo_t;

struct nf_share {
    LB_VEC(nf_table_t *) tables;    /* interned */
    lb_index_t ix;                  /* content hash -> tables position */
    LB_VEC(nf_memo_t) memo;         /* oldest first */
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void table_number(nf_table_t *t)
{
    uint32_t k = 0;
    for (size_t i = 0; i < t->chains.n; i++) {
        t->chains.v[i]->ord = k;
        k += (uint32_t)t->chains.v[i]->rules.n;
    }
    t->nrules = k;
}

static uint64_t table_hash(const nf_table_t *t)
{
    uint64_t h = 1469598103934665603ull;
    int hdr[2] = { t->id, t->touched };
    h = fnv(h, hdr, sizeof hdr);
    for (size_t i = 0; i < t->chains.n; i++) {
        const nf_chain_t *c = t->chains.v[i];
        h = fnv(h, c->name, strlen(c->name) + 1);
        int ch[2] = { c->hook, c->policy };
        h = fnv(h, ch, sizeof ch);
        for (size_t j = 0; j < c->rules.n; j++)
            h = fnv(h, c->rules.v[j].text, strlen(c->rules.v[j].text) + 1);
        h = fnv(h, "\n", 1);
    }
    return h;
}

static bool table_equal(const nf_table_t *a, const nf_table_t *b)
{
    if (a->id != b->id || a->touched != b->touched || a->chains.n != b->chains.n) return false;
    for (size_t i = 0; i < a->chains.n; i++) {
        const nf_chain_t *x = a->chains.v[i], *y = b->chains.v[i];
        if (strcmp(x->name, y->name) || x->hook != y->hook || x->policy != y->policy ||
            x->rules.n != y->rules.n)
            return false;
        for (size_t j = 0; j < x->rules.n; j++)
            if (strcmp(x->rules.v[j].text, y->rules.v[j].text)) return false;
    }
    return true;
}

static bool table_shareable(const nf_table_t *t)
{
    for (size_t i = 0; i < t->chains.n; i++)
        for (size_t j = 0; j < t->chains.v[i]->rules.n; j++)
            if (t->chains.v[i]->rules.v[j].recent) return false;
    return true;
}

static nf_share_t *share_of(nf_t *nf)
{
    net_t *net = nf->net;
    if (!net->nf_share) net->nf_share = lb_calloc(1, sizeof *net->nf_share);
    return net->nf_share;
}

static void share_unref(nf_share_t *sh, nf_table_t *t)
{
    assert(t->interned && t->refs > 0);
    if (--t->refs > 0) return;
    for (size_t i = 0; i < sh->tables.n; i++)
        if (sh->tables.v[i] == t) {
            size_t last = sh->tables.n - 1;
            lb_index_remove(&sh->ix, t->chash, i);
            if (i != last) {
                lb_index_remove(&sh->ix, sh->tables.v[last]->chash, last);
                sh->tables.v[i] = sh->tables.v[last];
                lb_index_add(&sh->ix, sh->tables.v[i]->chash, i);
            }
            sh->tables.n--;
            break;
        }
    table_free(t);
}

static void memo_drop(nf_share_t *sh, size_t i)
{
    nf_memo_t *m = &sh->memo.v[i];
    share_unref(sh, m->base);
    share_unref(sh, m->result);
    lb_free(m->origin);
    memmove(m, m + 1, (sh->memo.n - i - 1) * sizeof *m);
    sh->memo.n--;
}

void nf_share_free_(nf_share_t *sh)
{
    if (!sh) return;
    while (sh->memo.n) memo_drop(sh, sh->memo.n - 1);
    assert(sh->tables.n == 0);          /* every node has released its tables */
    lb_vec_free(&sh->tables);
    lb_vec_free(&sh->memo);
    lb_index_free(&sh->ix);
    lb_free(sh);
}

/* Drops the node's use of its table ti (and its counters of it); the slot is NULL after. */
static void table_release(nf_t *nf, int ti)
{
    nf_table_t *t = nf->tables[ti];
    nf->tables[ti] = NULL;
    lb_free(nf->ctr[ti]);
    nf->ctr[ti] = NULL;
    if (!t) return;
    if (t->interned) share_unref(share_of(nf), t);
    else table_free(t);
}

/* Makes tables[ti] shared: the interned table of the same content, or this one interned.
 * The node's counters move out of the rules into nf->ctr / nf->pol. No-op for a table
 * that is shared already or cannot be. */
static void table_intern(nf_t *nf, int ti)
{
    nf_table_t *t = nf->tables[ti];
    if (t->interned || !table_shareable(t)) return;
    for (size_t i = 0; i < t->chains.n; i++)       /* an index built before a change */
        if (t->chains.v[i]->idx_gen != nf->rules_gen) cidx_free(t->chains.v[i]);
    table_number(t);
    t->chash = table_hash(t);
    nf_share_t *sh = share_of(nf);
    nf_table_t *found = NULL;
    size_t it;
    for (size_t p = lb_index_first(&sh->ix, t->chash, &it); p != LB_INDEX_NONE && !found;
         p = lb_index_next(&sh->ix, t->chash, &it))
        if (table_equal(sh->tables.v[p], t)) found = sh->tables.v[p];
    uint64_t *ctr = lb_calloc(2 * (size_t)t->nrules + 2, sizeof *ctr);
    for (size_t i = 0; i < t->chains.n; i++) {
        nf_chain_t *c = t->chains.v[i];
        for (size_t j = 0; j < c->rules.n; j++) {
            ctr[2 * (c->ord + j)] = c->rules.v[j].pkts;
            ctr[2 * (c->ord + j) + 1] = c->rules.v[j].bytes;
            c->rules.v[j].pkts = c->rules.v[j].bytes = 0;
        }
    }
    for (int h = 0; h < NF_HOOK_COUNT; h++)
        if (t->builtin[h]) {
            nf->pol[ti][h][0] = t->builtin[h]->pkts;
            nf->pol[ti][h][1] = t->builtin[h]->bytes;
            t->builtin[h]->pkts = t->builtin[h]->bytes = 0;
        }
    if (found) {
        table_free(t);
        t = found;
    } else {
        t->interned = true;
        lb_vec_push(&sh->tables, t);
        lb_index_add(&sh->ix, t->chash, sh->tables.n - 1);
    }
    t->refs++;
    nf->tables[ti] = t;
    lb_free(nf->ctr[ti]);
    nf->ctr[ti] = ctr;
}

/* A private copy of tables[ti] (all of it, or with rules false only the built-in chains'
 * policies), holding the node's counters; each copied rule's origin is its position in
 * tables[ti]'s rule order. */
static nf_table_t *table_clone_nf(nf_t *nf, int ti, bool rules)
{
    const nf_table_t *src = nf->tables[ti];
    nf_table_t *t = table_clone(src, rules);
    if (!src->interned) return t;
    for (int h = 0; h < NF_HOOK_COUNT; h++)
        if (t->builtin[h]) {
            t->builtin[h]->pkts = nf->pol[ti][h][0];
            t->builtin[h]->bytes = nf->pol[ti][h][1];
        }
    for (size_t i = 0; rules && i < t->chains.n; i++) {
        nf_chain_t *c = t->chains.v[i];
        for (size_t j = 0; j < c->rules.n; j++) {
            c->rules.v[j].pkts = nf->ctr[ti][2 * c->rules.v[j].origin];
            c->rules.v[j].bytes = nf->ctr[ti][2 * c->rules.v[j].origin + 1];
        }
    }
    return t;
}

/* Before changing tables[ti] in place: a private copy if it is shared. */
static void table_unshare(nf_t *nf, int ti)
{
    if (!nf->tables[ti]->interned) return;
    nf_table_t *t = table_clone_nf(nf, ti, true);
    table_release(nf, ti);
    nf->tables[ti] = t;
}

/* The node's own counters of rule j of chain c in table ti, and of a policy. */
static uint64_t rule_pkts(const nf_t *nf, int ti, const nf_chain_t *c, size_t j)
{
    return nf->ctr[ti] ? nf->ctr[ti][2 * (c->ord + j)] : c->rules.v[j].pkts;
}

static uint64_t rule_bytes(const nf_t *nf, int ti, const nf_chain_t *c, size_t j)
{
    return nf->ctr[ti] ? nf->ctr[ti][2 * (c->ord + j) + 1] : c->rules.v[j].bytes;
}

static uint64_t policy_ctr(const nf_t *nf, int ti, const nf_chain_t *c, int which)
{
    if (nf->ctr[ti]) return nf->pol[ti][c->hook][which];
    return which ? c->bytes : c->pkts;
}

static bool table_references(const nf_table_t *t, const nf_chain_t *target)
{
    for (size_t i = 0; i < t->chains.n; i++) {
        const nf_chain_t *c = t->chains.v[i];
        for (size_t j = 0; j < c->rules.n; j++)
            if (c->rules.v[j].jump == target) return true;
    }
    return false;
}

static bool chain_trivial(const nf_chain_t *c)
{
    return !c || (c->rules.n == 0 && c->policy == NFT_ACCEPT);
}

/* Would rule r (in table ti) load conntrack? Any nat rule, or the conntrack/state matches. */
static bool rule_needs_ct(int ti, const nf_rule_t *r)
{
    return ti == NF_TBL_NAT || (r->m & (NFM_CTSTATE | NFM_STATE));
}

/* Recomputes the fast-path flags after any change of rules or params. Conntrack is
 * latched on, as the kernel module stays loaded: by params, by any nat rule, or by a
 * rule using the conntrack/state matches. With scan_rules false the rules are not looked
 * at (nf_exec has latched conntrack for the one rule it added): one command must not
 * cost a walk over every rule, or a node's N commands would cost N^2. */
static void nf_refresh_flags(nf_t *nf, bool scan_rules)
{
    bool any = false;
    nf->rules_gen++;                        /* every chain index is stale now */
    if (nf->params.conntrack) nf->ct_on = true;
    for (int h = 0; h < NF_HOOK_COUNT; h++) nf->hook_tables[h] = 0;
    for (int ti = 0; ti < NF_TBL_COUNT; ti++) {
        nf_table_t *t = nf->tables[ti];
        for (int h = 0; h < NF_HOOK_COUNT; h++)
            if (!chain_trivial(t->builtin[h])) {
                nf->hook_tables[h] |= (uint8_t)(1u << ti);
                any = true;
            }
        for (size_t i = 0; scan_rules && i < t->chains.n && !nf->ct_on; i++) {
            const nf_chain_t *c = t->chains.v[i];
            for (size_t j = 0; j < c->rules.n; j++)
                if (rule_needs_ct(ti, &c->rules.v[j])) nf->ct_on = true;
        }
    }
    nf->active = any || nf->ct_on;
}

static void nf_refresh(nf_t *nf) { nf_refresh_flags(nf, true); }

/* ---- text helpers ------------------------------------------------------------------------ */

typedef struct sbuf { char *s; size_t n, cap; } sbuf_t;

static void sb_addf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_addf(sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        size_t room = b->cap - b->n;
        va_start(ap, fmt);
        int k = vsnprintf(b->s ? b->s + b->n : NULL, room, fmt, ap);
        va_end(ap);
        assert(k >= 0);
        if ((size_t)k < room) {
            b->n += (size_t)k;
            return;
        }
        b->cap = (b->cap + (size_t)k + 1) * 2;
        b->s = lb_realloc(b->s, b->cap);
    }
}

/* xtables_save_string(): bare when only [A-Za-z0-9_-], else double-quoted with \" \\. */
static void sb_addstr(sbuf_t *b, const char *v)
{
    static const char ok[] = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    size_t k = strspn(v, ok);
    if (k > 0 && v[k] == '\0') {
        sb_addf(b, " %s", v);
        return;
    }
    sb_addf(b, " \"");
    for (const char *p = v; *p; p++) {
        if (*p == '"' || *p == '\\' || *p == '\'') sb_addf(b, "\\");
        sb_addf(b, "%c", *p);
    }
    sb_addf(b, "\"");
}

static int mask_len(uint32_t m)
{
    int n = 0;
    while (n < 32 && (m & (0x80000000u >> n))) n++;
    return lb_prefix_mask(n) == m ? n : -1;
}

static void sb_addr(sbuf_t *b, const char *opt, bool inv, uint32_t a, uint32_t m)
{
    char s[16], ms[16];
    int len = mask_len(m);
    if (len >= 0) sb_addf(b, "%s %s %s/%d", inv ? " !" : "", opt, lb_ip_str(a, s), len);
    else sb_addf(b, "%s %s %s/%s", inv ? " !" : "", opt, lb_ip_str(a, s), lb_ip_str(m, ms));
}

static const char *proto_name(uint8_t p, char buf[8])
{
    switch (p) {
    case NET_PROTO_TCP: return "tcp";
    case NET_PROTO_UDP: return "udp";
    case NET_PROTO_ICMP: return "icmp";
    case 132: return "sctp";
    default: snprintf(buf, 8, "%u", p); return buf;
    }
}

static const struct { const char *name; uint16_t bit; } ct_state_names[] = {
    { "INVALID", NF_CTS_INVALID }, { "NEW", NF_CTS_NEW }, { "RELATED", NF_CTS_RELATED },
    { "ESTABLISHED", NF_CTS_ESTABLISHED }, { "UNTRACKED", NF_CTS_UNTRACKED },
    { "SNAT", NF_CTS_SNAT }, { "DNAT", NF_CTS_DNAT },
};

static void sb_states(sbuf_t *b, uint16_t bits)
{
    const char *sep = " ";
    for (size_t i = 0; i < sizeof ct_state_names / sizeof ct_state_names[0]; i++)
        if (bits & ct_state_names[i].bit) {
            sb_addf(b, "%s%s", sep, ct_state_names[i].name);
            sep = ",";
        }
}

static const struct { const char *name; uint8_t bit; } addrtype_names[] = {
    { "UNICAST", NF_AT_UNICAST }, { "LOCAL", NF_AT_LOCAL }, { "BROADCAST", NF_AT_BROADCAST },
    { "MULTICAST", NF_AT_MULTICAST },
};

static void sb_addrtypes(sbuf_t *b, uint8_t bits)
{
    const char *sep = " ";
    for (size_t i = 0; i < sizeof addrtype_names / sizeof addrtype_names[0]; i++)
        if (bits & addrtype_names[i].bit) {
            sb_addf(b, "%s%s", sep, addrtype_names[i].name);
            sep = ",";
        }
}

static const struct { const char *name; uint16_t code; } reject_names[] = {
    { "icmp-net-unreachable", ICMP_NET_UNREACH }, { "icmp-host-unreachable", ICMP_HOST_UNREACH },
    { "icmp-proto-unreachable", 2 }, { "icmp-port-unreachable", ICMP_PORT_UNREACH },
    { "icmp-net-prohibited", 9 }, { "icmp-host-prohibited", 10 },
    { "icmp-admin-prohibited", ICMP_ADMIN_PROHIBITED }, { "tcp-reset", NF_REJECT_TCP_RESET },
};

static void sb_ports(sbuf_t *b, const char *opt, bool inv, const uint16_t pr[2])
{
    if (pr[0] == pr[1]) sb_addf(b, "%s %s %u", inv ? " !" : "", opt, pr[0]);
    else sb_addf(b, "%s %s %u:%u", inv ? " !" : "", opt, pr[0], pr[1]);
}

static void sb_nat(sbuf_t *b, const nf_rule_t *r, bool with_addr)
{
    char s[16];
    if (with_addr) {
        sb_addf(b, " %s", lb_ip_str(r->nat_addr, s));
        if (r->nat_flags & NF_NAT_HAS_PORT) {
            sb_addf(b, ":%u", r->nat_port[0]);
            if (r->nat_port[1] != r->nat_port[0]) sb_addf(b, "-%u", r->nat_port[1]);
        }
    } else if (r->nat_flags & NF_NAT_HAS_PORT) {
        sb_addf(b, " --to-ports %u", r->nat_port[0]);
        if (r->nat_port[1] != r->nat_port[0]) sb_addf(b, "-%u", r->nat_port[1]);
    }
    if (r->nat_flags & NF_NAT_RANDOM) sb_addf(b, " --random");
    if (r->nat_flags & NF_NAT_RANDOM_FULLY) sb_addf(b, " --random-fully");
    if (r->nat_flags & NF_NAT_PERSISTENT) sb_addf(b, " --persistent");
}

/* The rule in iptables-save form (without "-A CHAIN"): ip header matches, then the
 * matches in the order given, then the target -- what libiptc/xtables print. */
static char *rule_text(const nf_rule_t *r)
{
    sbuf_t b = {0};
    char pn[8];
    uint32_t m = r->m, inv = r->inv;
    if (m & NFM_SRC) sb_addr(&b, "-s", inv & NFM_SRC, r->src, r->smask);
    if (m & NFM_DST) sb_addr(&b, "-d", inv & NFM_DST, r->dst, r->dmask);
    if (m & NFM_IN) sb_addf(&b, "%s -i %s", inv & NFM_IN ? " !" : "", r->in_if);
    if (m & NFM_OUT) sb_addf(&b, "%s -o %s", inv & NFM_OUT ? " !" : "", r->out_if);
    if (m & NFM_PROTO) sb_addf(&b, "%s -p %s", inv & NFM_PROTO ? " !" : "",
                               proto_name(r->proto, pn));
    for (int i = 0; i < r->nmods; i++) {
        switch (r->mods[i]) {
        case NF_MOD_TCP:
        case NF_MOD_UDP:
            sb_addf(&b, " -m %s", r->mods[i] == NF_MOD_TCP ? "tcp" : "udp");
            if (m & NFM_SPORT) sb_ports(&b, "--sport", inv & NFM_SPORT, r->sport);
            if (m & NFM_DPORT) sb_ports(&b, "--dport", inv & NFM_DPORT, r->dport);
            break;
        case NF_MOD_ICMP:
            sb_addf(&b, " -m icmp");
            if (m & NFM_ICMPTYPE)
                sb_addf(&b, "%s --icmp-type %u", inv & NFM_ICMPTYPE ? " !" : "", r->icmp_type);
            break;
        case NF_MOD_COMMENT:
            sb_addf(&b, " -m comment --comment");
            sb_addstr(&b, r->comment);
            break;
        case NF_MOD_MARK:
            sb_addf(&b, " -m mark%s --mark 0x%x", inv & NFM_MARK ? " !" : "", r->mark);
            if (r->mark_mask != 0xffffffffu) sb_addf(&b, "/0x%x", r->mark_mask);
            break;
        case NF_MOD_ADDRTYPE:
            sb_addf(&b, " -m addrtype");
            if (m & NFM_SRCTYPE) {
                sb_addf(&b, "%s --src-type", inv & NFM_SRCTYPE ? " !" : "");
                sb_addrtypes(&b, r->src_type);
            }
            if (m & NFM_DSTTYPE) {
                sb_addf(&b, "%s --dst-type", inv & NFM_DSTTYPE ? " !" : "");
                sb_addrtypes(&b, r->dst_type);
            }
            break;
        case NF_MOD_STATISTIC:
            sb_addf(&b, " -m statistic --mode random%s --probability %.11f",
                    inv & NFM_STAT ? " !" : "", (double)r->stat_prob / 2147483648.0);
            break;
        case NF_MOD_CONNTRACK:
            sb_addf(&b, " -m conntrack%s --ctstate", inv & NFM_CTSTATE ? " !" : "");
            sb_states(&b, r->ctstates);
            break;
        case NF_MOD_STATE:
            sb_addf(&b, " -m state%s --state", inv & NFM_STATE ? " !" : "");
            sb_states(&b, r->states);
            break;
        case NF_MOD_RECENT: {                   /* libxt_recent recent_save() order */
            static const char *const cmd[] = { "", "--set", "--rcheck", "--update", "--remove" };
            char ms[16];
            sb_addf(&b, " -m recent%s %s", inv & NFM_RECENT ? " !" : "", cmd[r->recent_cmd]);
            if (r->recent_secs) sb_addf(&b, " --seconds %u", r->recent_secs);
            if (r->recent_reap) sb_addf(&b, " --reap");
            sb_addf(&b, " --name %s --mask %s %s", r->recent->name,
                    lb_ip_str(r->recent_mask, ms), r->recent_rdest ? "--rdest" : "--rsource");
            break;
        }
        case NF_MOD_NFACCT:
            sb_addf(&b, " -m nfacct --nfacct-name");
            sb_addstr(&b, r->nfacct);
            break;
        default:
            assert(0);
        }
    }
    switch (r->target) {
    case NFT_NONE: break;
    case NFT_ACCEPT: sb_addf(&b, " -j ACCEPT"); break;
    case NFT_DROP: sb_addf(&b, " -j DROP"); break;
    case NFT_RETURN: sb_addf(&b, " -j RETURN"); break;
    case NFT_REJECT:
        for (size_t i = 0; i < sizeof reject_names / sizeof reject_names[0]; i++)
            if (reject_names[i].code == r->reject_with)
                sb_addf(&b, " -j REJECT --reject-with %s", reject_names[i].name);
        break;
    case NFT_DNAT: sb_addf(&b, " -j DNAT --to-destination"); sb_nat(&b, r, true); break;
    case NFT_SNAT: sb_addf(&b, " -j SNAT --to-source"); sb_nat(&b, r, true); break;
    case NFT_MASQ: sb_addf(&b, " -j MASQUERADE"); sb_nat(&b, r, false); break;
    case NFT_MARK: sb_addf(&b, " -j MARK --set-xmark 0x%x/0x%x", r->xmark, r->xmask); break;
    case NFT_JUMP: sb_addf(&b, " -j %s", r->jump->name); break;
    case NFT_GOTO: sb_addf(&b, " -g %s", r->jump->name); break;
    }
    if (!b.s) sb_addf(&b, " ");
    /* drop the leading space */
    char *t = lb_strdup(b.s[0] == ' ' ? b.s + 1 : b.s);
    lb_free(b.s);
    return t;
}

/* ---- tokenizer --------------------------------------------------------------------------- */

typedef struct toks { char **v; int n; char *buf; } toks_t;

static void toks_free(toks_t *t)
{
    lb_free(t->v);
    lb_free(t->buf);
    memset(t, 0, sizeof *t);
}

/* Splits a command line like iptables-restore's add_param_to_argv(): whitespace separates,
 * "..." groups, a backslash makes the next character literal; '...' also groups (as the
 * shell would for nf_exec command lines). */
static int tokenize(const char *line, toks_t *t, const char **why)
{
    size_t len = strlen(line);
    t->buf = lb_malloc(len + 1);
    t->v = lb_malloc((len / 2 + 2) * sizeof *t->v);
    t->n = 0;
    char *o = t->buf;
    const char *s = line;
    for (;;) {
        while (*s && isspace((unsigned char)*s)) s++;
        if (!*s) break;
        t->v[t->n++] = o;
        while (*s && !isspace((unsigned char)*s)) {
            if (*s == '\\' && s[1]) {
                s++;
                *o++ = *s++;
            } else if (*s == '"' || *s == '\'') {
                char q = *s++;
                while (*s && *s != q) {
                    if (q == '"' && *s == '\\' && s[1]) s++;
                    *o++ = *s++;
                }
                if (*s != q) {
                    *why = "unterminated quoted string";
                    return LB_EPARSE;
                }
                s++;
            } else {
                *o++ = *s++;
            }
        }
        *o++ = '\0';
    }
    return 0;
}

/* ---- the command parser --------------------------------------------------------------- */

enum cmd { CMD_NONE, CMD_APPEND, CMD_INSERT, CMD_REPLACE, CMD_DELETE, CMD_CHECK, CMD_NEW,
           CMD_FLUSH, CMD_DELCHAIN, CMD_POLICY, CMD_ZERO };

typedef struct pctx {
    nf_t *nf;
    nf_table_t **tables;            /* where commands apply (live, or a restore's staging) */
    bool restore;
    int line;
    char *err;
    size_t errlen;
    bool has_counters;              /* "[p:b] -A ..." in restore text */
    uint64_t cnt_pkts, cnt_bytes;
} pctx_t;

static int fail(pctx_t *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(pctx_t *c, int rc, const char *fmt, ...)
{
    if (c->err && c->errlen) {
        int k = snprintf(c->err, c->errlen, "line %d: ", c->line);
        if (k >= 0 && (size_t)k < c->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(c->err + k, c->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return rc;
}

static int table_id(const char *name)
{
    for (int i = 0; i < NF_TBL_COUNT; i++)
        if (strcmp(name, table_names[i]) == 0) return i;
    return -1;
}

static bool parse_u32(const char *s, uint32_t *v)
{
    if (!*s || *s == '-' || *s == '+') return false;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 0);
    if (*end || errno || x > 0xffffffffull) return false;
    *v = (uint32_t)x;
    return true;
}

static bool parse_port(const char *s, size_t n, uint16_t *v)
{
    char tmp[8];
    if (n == 0 || n >= sizeof tmp) return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)tmp[i])) return false;
    unsigned long x = strtoul(tmp, NULL, 10);
    if (x > 65535) return false;
    *v = (uint16_t)x;
    return true;
}

/* "80", "1000:2000", ":2000", "1000:" (xtables_parse_multi_ports / parse_ports). */
static bool parse_port_range(const char *s, uint16_t pr[2])
{
    const char *colon = strchr(s, ':');
    if (!colon) {
        if (!parse_port(s, strlen(s), &pr[0])) return false;
        pr[1] = pr[0];
        return true;
    }
    pr[0] = 0;
    pr[1] = 65535;
    if (colon > s && !parse_port(s, (size_t)(colon - s), &pr[0])) return false;
    if (colon[1] && !parse_port(colon + 1, strlen(colon + 1), &pr[1])) return false;
    return pr[0] <= pr[1];
}

/* "10.0.0.1", "10.0.0.0/8", "10.0.0.0/255.0.0.0"; the address is masked like iptables. */
static bool parse_addr(const char *s, uint32_t *a, uint32_t *m)
{
    const char *slash = strchr(s, '/');
    if (slash && strchr(slash + 1, '.')) {
        char ip[32];
        size_t n = (size_t)(slash - s);
        if (n >= sizeof ip) return false;
        memcpy(ip, s, n);
        ip[n] = '\0';
        if (lb_ip_parse(ip, a) || lb_ip_parse(slash + 1, m)) return false;
    } else {
        int plen;
        if (lb_cidr_parse(s, a, &plen)) return false;
        *m = lb_prefix_mask(plen);
    }
    *a &= *m;
    return true;
}

/* "IP", "IP:PORT", "IP:LO-HI" of --to-destination / --to-source. */
static bool parse_nat_to(const char *s, nf_rule_t *r)
{
    char ip[32];
    const char *colon = strchr(s, ':');
    size_t n = colon ? (size_t)(colon - s) : strlen(s);
    if (n >= sizeof ip) return false;
    memcpy(ip, s, n);
    ip[n] = '\0';
    if (lb_ip_parse(ip, &r->nat_addr)) return false;
    if (!colon) return true;
    const char *dash = strchr(colon + 1, '-');
    size_t pn = dash ? (size_t)(dash - colon - 1) : strlen(colon + 1);
    if (!parse_port(colon + 1, pn, &r->nat_port[0])) return false;
    r->nat_port[1] = r->nat_port[0];
    if (dash && !parse_port(dash + 1, strlen(dash + 1), &r->nat_port[1])) return false;
    if (r->nat_port[0] > r->nat_port[1] || r->nat_port[0] == 0) return false;
    r->nat_flags |= NF_NAT_HAS_PORT;
    return true;
}

static bool parse_list(const char *s, uint16_t *bits, bool addrtype)
{
    *bits = 0;
    char tmp[128];
    if (strlen(s) >= sizeof tmp) return false;
    strcpy(tmp, s);
    for (char *save = NULL, *w = strtok_r(tmp, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
        bool found = false;
        if (addrtype) {
            for (size_t i = 0; i < sizeof addrtype_names / sizeof addrtype_names[0]; i++)
                if (strcasecmp(w, addrtype_names[i].name) == 0) {
                    *bits |= addrtype_names[i].bit;
                    found = true;
                }
        } else {
            for (size_t i = 0; i < sizeof ct_state_names / sizeof ct_state_names[0]; i++)
                if (strcasecmp(w, ct_state_names[i].name) == 0) {
                    *bits |= ct_state_names[i].bit;
                    found = true;
                }
        }
        if (!found) return false;
    }
    return *bits != 0;
}

static nf_recent_t *recent_get(nf_t *nf, const char *name)
{
    for (size_t i = 0; i < nf->recents.n; i++)
        if (strcmp(nf->recents.v[i]->name, name) == 0) return nf->recents.v[i];
    nf_recent_t *rt = lb_calloc(1, sizeof *rt);
    rt->name = lb_strdup(name);
    rt->cap = nf->params.recent_list_tot > 0 ? (size_t)nf->params.recent_list_tot : 1;
    rt->ent = lb_calloc(rt->cap, sizeof *rt->ent);
    lb_vec_push(&nf->recents, rt);
    return rt;
}

static bool has_mod(const nf_rule_t *r, int mod)
{
    for (int i = 0; i < r->nmods; i++)
        if (r->mods[i] == mod) return true;
    return false;
}

static const struct { const char *name; int mod; } mod_names[] = {
    { "tcp", NF_MOD_TCP }, { "udp", NF_MOD_UDP }, { "icmp", NF_MOD_ICMP },
    { "comment", NF_MOD_COMMENT }, { "mark", NF_MOD_MARK }, { "addrtype", NF_MOD_ADDRTYPE },
    { "statistic", NF_MOD_STATISTIC }, { "conntrack", NF_MOD_CONNTRACK },
    { "state", NF_MOD_STATE }, { "recent", NF_MOD_RECENT }, { "nfacct", NF_MOD_NFACCT },
};

static const struct { const char *name; int target; } target_names[] = {
    { "ACCEPT", NFT_ACCEPT }, { "DROP", NFT_DROP }, { "RETURN", NFT_RETURN },
    { "REJECT", NFT_REJECT }, { "DNAT", NFT_DNAT }, { "SNAT", NFT_SNAT },
    { "MASQUERADE", NFT_MASQ }, { "MARK", NFT_MARK },
};

static int target_by_name(const char *s)
{
    for (size_t i = 0; i < sizeof target_names / sizeof target_names[0]; i++)
        if (strcmp(s, target_names[i].name) == 0) return target_names[i].target;
    return NFT_NONE;
}

/* Targets iptables has that the model does not: named so the error says so. */
static bool target_unsupported(const char *s)
{
    static const char *const names[] = {
        "LOG", "NFLOG", "CONNMARK", "NOTRACK", "CT", "TPROXY", "REDIRECT", "TCPMSS",
        "CLASSIFY", "TRACE", "AUDIT", "CHECKSUM", "TOS", "DSCP", "NETMAP", "SET", "TEE",
        "HMARK", "NFQUEUE", "SECMARK", "CONNSECMARK", "IDLETIMER", "SYNPROXY", "TTL", NULL };
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0) return true;
    return false;
}

typedef struct popts {              /* parse state beyond the rule itself */
    const char *target_name;        /* -j / -g argument */
    bool is_goto;
    bool target_opt;                /* some target option was seen */
    uint8_t mark_ops;               /* how many MARK operations */
} popts_t;

#define NEED_ARG(opt) do { if (*i + 1 >= argc) \
        return fail(c, LB_EPARSE, "option \"%s\" requires an argument", opt); } while (0)

/* A module's or the target's option at argv[*i]. Returns 1 when handled, 0 when no loaded
 * module knows it, or a negative error. */
static int parse_ext_option(pctx_t *c, nf_rule_t *r, popts_t *po, int argc, char **argv,
                            int *i, bool inv)
{
    const char *o = argv[*i];
    const char *a = *i + 1 < argc ? argv[*i + 1] : NULL;
    /* target options first: they can only belong to the target */
    int tg = po->target_name && !po->is_goto ? target_by_name(po->target_name) : NFT_NONE;
    if (tg != NFT_NONE) {
        if (inv && (!strncmp(o, "--to", 4) || !strncmp(o, "--reject", 8) ||
                    strstr(o, "-mark") || !strncmp(o, "--random", 8)))
            return fail(c, LB_EPARSE, "option \"%s\" does not take \"!\"", o);
        if (tg == NFT_REJECT && !strcmp(o, "--reject-with")) {
            NEED_ARG(o);
            for (size_t k = 0; k < sizeof reject_names / sizeof reject_names[0]; k++)
                if (!strcmp(a, reject_names[k].name) ||
                    (reject_names[k].code == NF_REJECT_TCP_RESET && !strcmp(a, "tcp-rst"))) {
                    r->reject_with = reject_names[k].code;
                    (*i)++;
                    po->target_opt = true;
                    return 1;
                }
            return fail(c, LB_EPARSE, "REJECT: unknown --reject-with type \"%s\"", a);
        }
        if ((tg == NFT_DNAT && !strcmp(o, "--to-destination")) ||
            (tg == NFT_SNAT && !strcmp(o, "--to-source"))) {
            NEED_ARG(o);
            if (!parse_nat_to(a, r))
                return fail(c, LB_EPARSE, "%s: invalid address \"%s\"", o, a);
            (*i)++;
            po->target_opt = true;
            return 1;
        }
        if (tg == NFT_MASQ && !strcmp(o, "--to-ports")) {
            NEED_ARG(o);
            const char *dash = strchr(a, '-');
            size_t n = dash ? (size_t)(dash - a) : strlen(a);
            if (!parse_port(a, n, &r->nat_port[0]) ||
                (dash && !parse_port(dash + 1, strlen(dash + 1), &r->nat_port[1])))
                return fail(c, LB_EPARSE, "--to-ports: invalid port range \"%s\"", a);
            if (!dash) r->nat_port[1] = r->nat_port[0];
            if (r->nat_port[0] > r->nat_port[1])
                return fail(c, LB_EPARSE, "--to-ports: invalid port range \"%s\"", a);
            r->nat_flags |= NF_NAT_HAS_PORT;
            (*i)++;
            return 1;
        }
        if (tg == NFT_DNAT || tg == NFT_SNAT || tg == NFT_MASQ) {
            if (!strcmp(o, "--random")) { r->nat_flags |= NF_NAT_RANDOM; return 1; }
            if (!strcmp(o, "--persistent") && tg != NFT_MASQ) {
                r->nat_flags |= NF_NAT_PERSISTENT;
                return 1;
            }
            if (!strcmp(o, "--random-fully") && tg != NFT_DNAT) {
                r->nat_flags |= NF_NAT_RANDOM_FULLY;
                return 1;
            }
        }
        if (tg == NFT_MARK) {
            /* libxt_MARK mark_tg_parse(): everything becomes (value, mask) xor-set form */
            uint32_t v, msk = 0xffffffffu;
            int op = !strcmp(o, "--set-xmark") ? 1 : !strcmp(o, "--set-mark") ? 2 :
                     !strcmp(o, "--and-mark") ? 3 : !strcmp(o, "--or-mark") ? 4 :
                     !strcmp(o, "--xor-mark") ? 5 : 0;
            if (op) {
                NEED_ARG(o);
                char tmp[64];
                if (strlen(a) >= sizeof tmp)
                    return fail(c, LB_EPARSE, "%s: invalid mark \"%s\"", o, a);
                strcpy(tmp, a);
                char *slash = strchr(tmp, '/');
                if (slash) {
                    *slash = '\0';
                    if (op > 2 || !parse_u32(slash + 1, &msk))
                        return fail(c, LB_EPARSE, "%s: invalid mark \"%s\"", o, a);
                }
                if (!parse_u32(tmp, &v))
                    return fail(c, LB_EPARSE, "%s: invalid mark \"%s\"", o, a);
                switch (op) {
                case 1: r->xmark = v; r->xmask = msk; break;
                case 2: r->xmark = v; r->xmask = v | msk; break;
                case 3: r->xmark = 0; r->xmask = ~v; break;
                case 4: r->xmark = v; r->xmask = v; break;
                case 5: r->xmark = v; r->xmask = 0; break;
                }
                po->mark_ops++;
                (*i)++;
                return 1;
            }
        }
    }
    /* matches, most recently loaded first (xtables tries them in that order) */
    for (int k = r->nmods - 1; k >= 0; k--) {
        switch (r->mods[k]) {
        case NF_MOD_TCP:
        case NF_MOD_UDP:
            if (!strcmp(o, "--sport") || !strcmp(o, "--source-port") ||
                !strcmp(o, "--dport") || !strcmp(o, "--destination-port")) {
                bool src = o[2] == 's';
                NEED_ARG(o);
                uint16_t pr[2];
                if (!parse_port_range(a, pr))
                    return fail(c, LB_EPARSE, "invalid port/service \"%s\" specified", a);
                uint32_t bit = src ? NFM_SPORT : NFM_DPORT;
                if (r->m & bit) return fail(c, LB_EPARSE, "option \"%s\" given twice", o);
                memcpy(src ? r->sport : r->dport, pr, sizeof pr);
                r->m |= bit;
                if (inv) r->inv |= bit;
                (*i)++;
                return 1;
            }
            break;
        case NF_MOD_ICMP:
            if (!strcmp(o, "--icmp-type")) {
                NEED_ARG(o);
                static const struct { const char *n; uint8_t t; } it[] = {
                    { "echo-reply", 0 }, { "destination-unreachable", 3 },
                    { "echo-request", 8 }, { "time-exceeded", 11 } };
                uint32_t v = 256;
                for (size_t q = 0; q < sizeof it / sizeof it[0]; q++)
                    if (!strcmp(a, it[q].n)) v = it[q].t;
                if (v == 256 && (!parse_u32(a, &v) || v > 255))
                    return fail(c, LB_EPARSE, "invalid ICMP type \"%s\"", a);
                r->icmp_type = (uint8_t)v;
                r->m |= NFM_ICMPTYPE;
                if (inv) r->inv |= NFM_ICMPTYPE;
                (*i)++;
                return 1;
            }
            break;
        case NF_MOD_COMMENT:
            if (!strcmp(o, "--comment")) {
                NEED_ARG(o);
                if (inv) return fail(c, LB_EPARSE, "option \"%s\" does not take \"!\"", o);
                if (strlen(a) >= NF_COMMENT_MAX)
                    return fail(c, LB_EPARSE, "comment too long (max %d)", NF_COMMENT_MAX - 1);
                lb_free(r->comment);
                r->comment = lb_strdup(a);
                (*i)++;
                return 1;
            }
            break;
        case NF_MOD_MARK:
            if (!strcmp(o, "--mark")) {
                NEED_ARG(o);
                char tmp[64];
                uint32_t v, msk = 0xffffffffu;
                if (strlen(a) >= sizeof tmp)
                    return fail(c, LB_EPARSE, "--mark: invalid mark \"%s\"", a);
                strcpy(tmp, a);
                char *slash = strchr(tmp, '/');
                if (slash) {
                    *slash = '\0';
                    if (!parse_u32(slash + 1, &msk))
                        return fail(c, LB_EPARSE, "--mark: invalid mark \"%s\"", a);
                }
                if (!parse_u32(tmp, &v))
                    return fail(c, LB_EPARSE, "--mark: invalid mark \"%s\"", a);
                r->mark = v;
                r->mark_mask = msk;
                r->m |= NFM_MARK;
                if (inv) r->inv |= NFM_MARK;
                (*i)++;
                return 1;
            }
            break;
        case NF_MOD_ADDRTYPE:
            if (!strcmp(o, "--src-type") || !strcmp(o, "--dst-type")) {
                NEED_ARG(o);
                uint16_t bits;
                if (!parse_list(a, &bits, true))
                    return fail(c, LB_EPARSE, "%s: unknown address type \"%s\"", o, a);
                uint32_t bit = o[2] == 's' ? NFM_SRCTYPE : NFM_DSTTYPE;
                if (bit == NFM_SRCTYPE) r->src_type = (uint8_t)bits;
                else r->dst_type = (uint8_t)bits;
                r->m |= bit;
                if (inv) r->inv |= bit;
                (*i)++;
                return 1;
            }
            break;
        case NF_MOD_STATISTIC:
            if (!strcmp(o, "--mode")) {
                NEED_ARG(o);
                if (strcmp(a, "random"))
                    return fail(c, LB_EPARSE, "statistic: --mode %s is not supported "
                                "(only random)", a);
                (*i)++;
                return 1;
            }
            if (!strcmp(o, "--probability")) {
                NEED_ARG(o);
                char *end;
                double pr = strtod(a, &end);
                if (*end || end == a || !(pr >= 0.0 && pr <= 1.0))
                    return fail(c, LB_EPARSE, "--probability: \"%s\" is not in 0..1", a);
                r->stat_prob = (uint32_t)lround(2147483648.0 * pr);  /* libxt_statistic */
                r->m |= NFM_STAT;
                if (inv) r->inv |= NFM_STAT;
                (*i)++;
                return 1;
            }
            break;
        case NF_MOD_CONNTRACK:
        case NF_MOD_STATE: {
            bool ct = r->mods[k] == NF_MOD_CONNTRACK;
            if (!strcmp(o, ct ? "--ctstate" : "--state")) {
                NEED_ARG(o);
                uint16_t bits;
                if (!parse_list(a, &bits, false) ||
                    (!ct && (bits & (NF_CTS_SNAT | NF_CTS_DNAT))))
                    return fail(c, LB_EPARSE, "%s: bad state \"%s\"", o, a);
                uint32_t bit = ct ? NFM_CTSTATE : NFM_STATE;
                if (ct) r->ctstates = bits;
                else r->states = bits;
                r->m |= bit;
                if (inv) r->inv |= bit;
                (*i)++;
                return 1;
            }
            break;
        }
        case NF_MOD_RECENT: {
            int cmd = !strcmp(o, "--set") ? NF_RECENT_SET : !strcmp(o, "--rcheck") ?
                      NF_RECENT_RCHECK : !strcmp(o, "--update") ? NF_RECENT_UPDATE :
                      !strcmp(o, "--remove") ? NF_RECENT_REMOVE : 0;
            if (cmd) {
                if (r->recent_cmd)
                    return fail(c, LB_EPARSE, "recent: only one of --set, --rcheck, "
                                "--update or --remove");
                r->recent_cmd = (uint8_t)cmd;
                r->m |= NFM_RECENT;
                if (inv) r->inv |= NFM_RECENT;
                return 1;
            }
            if (inv) return fail(c, LB_EPARSE, "option \"%s\" does not take \"!\"", o);
            if (!strcmp(o, "--name")) {
                NEED_ARG(o);
                if (!*a || strlen(a) > 200)
                    return fail(c, LB_EPARSE, "recent: invalid --name \"%s\"", a);
                r->recent = recent_get(c->nf, a);
                (*i)++;
                return 1;
            }
            if (!strcmp(o, "--seconds")) {
                NEED_ARG(o);
                if (!parse_u32(a, &r->recent_secs) || !r->recent_secs)
                    return fail(c, LB_EPARSE, "recent: invalid --seconds \"%s\"", a);
                (*i)++;
                return 1;
            }
            if (!strcmp(o, "--mask")) {
                NEED_ARG(o);
                if (lb_ip_parse(a, &r->recent_mask))
                    return fail(c, LB_EPARSE, "recent: invalid --mask \"%s\"", a);
                (*i)++;
                return 1;
            }
            if (!strcmp(o, "--reap")) { r->recent_reap = true; return 1; }
            if (!strcmp(o, "--rsource")) { r->recent_rdest = false; return 1; }
            if (!strcmp(o, "--rdest")) { r->recent_rdest = true; return 1; }
            break;
        }
        case NF_MOD_NFACCT:
            if (!strcmp(o, "--nfacct-name")) {
                NEED_ARG(o);
                lb_free(r->nfacct);
                r->nfacct = lb_strdup(a);
                (*i)++;
                return 1;
            }
            break;
        }
    }
    /* --sport/--dport after -p tcp|udp load the protocol match implicitly */
    if ((!strcmp(o, "--dport") || !strcmp(o, "--sport") || !strcmp(o, "--destination-port") ||
         !strcmp(o, "--source-port")) && (r->m & NFM_PROTO) && !(r->inv & NFM_PROTO) &&
        (r->proto == NET_PROTO_TCP || r->proto == NET_PROTO_UDP) && r->nmods < NF_MAX_MODS) {
        r->mods[r->nmods++] = r->proto == NET_PROTO_TCP ? NF_MOD_TCP : NF_MOD_UDP;
        return parse_ext_option(c, r, po, argc, argv, i, inv);
    }
    if (!strcmp(o, "--icmp-type") && (r->m & NFM_PROTO) && r->proto == NET_PROTO_ICMP &&
        r->nmods < NF_MAX_MODS) {
        r->mods[r->nmods++] = NF_MOD_ICMP;
        return parse_ext_option(c, r, po, argc, argv, i, inv);
    }
    return 0;
}

static const char *opt_is(const char *s, const char *shrt, const char *lng)
{
    return (!strcmp(s, shrt) || !strcmp(s, lng)) ? s : NULL;
}

static bool chain_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NF_CHAIN_NAME_MAX || s[0] == '-' || s[0] == '!') return false;
    for (size_t i = 0; i < n; i++)
        if (isspace((unsigned char)s[i])) return false;
    return target_by_name(s) == NFT_NONE;
}

/* Checks a table after a change: no jump loops, nesting within NF_MAX_DEPTH, and targets
 * only where the kernel allows them (xt_check_target hook masks: DNAT in PREROUTING/
 * OUTPUT, SNAT in POSTROUTING/INPUT, MASQUERADE in POSTROUTING, REJECT in INPUT/FORWARD/
 * OUTPUT), counting user chains by the hooks that reach them. */
static int walk(nf_chain_t *ch, int hook, int depth, const char **loop)
{
    if (ch->mark_ == 1) {
        *loop = ch->name;
        return -1;
    }
    if (ch->mark_ == 2) return 0;
    if (depth > NF_MAX_DEPTH) {
        *loop = ch->name;
        return -2;
    }
    ch->mark_ = 1;
    ch->hooks_ |= 1u << hook;
    for (size_t i = 0; i < ch->rules.n; i++)
        if (ch->rules.v[i].jump) {
            int rc = walk(ch->rules.v[i].jump, hook, depth + 1, loop);
            if (rc) return rc;
        }
    ch->mark_ = 2;
    return 0;
}

static int table_check(pctx_t *c, nf_table_t *t)
{
    for (size_t i = 0; i < t->chains.n; i++) t->chains.v[i]->hooks_ = 0;
    for (int h = 0; h < NF_HOOK_COUNT; h++) {
        if (!t->builtin[h]) continue;
        for (size_t i = 0; i < t->chains.n; i++) t->chains.v[i]->mark_ = 0;
        const char *where = NULL;
        int rc = walk(t->builtin[h], h, 0, &where);
        if (rc == -1)
            return fail(c, LB_EPARSE, "table %s: chain loop through %s", table_names[t->id],
                        where);
        if (rc == -2)
            return fail(c, LB_EPARSE, "table %s: chains nested deeper than %d at %s",
                        table_names[t->id], NF_MAX_DEPTH, where);
    }
    for (size_t i = 0; i < t->chains.n; i++) {
        const nf_chain_t *ch = t->chains.v[i];
        for (size_t j = 0; j < ch->rules.n; j++) {
            const nf_rule_t *r = &ch->rules.v[j];
            uint32_t ok;
            const char *name, *valid;
            switch (r->target) {
            case NFT_DNAT:
                ok = 1u << NF_PREROUTING | 1u << NF_OUTPUT;
                name = "DNAT"; valid = "PREROUTING and OUTPUT"; break;
            case NFT_SNAT:
                ok = 1u << NF_POSTROUTING | 1u << NF_INPUT;
                name = "SNAT"; valid = "POSTROUTING and INPUT"; break;
            case NFT_MASQ:
                ok = 1u << NF_POSTROUTING;
                name = "MASQUERADE"; valid = "POSTROUTING"; break;
            case NFT_REJECT:
                ok = 1u << NF_INPUT | 1u << NF_FORWARD | 1u << NF_OUTPUT;
                name = "REJECT"; valid = "INPUT, FORWARD and OUTPUT"; break;
            default:
                continue;
            }
            uint32_t bad = ch->hooks_ & ~ok;
            if (bad) {
                int h = __builtin_ctz(bad);
                return fail(c, LB_EPARSE, "%s in chain %s rule %zu is reached from %s; %s "
                            "is valid only in %s", name, ch->name, j + 1, hook_names[h],
                            name, valid);
            }
        }
    }
    return 0;
}

static int rule_same(const nf_rule_t *a, const nf_rule_t *b)
{
    return strcmp(a->text, b->text) == 0;
}

/* Parses and runs one command (argv[0..argc)). `deftable` is the table of a restore
 * block, or -1 for nf_exec where -t chooses (default filter). */
static int run_cmd(pctx_t *c, int argc, char **argv, int deftable)
{
    int tbl = deftable >= 0 ? deftable : NF_TBL_FILTER;
    enum cmd cmd = CMD_NONE;
    const char *chain_name = NULL, *policy = NULL;
    long rulenum = 0;
    nf_rule_t r = {0};
    r.origin = NF_NO_ORIGIN;                /* a new rule (nothing to carry over) */
    popts_t po = {0};
    bool inv = false, spec = false;
    int rc = 0;
    r.recent_mask = 0xffffffffu;
    r.reject_with = ICMP_PORT_UNREACH;

    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        const char *a = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "!")) {
            if (inv) { rc = fail(c, LB_EPARSE, "multiple \"!\" flags not allowed"); goto out; }
            inv = true;
            continue;
        }
        bool was_inv = inv;
        inv = false;
        enum cmd nc = CMD_NONE;
        if (opt_is(o, "-A", "--append")) nc = CMD_APPEND;
        else if (opt_is(o, "-I", "--insert")) nc = CMD_INSERT;
        else if (opt_is(o, "-R", "--replace")) nc = CMD_REPLACE;
        else if (opt_is(o, "-D", "--delete")) nc = CMD_DELETE;
        else if (opt_is(o, "-C", "--check")) nc = CMD_CHECK;
        else if (opt_is(o, "-N", "--new-chain")) nc = CMD_NEW;
        else if (opt_is(o, "-F", "--flush")) nc = CMD_FLUSH;
        else if (opt_is(o, "-X", "--delete-chain")) nc = CMD_DELCHAIN;
        else if (opt_is(o, "-P", "--policy")) nc = CMD_POLICY;
        else if (opt_is(o, "-Z", "--zero")) nc = CMD_ZERO;
        if (nc != CMD_NONE) {
            if (was_inv) { rc = fail(c, LB_EPARSE, "\"!\" before %s", o); goto out; }
            if (cmd != CMD_NONE) {
                rc = fail(c, LB_EPARSE, "more than one command (%s)", o);
                goto out;
            }
            cmd = nc;
            bool optional = nc == CMD_FLUSH || nc == CMD_DELCHAIN || nc == CMD_ZERO;
            if (a && (a[0] != '-' || !optional) && strcmp(a, "!")) {
                chain_name = a;
                i++;
            } else if (!optional) {
                rc = fail(c, LB_EPARSE, "option \"%s\" requires a chain name", o);
                goto out;
            }
            if (nc == CMD_POLICY) {
                if (i + 1 >= argc) {
                    rc = fail(c, LB_EPARSE, "-P %s: policy (ACCEPT or DROP) missing", chain_name);
                    goto out;
                }
                policy = argv[++i];
            }
            if ((nc == CMD_INSERT || nc == CMD_DELETE || nc == CMD_REPLACE) && i + 1 < argc &&
                isdigit((unsigned char)argv[i + 1][0])) {
                char *end;
                rulenum = strtol(argv[i + 1], &end, 10);
                if (*end || rulenum < 1) {
                    rc = fail(c, LB_EPARSE, "invalid rule number \"%s\"", argv[i + 1]);
                    goto out;
                }
                i++;
            }
            continue;
        }
        if (opt_is(o, "-t", "--table")) {
            if (c->restore) {
                rc = fail(c, LB_EPARSE, "-t cannot be used in restore input (use *table)");
                goto out;
            }
            if (!a || (tbl = table_id(a)) < 0) {
                rc = fail(c, LB_EPARSE, "unknown table \"%s\"", a ? a : "");
                goto out;
            }
            i++;
            continue;
        }
        if (opt_is(o, "-w", "--wait")) {          /* xtables lock wait: meaningless here */
            if (a && isdigit((unsigned char)a[0])) i++;
            continue;
        }
        if (opt_is(o, "-W", "--wait-interval")) {
            if (a) i++;
            continue;
        }
        spec = true;
        if (opt_is(o, "-s", "--source") || opt_is(o, "-d", "--destination")) {
            bool src = o[1] == 's' || o[2] == 's';
            uint32_t bit = src ? NFM_SRC : NFM_DST;
            if (!a) { rc = fail(c, LB_EPARSE, "option \"%s\" requires an argument", o); goto out; }
            if (r.m & bit) { rc = fail(c, LB_EPARSE, "multiple %s flags not allowed", o); goto out; }
            uint32_t ad, mk;
            if (!parse_addr(a, &ad, &mk)) {
                rc = fail(c, LB_EPARSE, "%s: invalid address \"%s\"", src ? "-s" : "-d", a);
                goto out;
            }
            if (mk || was_inv) {           /* 0.0.0.0/0 matches everything: iptables omits it */
                r.m |= bit;
                if (src) { r.src = ad; r.smask = mk; } else { r.dst = ad; r.dmask = mk; }
                if (was_inv) r.inv |= bit;
            }
            i++;
            continue;
        }
        if (opt_is(o, "-p", "--protocol")) {
            if (!a) { rc = fail(c, LB_EPARSE, "option \"%s\" requires an argument", o); goto out; }
            uint32_t v;
            if (!strcasecmp(a, "tcp")) v = NET_PROTO_TCP;
            else if (!strcasecmp(a, "udp")) v = NET_PROTO_UDP;
            else if (!strcasecmp(a, "icmp")) v = NET_PROTO_ICMP;
            else if (!strcasecmp(a, "sctp")) v = 132;
            else if (!strcasecmp(a, "all")) v = 0;
            else if (!parse_u32(a, &v) || v > 255) {
                rc = fail(c, LB_EPARSE, "unknown protocol \"%s\" specified", a);
                goto out;
            }
            if (v == 0 && was_inv) {
                rc = fail(c, LB_EPARSE, "rule would never match protocol");
                goto out;
            }
            if (v) {
                r.m |= NFM_PROTO;
                r.proto = (uint8_t)v;
                if (was_inv) r.inv |= NFM_PROTO;
            }
            i++;
            continue;
        }
        if (opt_is(o, "-i", "--in-interface") || opt_is(o, "-o", "--out-interface")) {
            bool in = o[1] == 'i' || o[2] == 'i';
            if (!a) { rc = fail(c, LB_EPARSE, "option \"%s\" requires an argument", o); goto out; }
            if (strlen(a) == 0 || strlen(a) > 15) {
                rc = fail(c, LB_EPARSE, "interface name \"%s\" must be 1-15 characters", a);
                goto out;
            }
            strcpy(in ? r.in_if : r.out_if, a);
            r.m |= in ? NFM_IN : NFM_OUT;
            if (was_inv) r.inv |= in ? NFM_IN : NFM_OUT;
            i++;
            continue;
        }
        if (opt_is(o, "-m", "--match")) {
            if (was_inv) { rc = fail(c, LB_EPARSE, "\"!\" before -m"); goto out; }
            if (!a) { rc = fail(c, LB_EPARSE, "option \"%s\" requires an argument", o); goto out; }
            int mod = 0;
            for (size_t k = 0; k < sizeof mod_names / sizeof mod_names[0]; k++)
                if (!strcmp(a, mod_names[k].name)) mod = mod_names[k].mod;
            if (!mod) { rc = fail(c, LB_EPARSE, "match \"%s\" is not supported", a); goto out; }
            if (has_mod(&r, mod)) {
                /* an implicit -p tcp match followed by an explicit -m tcp is one match */
                if (mod != NF_MOD_TCP && mod != NF_MOD_UDP && mod != NF_MOD_ICMP) {
                    rc = fail(c, LB_EPARSE, "match \"%s\" given twice", a);
                    goto out;
                }
            } else {
                if (r.nmods >= NF_MAX_MODS) { rc = fail(c, LB_EPARSE, "too many matches"); goto out; }
                r.mods[r.nmods++] = (uint8_t)mod;
            }
            i++;
            continue;
        }
        if (opt_is(o, "-j", "--jump") || opt_is(o, "-g", "--goto")) {
            if (was_inv) { rc = fail(c, LB_EPARSE, "\"!\" before %s", o); goto out; }
            if (!a) { rc = fail(c, LB_EPARSE, "option \"%s\" requires an argument", o); goto out; }
            if (po.target_name) { rc = fail(c, LB_EPARSE, "more than one target"); goto out; }
            po.target_name = a;
            po.is_goto = o[1] == 'g' || o[2] == 'g';
            i++;
            continue;
        }
        if (o[0] == '-' && o[1] == '-') {
            int k = parse_ext_option(c, &r, &po, argc, argv, &i, was_inv);
            if (k < 0) { rc = k; goto out; }
            if (k == 0) { rc = fail(c, LB_EPARSE, "unknown option \"%s\"", o); goto out; }
            continue;
        }
        if (o[0] == '-') rc = fail(c, LB_EPARSE, "unknown option \"%s\"", o);
        else rc = fail(c, LB_EPARSE, "bad argument \"%s\"", o);
        goto out;
    }
    if (inv) { rc = fail(c, LB_EPARSE, "\"!\" at the end of the line"); goto out; }
    if (cmd == CMD_NONE) { rc = fail(c, LB_EPARSE, "no command specified"); goto out; }

    nf_table_t *t = c->tables[tbl];
    t->touched = true;
    nf_chain_t *ch = NULL;
    if (chain_name && cmd != CMD_NEW) {
        ch = chain_find(t, chain_name);
        if (!ch) {
            rc = fail(c, LB_ENOENT, "no chain named \"%s\" in table %s", chain_name,
                      table_names[tbl]);
            goto out;
        }
    }
    if (cmd == CMD_REPLACE && (!rulenum || (size_t)rulenum > ch->rules.n)) {
        rc = fail(c, LB_EPARSE, "-R %s: rule number %ld does not exist", ch->name, rulenum);
        goto out;
    }
    bool rulecmd = cmd == CMD_APPEND || cmd == CMD_INSERT || cmd == CMD_CHECK ||
                   cmd == CMD_REPLACE || (cmd == CMD_DELETE && !rulenum);
    if (!rulecmd && (spec || po.target_name)) {
        rc = fail(c, LB_EPARSE, "rule options are not allowed with this command");
        goto out;
    }

    switch (cmd) {
    case CMD_NEW:
        if (!chain_name_ok(chain_name)) {
            rc = fail(c, LB_EPARSE, "invalid chain name \"%s\"", chain_name);
            goto out;
        }
        if (chain_find(t, chain_name)) {
            rc = fail(c, LB_EEXIST, "chain \"%s\" already exists in table %s", chain_name,
                      table_names[tbl]);
            goto out;
        }
        chain_add(t, chain_new(chain_name, -1));
        goto out;
    case CMD_FLUSH:
        if (ch) chain_flush(ch);
        else for (size_t k = 0; k < t->chains.n; k++) chain_flush(t->chains.v[k]);
        goto out;
    case CMD_ZERO:
        for (size_t k = 0; k < t->chains.n; k++) {
            nf_chain_t *z = t->chains.v[k];
            if (ch && z != ch) continue;
            z->pkts = z->bytes = 0;
            for (size_t j = 0; j < z->rules.n; j++) z->rules.v[j].pkts = z->rules.v[j].bytes = 0;
        }
        goto out;
    case CMD_DELCHAIN:
        for (size_t k = 0; k < t->chains.n; k++) {
            nf_chain_t *x = t->chains.v[k];
            if (ch ? x != ch : x->hook >= 0) continue;
            if (x->hook >= 0) {
                rc = fail(c, LB_EPARSE, "cannot delete built-in chain %s", x->name);
                goto out;
            }
            if (x->rules.n) {
                rc = fail(c, LB_EPARSE, "cannot delete chain %s: it is not empty", x->name);
                goto out;
            }
            if (table_references(t, x)) {
                rc = fail(c, LB_EPARSE, "cannot delete chain %s: rules jump to it", x->name);
                goto out;
            }
        }
        if (ch) {
            chain_remove(t, ch);
        } else {
            for (size_t k = t->chains.n; k-- > 0;)
                if (t->chains.v[k]->hook < 0) chain_remove(t, t->chains.v[k]);
        }
        goto out;
    case CMD_POLICY:
        if (ch->hook < 0) {
            rc = fail(c, LB_EPARSE, "-P %s: only built-in chains have a policy", ch->name);
            goto out;
        }
        if (strcmp(policy, "ACCEPT") && strcmp(policy, "DROP")) {
            rc = fail(c, LB_EPARSE, "-P %s: bad policy \"%s\" (ACCEPT or DROP)", ch->name, policy);
            goto out;
        }
        ch->policy = policy[0] == 'A' ? NFT_ACCEPT : NFT_DROP;
        goto out;
    case CMD_DELETE:
        if (rulenum) {
            if ((size_t)rulenum > ch->rules.n) {
                rc = fail(c, LB_ENOENT, "-D %s %ld: chain has only %zu rules", ch->name,
                          rulenum, ch->rules.n);
                goto out;
            }
            rule_fini(&ch->rules.v[rulenum - 1]);
            memmove(&ch->rules.v[rulenum - 1], &ch->rules.v[rulenum],
                    (ch->rules.n - (size_t)rulenum) * sizeof r);
            ch->rules.n--;
            goto out;
        }
        break;
    default:
        break;
    }

    /* a rule: resolve and validate the target, then check protocol needs */
    if (po.target_name) {
        int tg = target_by_name(po.target_name);
        if (po.is_goto && tg != NFT_NONE) {
            rc = fail(c, LB_EPARSE, "-g %s: goto needs a user chain", po.target_name);
            goto out;
        }
        if (tg != NFT_NONE) {
            r.target = (uint8_t)tg;
        } else {
            nf_chain_t *j = chain_find(t, po.target_name);
            if (!j) {
                if (target_unsupported(po.target_name))
                    rc = fail(c, LB_EPARSE, "target %s is not supported", po.target_name);
                else
                    rc = fail(c, LB_ENOENT, "-%c %s: no chain or target named \"%s\" in table %s",
                              po.is_goto ? 'g' : 'j', po.target_name, po.target_name,
                              table_names[tbl]);
                goto out;
            }
            if (j->hook >= 0) {
                rc = fail(c, LB_EPARSE, "cannot jump to built-in chain %s", j->name);
                goto out;
            }
            r.target = po.is_goto ? NFT_GOTO : NFT_JUMP;
            r.jump = j;
        }
    }
    switch (r.target) {
    case NFT_DNAT:
    case NFT_SNAT:
    case NFT_MASQ:
        if (tbl != NF_TBL_NAT) {
            rc = fail(c, LB_EPARSE, "%s is only valid in the nat table", po.target_name);
            goto out;
        }
        if (r.target != NFT_MASQ && !po.target_opt) {
            rc = fail(c, LB_EPARSE, "%s needs %s", po.target_name,
                      r.target == NFT_DNAT ? "--to-destination" : "--to-source");
            goto out;
        }
        if ((r.nat_flags & NF_NAT_HAS_PORT) && (!(r.m & NFM_PROTO) || (r.inv & NFM_PROTO) ||
            (r.proto != NET_PROTO_TCP && r.proto != NET_PROTO_UDP && r.proto != 132))) {
            rc = fail(c, LB_EPARSE, "%s: a port needs -p tcp, udp or sctp", po.target_name);
            goto out;
        }
        break;
    case NFT_REJECT:
        if (tbl == NF_TBL_NAT || tbl == NF_TBL_RAW) {
            rc = fail(c, LB_EPARSE, "REJECT is not valid in the %s table", table_names[tbl]);
            goto out;
        }
        if (r.reject_with == NF_REJECT_TCP_RESET &&
            (!(r.m & NFM_PROTO) || (r.inv & NFM_PROTO) || r.proto != NET_PROTO_TCP)) {
            rc = fail(c, LB_EPARSE, "REJECT --reject-with tcp-reset needs -p tcp");
            goto out;
        }
        break;
    case NFT_MARK:
        if (po.mark_ops != 1) {
            rc = fail(c, LB_EPARSE, "MARK needs exactly one of --set-xmark, --set-mark, "
                      "--and-mark, --or-mark, --xor-mark");
            goto out;
        }
        break;
    default:
        break;
    }
    for (int k = 0; k < r.nmods; k++) {
        int mod = r.mods[k];
        uint8_t want = mod == NF_MOD_TCP ? NET_PROTO_TCP : mod == NF_MOD_UDP ? NET_PROTO_UDP :
                       mod == NF_MOD_ICMP ? NET_PROTO_ICMP : 0;
        if (want && (!(r.m & NFM_PROTO) || (r.inv & NFM_PROTO) || r.proto != want)) {
            char pn[8];
            rc = fail(c, LB_EPARSE, "-m %s needs -p %s", proto_name(want, pn), proto_name(want, pn));
            goto out;
        }
        if (mod == NF_MOD_COMMENT && !r.comment) {
            rc = fail(c, LB_EPARSE, "-m comment needs --comment");
            goto out;
        }
        if (mod == NF_MOD_MARK && !(r.m & NFM_MARK)) {
            rc = fail(c, LB_EPARSE, "-m mark needs --mark");
            goto out;
        }
        if (mod == NF_MOD_ADDRTYPE && !(r.m & (NFM_SRCTYPE | NFM_DSTTYPE))) {
            rc = fail(c, LB_EPARSE, "-m addrtype needs --src-type or --dst-type");
            goto out;
        }
        if (mod == NF_MOD_STATISTIC && !(r.m & NFM_STAT)) {
            rc = fail(c, LB_EPARSE, "-m statistic needs --mode random --probability P");
            goto out;
        }
        if ((mod == NF_MOD_CONNTRACK && !(r.m & NFM_CTSTATE)) ||
            (mod == NF_MOD_STATE && !(r.m & NFM_STATE))) {
            rc = fail(c, LB_EPARSE, "-m %s needs %s", mod == NF_MOD_STATE ? "state" : "conntrack",
                      mod == NF_MOD_STATE ? "--state" : "--ctstate");
            goto out;
        }
        if (mod == NF_MOD_RECENT) {
            if (!r.recent_cmd) r.recent_cmd = NF_RECENT_RCHECK, r.m |= NFM_RECENT;
            if (!r.recent) r.recent = recent_get(c->nf, "DEFAULT");
            if (r.recent_reap && !r.recent_secs) {
                rc = fail(c, LB_EPARSE, "recent: --reap needs --seconds");
                goto out;
            }
        }
        if (mod == NF_MOD_NFACCT && !r.nfacct) {
            rc = fail(c, LB_EPARSE, "-m nfacct needs --nfacct-name");
            goto out;
        }
    }
    r.text = rule_text(&r);
    if (c->has_counters) {
        r.pkts = c->cnt_pkts;
        r.bytes = c->cnt_bytes;
    }

    if (cmd == CMD_CHECK || cmd == CMD_DELETE) {
        size_t k = 0;
        while (k < ch->rules.n && !rule_same(&ch->rules.v[k], &r)) k++;
        if (k == ch->rules.n) {
            rc = fail(c, LB_ENOENT, "no such rule in chain %s: %s", ch->name, r.text);
        } else if (cmd == CMD_DELETE) {
            rule_fini(&ch->rules.v[k]);
            memmove(&ch->rules.v[k], &ch->rules.v[k + 1], (ch->rules.n - k - 1) * sizeof r);
            ch->rules.n--;
        }
        goto out;
    }
    nf_rule_t replaced = {0};
    size_t pos = ch->rules.n;
    if (cmd == CMD_REPLACE) {            /* out of the chain for now; back on failure */
        pos = (size_t)rulenum - 1;
        replaced = ch->rules.v[pos];
        memmove(&ch->rules.v[pos], &ch->rules.v[pos + 1], (ch->rules.n - pos - 1) * sizeof r);
        ch->rules.n--;
    }
    if (cmd == CMD_INSERT) {
        if (!rulenum) rulenum = 1;
        if ((size_t)rulenum > ch->rules.n + 1) {
            rc = fail(c, LB_EPARSE, "-I %s %ld: index of insertion too big", ch->name, rulenum);
            goto out;
        }
        pos = (size_t)rulenum - 1;
    }
    lb_vec_reserve(&ch->rules, ch->rules.n + 1);
    memmove(&ch->rules.v[pos + 1], &ch->rules.v[pos], (ch->rules.n - pos) * sizeof r);
    ch->rules.v[pos] = r;
    ch->rules.n++;
    memset(&r, 0, sizeof r);                /* owned by the chain now */
    /* nf_exec applies at once, so check now; a restore checks each table at COMMIT */
    nf_rule_t *nr = &ch->rules.v[pos];
    bool needs_ct = rule_needs_ct(t->id, nr);
    if (!c->restore && (nr->jump || nr->target == NFT_DNAT || nr->target == NFT_SNAT ||
                        nr->target == NFT_MASQ || nr->target == NFT_REJECT)) {
        rc = table_check(c, t);
        if (rc) {
            rule_fini(nr);
            if (cmd == CMD_REPLACE) {
                *nr = replaced;
                memset(&replaced, 0, sizeof replaced);
            } else {
                memmove(nr, nr + 1, (ch->rules.n - pos - 1) * sizeof r);
                ch->rules.n--;
            }
        }
    }
    rule_fini(&replaced);
    if (!c->restore && rc == 0 && needs_ct) c->nf->ct_on = true;       /* latched */
out:
    rule_fini(&r);
    return rc;
}

/* Before nf_exec runs a command: a private copy of the table it names if that is shared
 * and the command may change it (not -C, not -N of a chain that exists). */
static void exec_unshare(nf_t *nf, int argc, char **argv)
{
    int ti = NF_TBL_FILTER;
    bool ro = false;
    for (int i = 0; i < argc; i++) {
        if ((!strcmp(argv[i], "-t") || !strcmp(argv[i], "--table")) && i + 1 < argc)
            ti = table_id(argv[++i]);
        else if (!strcmp(argv[i], "-C") || !strcmp(argv[i], "--check"))
            ro = true;
    }
    if (ti < 0 || ro) return;
    for (int i = 0; i + 1 < argc; i++)
        if ((!strcmp(argv[i], "-N") || !strcmp(argv[i], "--new-chain")) &&
            chain_find(nf->tables[ti], argv[i + 1]))
            return;                             /* fails with LB_EEXIST, changes nothing */
    table_unshare(nf, ti);
}

int nf_exec(nf_t *nf, const char *cmdline, char *err, size_t errlen)
{
    pctx_t c = { .nf = nf, .tables = nf->tables, .line = 1, .err = err, .errlen = errlen };
    if (err && errlen) err[0] = '\0';
    nf->rules_gen++;
    toks_t t = {0};
    const char *why = NULL;
    int rc = tokenize(cmdline, &t, &why);
    if (rc) {
        rc = fail(&c, rc, "%s", why);
    } else {
        int start = t.n > 0 && (!strcmp(t.v[0], "iptables") || !strcmp(t.v[0], "iptables-nft") ||
                                !strcmp(t.v[0], "iptables-legacy")) ? 1 : 0;
        exec_unshare(nf, t.n - start, t.n ? t.v + start : NULL);
        rc = run_cmd(&c, t.n - start, t.n ? t.v + start : NULL, -1);
    }
    toks_free(&t);
    nf_refresh_flags(nf, false);            /* run_cmd latched conntrack for its rule */
    return rc;
}

/* "[123:456]" -> counters; returns the rest of the line or NULL if malformed. */
static const char *parse_counters(const char *s, uint64_t *p, uint64_t *b)
{
    unsigned long long x, y;
    int n = 0;
    if (sscanf(s, "[%llu:%llu]%n", &x, &y, &n) != 2 || n == 0) return NULL;
    *p = x;
    *b = y;
    return s + n;
}

/* ---- remembered restores (NF_RESTORE_SHARED; see "shared tables") ------------------------- */

typedef struct section {
    nf_table_t *base;               /* the shared table it is applied to (a ref), or NULL */
    uint64_t hash;
    size_t len;
    int flags;
    bool memoable;
    size_t lines;                   /* newlines in the section's body (after its '*' line) */
} section_t;

/* 64 bits from two independent word-at-a-time lanes (a restore text is megabytes on a
 * large cluster, hashed once per node). */
static uint64_t text_hash(const char *p, size_t n)
{
    uint64_t a = 0x243f6a8885a308d3ull, b = 0x13198a2e03707344ull, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        a = (a ^ w) * 0x9e3779b97f4a7c15ull;
        a ^= a >> 29;
        b = (b + w) * 0xc2b2ae3d27d4eb4full;
        b ^= b >> 31;
    }
    w = 0;
    memcpy(&w, p + i, n - i);
    a = lb_mix64(a ^ w ^ n);
    b = lb_mix64(b + w + n);
    return a ^ (b << 1 | b >> 63);
}

/* The end of the section whose "*table" line starts at ls (body at s): just past its
 * COMMIT line; NULL when there is none. *memoable: nothing in it sets counters (a rule
 * with [p:b], a built-in chain line, -Z), so counters carry over by rule origin. */
static const char *section_end(const char *s, bool *memoable)
{
    *memoable = true;
    while (*s) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        const char *l = s;
        while (l < s + n && isspace((unsigned char)*l)) l++;
        size_t ln = (size_t)(s + n - l);
        while (ln && isspace((unsigned char)l[ln - 1])) ln--;
        const char *next = e ? e + 1 : s + n;
        if (ln == 6 && !memcmp(l, "COMMIT", 6)) return next;
        if (ln && *l == '*') return NULL;
        if (ln && *l == '[') *memoable = false;
        if (ln >= 2 && (!memcmp(l, "-Z", 2) || (ln >= 6 && !memcmp(l, "--zero", 6))))
            *memoable = false;
        if (ln && *l == ':')
            for (int h = 0; h < NF_HOOK_COUNT; h++) {
                size_t hn = strlen(hook_names[h]);
                if (ln > hn && !memcmp(l + 1, hook_names[h], hn) && isspace((unsigned char)l[1 + hn]))
                    *memoable = false;
            }
        s = next;
    }
    return NULL;
}

/* Puts remembered result m in place of tables[ti], the node's counters carried over by
 * rule origin; returns end. */
static const char *memo_apply(nf_t *nf, int ti, nf_memo_t *m, const char *end, section_t *sec)
{
    sec->lines = m->lines;
    uint64_t *old = nf->ctr[ti], pol[NF_HOOK_COUNT][2];
    memcpy(pol, nf->pol[ti], sizeof pol);
    uint64_t *ctr = lb_calloc(2 * (size_t)m->result->nrules + 2, sizeof *ctr);
    for (uint32_t k = 0; k < m->result->nrules; k++)
        if (m->origin[k] != NF_NO_ORIGIN) {
            ctr[2 * k] = old[2 * m->origin[k]];
            ctr[2 * k + 1] = old[2 * m->origin[k] + 1];
        }
    m->result->refs++;                      /* before the base (maybe the same) goes */
    table_release(nf, ti);
    nf->tables[ti] = m->result;
    nf->ctr[ti] = ctr;
    memcpy(nf->pol[ti], pol, sizeof pol);
    return end;
}

/* At a section's "*table" line (table ti, text from ls, body from s): shares the node's
 * table, and if this text was applied to that table before, puts the remembered result in
 * place with the node's counters carried over and returns the end of the section. Else
 * fills sec for section_commit and returns NULL (the caller parses the section). */
static const char *section_begin(nf_t *nf, int ti, const char *ls, const char *s, int flags,
                                 const uint64_t *key, int ordinal, section_t *sec)
{
    if (sec->base) share_unref(share_of(nf), sec->base);
    memset(sec, 0, sizeof *sec);
    table_intern(nf, ti);
    nf_table_t *base = nf->tables[ti];
    nf_share_t *sh = share_of(nf);
    if (key) {                              /* the caller names the text: no hashing */
        uint64_t h = lb_mix64(key[0] ^ lb_mix64(key[1] + (uint64_t)ordinal + 1));
        for (size_t i = 0; base->interned && i < sh->memo.n; i++) {
            nf_memo_t *m = &sh->memo.v[i];
            if (m->base != base || m->text_hash != h || m->flags != (flags | NF_KEYED) ||
                strnlen(ls, m->text_len) != m->text_len)
                continue;
            return memo_apply(nf, ti, m, ls + m->text_len, sec);
        }
        bool memoable;
        const char *end = section_end(s, &memoable);
        if (!base->interned || !end || !memoable) return NULL;
        sec->base = base;
        base->refs++;
        sec->hash = h;
        sec->len = (size_t)(end - ls);
        sec->flags = flags | NF_KEYED;
        sec->memoable = true;
        for (const char *q = s; (q = memchr(q, '\n', (size_t)(end - q))); q++) sec->lines++;
        return NULL;
    }
    const char *end = NULL;                 /* the first "\nCOMMIT" line (fast) */
    for (const char *q = s - 1; !end && (q = strstr(q, "\nCOMMIT")); q++) {
        const char *a = q + 7;
        while (*a == ' ' || *a == '\t' || *a == '\r') a++;
        if (*a == '\n') end = a + 1;
        else if (!*a) end = a;
    }
    if (!base->interned || !end) return NULL;
    size_t len = (size_t)(end - ls);
    uint64_t h = text_hash(ls, len);
    for (size_t i = 0; i < sh->memo.n; i++) {
        nf_memo_t *m = &sh->memo.v[i];
        if (m->base != base || m->text_hash != h || m->text_len != len || m->flags != flags)
            continue;
        return memo_apply(nf, ti, m, end, sec);
    }
    bool memoable;                          /* the exact end must be the same one */
    if (section_end(s, &memoable) != end || !memoable) return NULL;
    sec->base = base;
    base->refs++;
    sec->hash = h;
    sec->len = len;
    sec->flags = flags;
    sec->memoable = true;
    for (const char *q = s; (q = memchr(q, '\n', (size_t)(end - q))); q++) sec->lines++;
    return NULL;
}

/* After a parsed section's COMMIT put the new table in tables[ti]: shares it, and
 * remembers (base, text) -> it with where its rules came from. */
static void section_commit(nf_t *nf, int ti, section_t *sec)
{
    nf_share_t *sh = share_of(nf);
    nf_table_t *t = nf->tables[ti];
    uint32_t *origin = NULL, n = 0;
    if (sec->base) {
        for (size_t i = 0; i < t->chains.n; i++) n += (uint32_t)t->chains.v[i]->rules.n;
        origin = lb_calloc((size_t)n + 1, sizeof *origin);
        uint32_t k = 0;
        for (size_t i = 0; i < t->chains.n; i++)
            for (size_t j = 0; j < t->chains.v[i]->rules.n; j++)
                origin[k++] = t->chains.v[i]->rules.v[j].origin;
    }
    table_intern(nf, ti);
    t = nf->tables[ti];
    if (!sec->base) return;
    if (!t->interned) {
        lb_free(origin);
        share_unref(sh, sec->base);
        sec->base = NULL;
        return;
    }
    if (sh->memo.n == NF_MEMO_MAX) memo_drop(sh, 0);
    nf_memo_t m = { sec->base, t, sec->hash, sec->len, sec->flags, origin, sec->lines };
    t->refs++;
    lb_vec_push(&sh->memo, m);
    sec->base = NULL;                           /* its ref moved into the memo */
}

static int restore(nf_t *nf, const char *text, int flags, const uint64_t *key, char *err,
                   size_t errlen);

int nf_restore_flags(nf_t *nf, const char *text, int flags, char *err, size_t errlen)
{
    return restore(nf, text, flags, NULL, err, errlen);
}

int nf_restore_keyed(nf_t *nf, const char *text, int flags, const uint64_t key[2], char *err,
                     size_t errlen)
{
    return restore(nf, text, flags | NF_RESTORE_SHARED, key, err, errlen);
}

static int restore(nf_t *nf, const char *text, int flags, const uint64_t *key, char *err,
                   size_t errlen)
{
    int ordinal = 0;                    /* sections so far */
    bool noflush = flags & NF_RESTORE_NOFLUSH, shared = flags & NF_RESTORE_SHARED;
    nf_table_t *stage[NF_TBL_COUNT] = {0};
    section_t sec = {0};                /* shared: the section being parsed */
    pctx_t c = { .nf = nf, .tables = stage, .restore = true, .err = err, .errlen = errlen };
    if (err && errlen) err[0] = '\0';
    nf->rules_gen++;
    int cur = -1, rc = 0;
    const char *s = text;
    char *line = NULL;
    size_t cap = 0;
    while (*s && rc == 0) {
        const char *ls = s;
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n + 1 > cap) {
            cap = n + 1;
            line = lb_realloc(line, cap);
        }
        memcpy(line, s, n);
        line[n] = '\0';
        s = e ? e + 1 : s + n;
        c.line++;
        char *l = line;
        while (isspace((unsigned char)*l)) l++;
        size_t ln = strlen(l);
        while (ln && isspace((unsigned char)l[ln - 1])) l[--ln] = '\0';
        if (!*l || *l == '#') continue;
        if (*l == '*') {
            if (cur >= 0) {
                rc = fail(&c, LB_EPARSE, "table %s was not committed before *%s",
                          table_names[cur], l + 1);
                break;
            }
            cur = table_id(l + 1);
            if (cur < 0) {
                rc = fail(&c, LB_EPARSE, "unknown table \"%s\"", l + 1);
                break;
            }
            for (int k = 0; k < NF_TBL_COUNT; k++) stage[k] = NULL;
            if (shared) {
                const char *end = section_begin(nf, cur, ls, s, flags, key, ordinal++, &sec);
                if (end) {                      /* applied before: the remembered result */
                    c.line += (int)sec.lines;
                    s = end;
                    cur = -1;
                    nf_refresh(nf);
                    continue;
                }
            }
            stage[cur] = table_clone_nf(nf, cur, noflush);
            stage[cur]->touched = true;
            continue;
        }
        if (cur < 0) {
            rc = fail(&c, LB_EPARSE, "no table specified (a *table line must come first)");
            break;
        }
        nf_table_t *t = stage[cur];
        if (!strcmp(l, "COMMIT")) {
            rc = table_check(&c, t);
            if (rc) break;
            table_release(nf, cur);
            nf->tables[cur] = t;
            stage[cur] = NULL;
            if (shared) section_commit(nf, cur, &sec);
            cur = -1;
            nf_refresh(nf);
            continue;
        }
        if (*l == ':') {
            char name[64], pol[16], cnt[64] = "";
            if (sscanf(l + 1, "%63s %15s %63s", name, pol, cnt) < 2) {
                rc = fail(&c, LB_EPARSE, "malformed chain line \"%s\"", l);
                break;
            }
            nf_chain_t *ch = chain_find(t, name);
            if (ch && ch->hook >= 0) {
                if (strcmp(pol, "ACCEPT") && strcmp(pol, "DROP")) {
                    rc = fail(&c, LB_EPARSE, "bad policy \"%s\" for built-in chain %s", pol, name);
                    break;
                }
                ch->policy = pol[0] == 'A' ? NFT_ACCEPT : NFT_DROP;
                uint64_t pk, by;
                if (cnt[0] && parse_counters(cnt, &pk, &by)) {
                    ch->pkts = pk;
                    ch->bytes = by;
                }
                continue;
            }
            if (strcmp(pol, "-")) {
                bool hook = false;
                for (int h = 0; h < NF_HOOK_COUNT; h++) hook |= !strcmp(name, hook_names[h]);
                if (hook)
                    rc = fail(&c, LB_EPARSE, "table %s has no built-in chain %s",
                              table_names[cur], name);
                else
                    rc = fail(&c, LB_EPARSE, "user chain %s cannot have policy \"%s\"", name, pol);
                break;
            }
            if (ch) {
                chain_flush(ch);
            } else if (!chain_name_ok(name)) {
                rc = fail(&c, LB_EPARSE, "invalid chain name \"%s\"", name);
                break;
            } else {
                chain_add(t, chain_new(name, -1));
            }
            continue;
        }
        c.has_counters = false;
        if (*l == '[') {
            const char *rest = parse_counters(l, &c.cnt_pkts, &c.cnt_bytes);
            if (!rest) {
                rc = fail(&c, LB_EPARSE, "malformed counters \"%s\"", l);
                break;
            }
            c.has_counters = true;
            l = (char *)rest;
        }
        toks_t tk = {0};
        const char *why = NULL;
        rc = tokenize(l, &tk, &why);
        if (rc) rc = fail(&c, rc, "%s", why);
        else rc = run_cmd(&c, tk.n, tk.v, cur);
        toks_free(&tk);
    }
    if (rc == 0 && cur >= 0)
        rc = fail(&c, LB_EPARSE, "COMMIT expected at the end of the input (table %s)",
                  table_names[cur]);
    for (int k = 0; k < NF_TBL_COUNT; k++) table_free(stage[k]);
    if (sec.base) share_unref(share_of(nf), sec.base);
    lb_free(line);
    nf_refresh(nf);
    return rc;
}

int nf_restore(nf_t *nf, const char *text, char *err, size_t errlen)
{
    return nf_restore_flags(nf, text, 0, err, errlen);
}

/* ---- iptables-save ------------------------------------------------------------------------ */

static int chain_cmp(const void *a, const void *b)
{
    const nf_chain_t *x = *(nf_chain_t *const *)a, *y = *(nf_chain_t *const *)b;
    return strcmp(x->name, y->name);
}

void nf_save(const nf_t *nf, FILE *out, bool counters)
{
    static const int order[NF_TBL_COUNT] = { NF_TBL_FILTER, NF_TBL_NAT, NF_TBL_MANGLE, NF_TBL_RAW };
    for (int oi = 0; oi < NF_TBL_COUNT; oi++) {
        const nf_table_t *t = nf->tables[order[oi]];
        if (!t->touched) continue;
        /* builtins in hook order, then user chains sorted by name (libiptc keeps them so) */
        size_t n = t->chains.n;
        nf_chain_t **v = lb_malloc((n ? n : 1) * sizeof *v);
        size_t k = 0;
        for (int h = 0; h < NF_HOOK_COUNT; h++)
            if (t->builtin[h]) v[k++] = t->builtin[h];
        size_t nb = k;
        for (size_t i = 0; i < n; i++)
            if (t->chains.v[i]->hook < 0) v[k++] = t->chains.v[i];
        qsort(v + nb, k - nb, sizeof *v, chain_cmp);
        fprintf(out, "# Generated by lbchain\n*%s\n", table_names[t->id]);
        for (size_t i = 0; i < k; i++) {
            const nf_chain_t *ch = v[i];
            fprintf(out, ":%s %s [%llu:%llu]\n", ch->name,
                    ch->hook < 0 ? "-" : ch->policy == NFT_ACCEPT ? "ACCEPT" : "DROP",
                    counters && ch->hook >= 0 ? (unsigned long long)policy_ctr(nf, t->id, ch, 0) : 0ULL,
                    counters && ch->hook >= 0 ? (unsigned long long)policy_ctr(nf, t->id, ch, 1) : 0ULL);
        }
        for (size_t i = 0; i < k; i++) {
            const nf_chain_t *ch = v[i];
            for (size_t j = 0; j < ch->rules.n; j++) {
                const nf_rule_t *r = &ch->rules.v[j];
                if (counters)
                    fprintf(out, "[%llu:%llu] ", (unsigned long long)rule_pkts(nf, t->id, ch, j),
                            (unsigned long long)rule_bytes(nf, t->id, ch, j));
                fprintf(out, "-A %s%s%s\n", ch->name, r->text[0] ? " " : "", r->text);
            }
        }
        fprintf(out, "COMMIT\n# Completed by lbchain\n");
        lb_free(v);
    }
}

bool nf_table_shared(const nf_t *nf, const char *table)
{
    int ti = table_id(table);
    return ti >= 0 && nf->tables[ti]->interned;
}

int64_t nf_rule_packets(const nf_t *nf, const char *table, const char *chain, int rule)
{
    int ti = table_id(table);
    if (ti < 0) return -1;
    const nf_chain_t *ch = chain_find(nf->tables[ti], chain);
    if (!ch || rule < 1 || (size_t)rule > ch->rules.n) return -1;
    return (int64_t)rule_pkts(nf, ti, ch, (size_t)rule - 1);
}

size_t nf_rule_count(const nf_t *nf)
{
    size_t n = 0;
    for (int ti = 0; ti < NF_TBL_COUNT; ti++)
        for (size_t i = 0; i < nf->tables[ti]->chains.n; i++)
            n += nf->tables[ti]->chains.v[i]->rules.n;
    return n;
}

/* ---- the rule engine ------------------------------------------------------------------------ */

static bool if_match(const char *pat, const net_iface_t *ifc)
{
    const char *name = ifc ? ifc->name : "";
    size_t n = strlen(pat);
    if (pat[n - 1] == '+') return strncmp(name, pat, n - 1) == 0;
    return strcmp(name, pat) == 0;
}

static uint8_t addr_type(const nf_t *nf, uint32_t a)
{
    if (net_node_is_local(nf->node, a)) return NF_AT_LOCAL;
    if ((a >> 28) == 14) return NF_AT_MULTICAST;
    if (a == 0xffffffffu) return NF_AT_BROADCAST;
    return NF_AT_UNICAST;
}

/* xt_recent recent_mt(): --set inserts or refreshes; --rcheck/--update/--remove look up,
 * with --seconds requiring a hit that recent; --reap forgets stale addresses. */
static bool recent_match(nf_t *nf, const nf_rule_t *r, const pkt_t *p)
{
    nf_recent_t *rt = r->recent;
    bool inv = r->inv & NFM_RECENT, ret = inv;
    uint32_t addr = (r->recent_rdest ? p->dst : p->src) & r->recent_mask;
    sim_time_t now = sim_now(nf->sim);
    size_t k = 0;
    while (k < rt->n && rt->ent[k].addr != addr) k++;
    if (k == rt->n) {
        if (r->recent_cmd != NF_RECENT_SET) return ret;
        if (rt->n == rt->cap) {                 /* evict the least recently updated */
            size_t old = 0;
            for (size_t q = 1; q < rt->n; q++)
                if (rt->ent[q].last < rt->ent[old].last) old = q;
            rt->ent[old] = rt->ent[--rt->n];
        }
        rt->ent[rt->n].addr = addr;
        rt->ent[rt->n].last = now;
        rt->n++;
        return !ret;
    }
    if (r->recent_cmd == NF_RECENT_SET) {
        ret = !ret;
    } else if (r->recent_cmd == NF_RECENT_REMOVE) {
        rt->ent[k] = rt->ent[--rt->n];
        return !ret;
    } else if (r->recent_secs) {
        sim_time_t since = now - (sim_time_t)r->recent_secs * SIM_S;
        if (rt->ent[k].last >= since) {
            ret = !ret;
        } else if (r->recent_reap) {
            rt->ent[k] = rt->ent[--rt->n];
            return ret;
        }
    } else {
        ret = !ret;
    }
    if (r->recent_cmd == NF_RECENT_SET || (r->recent_cmd == NF_RECENT_UPDATE && ret != inv))
        rt->ent[k].last = now;
    return ret;
}

static bool rule_match(nf_t *nf, const nf_rule_t *r, pkt_t *p, const net_iface_t *in,
                       const net_iface_t *out)
{
    uint32_t m = r->m, inv = r->inv;
    if (m & NFM_SRC && ((p->src & r->smask) == r->src) == !!(inv & NFM_SRC)) return false;
    if (m & NFM_DST && ((p->dst & r->dmask) == r->dst) == !!(inv & NFM_DST)) return false;
    if (m & NFM_IN && if_match(r->in_if, in) == !!(inv & NFM_IN)) return false;
    if (m & NFM_OUT && if_match(r->out_if, out) == !!(inv & NFM_OUT)) return false;
    if (m & NFM_PROTO && (p->proto == r->proto) == !!(inv & NFM_PROTO)) return false;
    for (int i = 0; i < r->nmods; i++) {
        switch (r->mods[i]) {
        case NF_MOD_TCP:
        case NF_MOD_UDP:
            if (m & NFM_SPORT &&
                (p->sport >= r->sport[0] && p->sport <= r->sport[1]) == !!(inv & NFM_SPORT))
                return false;
            if (m & NFM_DPORT &&
                (p->dport >= r->dport[0] && p->dport <= r->dport[1]) == !!(inv & NFM_DPORT))
                return false;
            break;
        case NF_MOD_ICMP:
            if (m & NFM_ICMPTYPE && (p->icmp_type == r->icmp_type) == !!(inv & NFM_ICMPTYPE))
                return false;
            break;
        case NF_MOD_MARK:
            if (((p->mark & r->mark_mask) == r->mark) == !!(inv & NFM_MARK)) return false;
            break;
        case NF_MOD_ADDRTYPE:
            if (m & NFM_SRCTYPE &&
                ((addr_type(nf, p->src) & r->src_type) != 0) == !!(inv & NFM_SRCTYPE))
                return false;
            if (m & NFM_DSTTYPE &&
                ((addr_type(nf, p->dst) & r->dst_type) != 0) == !!(inv & NFM_DSTTYPE))
                return false;
            break;
        case NF_MOD_STATISTIC: {
            /* xt_statistic: (prandom_u32() & 0x7FFFFFFF) < probability, one draw per visit */
            uint32_t draw = (uint32_t)gsl_rng_get(nf->rng) & 0x7fffffffu;
            if ((draw < r->stat_prob) == !!(inv & NFM_STAT)) return false;
            break;
        }
        case NF_MOD_CONNTRACK:
            if (((ct_state_bits(p) & r->ctstates) != 0) == !!(inv & NFM_CTSTATE)) return false;
            break;
        case NF_MOD_STATE:
            if (((ct_state_bits(p) & r->states) != 0) == !!(inv & NFM_STATE)) return false;
            break;
        case NF_MOD_RECENT:
            if (!recent_match(nf, r, p)) return false;
            break;
        default:                    /* comment, nfacct */
            break;
        }
    }
    return true;
}

enum { V_ACCEPT, V_DROP, V_REJECT, V_NAT };

typedef struct vinfo {
    const nf_chain_t *chain;        /* where the verdict was reached */
    int rule;                       /* 1-based; 0: the policy */
    const nf_rule_t *r;
} vinfo_t;

static void where_str(const nf_table_t *t, enum nf_hook h, const vinfo_t *vi, char *buf,
                      size_t n)
{
    if (vi->chain->hook >= 0 && vi->rule)
        snprintf(buf, n, "%s/%s rule %d", table_names[t->id], hook_names[h], vi->rule);
    else if (vi->rule)
        snprintf(buf, n, "%s/%s -> %s rule %d", table_names[t->id], hook_names[h],
                 vi->chain->name, vi->rule);
    else
        snprintf(buf, n, "%s/%s policy", table_names[t->id], hook_names[h]);
}

/* ---- the dispatch index (nf_cidx_t in nf_int.h) ---------------------------------------
 * Only a chain of NF_INDEX_MIN rules or more gets one. A rule is classified under a key
 * when nothing but its own key can let it match and evaluating it has no side effect:
 * a non-negated protocol other than "all", a non-negated single destination port, either
 * a non-negated /32 destination or no destination match, and neither `-m statistic`
 * (which draws a random number when it is reached) nor `-m recent` (which updates its
 * list). Every other rule is "other" and is tried wherever it stands. */
#define NF_INDEX_MIN 16
#define KEY_ANY_DST (1ull << 24)

static uint64_t walk_key(uint32_t dst, bool any_dst, uint8_t proto, uint16_t dport)
{
    return (uint64_t)(any_dst ? 0 : dst) << 32 | (any_dst ? KEY_ANY_DST : 0) |
           (uint64_t)proto << 16 | dport;
}

static bool rule_key(const nf_rule_t *r, uint64_t *key)
{
    if (!(r->m & NFM_PROTO) || (r->inv & NFM_PROTO) || !r->proto) return false;
    if (!(r->m & NFM_DPORT) || (r->inv & NFM_DPORT) || r->dport[0] != r->dport[1]) return false;
    for (int i = 0; i < r->nmods; i++)
        if (r->mods[i] == NF_MOD_STATISTIC || r->mods[i] == NF_MOD_RECENT) return false;
    if (r->m & NFM_DST) {
        if ((r->inv & NFM_DST) || r->dmask != 0xffffffffu) return false;
        *key = walk_key(r->dst, false, r->proto, r->dport[0]);
    } else {
        *key = walk_key(0, true, r->proto, r->dport[0]);
    }
    return true;
}

static int ckey_cmp(const void *a, const void *b)
{
    const struct nf_ckey *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void chain_index_build(nf_t *nf, nf_chain_t *c)
{
    cidx_free(c);
    c->idx_gen = nf->rules_gen;
    if (c->rules.n < NF_INDEX_MIN) return;
    nf_cidx_t *x = lb_calloc(1, sizeof *x);
    x->ent = lb_calloc(c->rules.n, sizeof *x->ent);
    x->other = lb_calloc(c->rules.n, sizeof *x->other);
    for (size_t i = 0; i < c->rules.n; i++) {
        uint64_t k;
        if (rule_key(&c->rules.v[i], &k)) {
            x->ent[x->nent].key = k;
            x->ent[x->nent++].pos = (uint32_t)i;
        } else {
            x->other[x->nother++] = (uint32_t)i;
        }
    }
    qsort(x->ent, x->nent, sizeof *x->ent, ckey_cmp);
    for (size_t i = 0; i < x->nent; i++)
        if (i == 0 || x->ent[i].key != x->ent[i - 1].key)
            lb_index_add(&x->ix, lb_mix64(x->ent[i].key), i);
    c->idx = x;
}

/* The candidates of one chain for one packet: up to three ascending position lists. */
typedef struct cand {
    const uint32_t *other;
    size_t nother;
    const struct nf_ckey *run[2];   /* the packet's exact and any-destination runs */
    size_t nrun[2];
} cand_t;

static void key_run(const nf_cidx_t *x, uint64_t key, const struct nf_ckey **run, size_t *n)
{
    *run = NULL;
    *n = 0;
    size_t it;
    for (size_t p = lb_index_first(&x->ix, lb_mix64(key), &it); p != LB_INDEX_NONE;
         p = lb_index_next(&x->ix, lb_mix64(key), &it))
        if (x->ent[p].key == key) {
            size_t e = p;
            while (e < x->nent && x->ent[e].key == key) e++;
            *run = &x->ent[p];
            *n = e - p;
            return;
        }
}

/* Points cd at chain c's candidate lists for p; false when c has no index. */
static bool cand_set(nf_t *nf, const nf_table_t *t, nf_chain_t *c, const pkt_t *p, cand_t *cd)
{
    if (nf->params.linear) return false;
    /* a shared table never changes: its index, once built, stays valid */
    if (t->interned ? c->idx_gen == 0 : c->idx_gen != nf->rules_gen) chain_index_build(nf, c);
    const nf_cidx_t *x = c->idx;
    if (!x) return false;
    cd->other = x->other;
    cd->nother = x->nother;
    key_run(x, walk_key(p->dst, false, p->proto, p->dport), &cd->run[0], &cd->nrun[0]);
    key_run(x, walk_key(0, true, p->proto, p->dport), &cd->run[1], &cd->nrun[1]);
    return true;
}

/* The first candidate position >= i (n when there is none). */
static size_t cand_next(const cand_t *cd, size_t i, size_t n)
{
    size_t best = n;
    size_t lo = 0, hi = cd->nother;         /* first other >= i */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cd->other[mid] < i) lo = mid + 1; else hi = mid;
    }
    if (lo < cd->nother && cd->other[lo] < best) best = cd->other[lo];
    for (int k = 0; k < 2; k++) {
        lo = 0, hi = cd->nrun[k];
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (cd->run[k][mid].pos < i) lo = mid + 1; else hi = mid;
        }
        if (lo < cd->nrun[k] && cd->run[k][lo].pos < best) best = cd->run[k][lo].pos;
    }
    return best;
}

/* ipt_do_table(): walks the hook's chain with a jump stack; RETURN or the end of a user
 * chain pops; the end of the built-in chain applies its policy. Non-terminal targets
 * (MARK, no target) continue; NAT targets end the walk for the caller to bind. Every rule
 * evaluated -- or skipped by the chain's index, which the kernel would have evaluated --
 * adds one to nf->walk_rules. */
static int table_run(nf_t *nf, nf_table_t *t, enum nf_hook h, pkt_t *p, const net_iface_t *in,
                     const net_iface_t *out, vinfo_t *vi)
{
    struct { nf_chain_t *c; size_t i; } stack[NF_MAX_DEPTH + 1];
    nf_chain_t *base = t->builtin[h], *c = base;
    size_t i = 0;
    int sp = 0;
    bool tracing = net_tracing(nf->net, p->flow);
    uint32_t wire = pkt_wire_bytes(p);
    uint64_t *ctr = nf->ctr[t->id];             /* a shared table: the node's counters */
    cand_t cd;
    bool indexed = cand_set(nf, t, c, p, &cd);
    for (;;) {
        if (indexed && i < c->rules.n) {
            size_t j = cand_next(&cd, i, c->rules.n);
            nf->walk_rules += j - i;        /* evaluated by the kernel, and not matched */
            i = j;
        }
        if (i >= c->rules.n) {
            if (sp == 0) break;
            sp--;
            c = stack[sp].c;
            i = stack[sp].i;
            indexed = cand_set(nf, t, c, p, &cd);
            continue;
        }
        nf_rule_t *r = &c->rules.v[i];
        nf->walk_rules++;
        if (!rule_match(nf, r, p, in, out)) {
            i++;
            continue;
        }
        if (ctr) {
            ctr[2 * (c->ord + i)]++;
            ctr[2 * (c->ord + i) + 1] += wire;
        } else {
            r->pkts++;
            r->bytes += wire;
        }
        vi->chain = c;
        vi->rule = (int)i + 1;
        vi->r = r;
        if (tracing) {
            char w[160];
            where_str(t, h, vi, w, sizeof w);
            net_tracef(nf->net, nf->node->name, p, "%s matched: %s", w, r->text);
        }
        switch (r->target) {
        case NFT_NONE:
            i++;
            continue;
        case NFT_MARK:
            p->mark = (p->mark & ~r->xmask) ^ r->xmark;
            i++;
            continue;
        case NFT_ACCEPT:
            return V_ACCEPT;
        case NFT_DROP:
            return V_DROP;
        case NFT_REJECT:
            return V_REJECT;
        case NFT_DNAT:
        case NFT_SNAT:
        case NFT_MASQ:
            return V_NAT;
        case NFT_RETURN:
            if (sp == 0) goto policy;
            sp--;
            c = stack[sp].c;
            i = stack[sp].i;
            indexed = cand_set(nf, t, c, p, &cd);
            continue;
        case NFT_JUMP:
            assert(sp < NF_MAX_DEPTH);      /* table_check bounds the nesting */
            stack[sp].c = c;
            stack[sp].i = i + 1;
            sp++;
            /* fall through */
        case NFT_GOTO:
            c = r->jump;
            i = 0;
            indexed = cand_set(nf, t, c, p, &cd);
            continue;
        }
    }
policy:
    if (ctr) {
        nf->pol[t->id][h][0]++;
        nf->pol[t->id][h][1] += wire;
    } else {
        base->pkts++;
        base->bytes += wire;
    }
    vi->chain = base;
    vi->rule = 0;
    vi->r = NULL;
    if (tracing)
        net_tracef(nf->net, nf->node->name, p, "%s/%s policy %s", table_names[t->id],
                   hook_names[h], base->policy == NFT_ACCEPT ? "ACCEPT" : "DROP");
    return base->policy == NFT_ACCEPT ? V_ACCEPT : V_DROP;
}

/* ---- rules traversed per new connection ------------------------------------------------ */
#define NF_WALK_BUCKETS (64 + 58 * 64)

static size_t walk_bucket(uint64_t v)
{
    if (v < 64) return (size_t)v;
    int o = 63 - __builtin_clzll(v);        /* 6..63 */
    return 64 + (size_t)(o - 6) * 64 + (size_t)((v >> (o - 6)) & 63);
}

static uint64_t walk_bucket_low(size_t b)
{
    if (b < 64) return b;
    size_t k = b - 64;
    return (uint64_t)(64 + k % 64) << (k / 64);
}

/* Starts counting for p (PREROUTING / OUTPUT: where a packet enters the node's hooks). */
static void walk_begin(nf_t *nf, const pkt_t *p)
{
    nf->walk_pkt = p->id;
    nf->walk_rules = 0;
}

/* Records the count if p is the packet being walked and it created its conntrack entry
 * here (unconfirmed and owned by it): called before confirmation and before a drop. */
static void walk_end(nf_t *nf, const pkt_t *p)
{
    const ct_entry_t *e = p->ct;
    if (p->id != nf->walk_pkt || !e || (e->status & CTS_CONFIRMED) || e->owner_pkt != p->id)
        return;
    nf->walk_pkt = 0;
    if (!nf->walk_hist) nf->walk_hist = lb_calloc(NF_WALK_BUCKETS, sizeof *nf->walk_hist);
    nf->walk_hist[walk_bucket(nf->walk_rules)]++;
    nf->walk_conns++;
    nf->walk_sum += nf->walk_rules;
    if (nf->walk_rules > nf->walk_max) nf->walk_max = nf->walk_rules;
}

typedef struct walk_acc {
    uint64_t conns, rules, max;
    uint64_t hist[NF_WALK_BUCKETS];
} walk_acc_t;

static void walk_add(walk_acc_t *a, const nf_t *nf)
{
    if (!nf || !nf->walk_hist) return;
    a->conns += nf->walk_conns;
    a->rules += nf->walk_sum;
    for (size_t b = 0; b < NF_WALK_BUCKETS; b++) a->hist[b] += nf->walk_hist[b];
    if (nf->walk_max > a->max) a->max = nf->walk_max;
}

/* The q-quantile, as the largest value its bucket holds (never above the maximum): an
 * upper bound, exact below 64. */
static uint64_t walk_q(const walk_acc_t *a, double q)
{
    uint64_t want = (uint64_t)ceil(q * (double)a->conns), seen = 0;
    if (want == 0) want = 1;
    for (size_t b = 0; b < NF_WALK_BUCKETS; b++) {
        seen += a->hist[b];
        if (seen >= want) {
            uint64_t hi = b + 1 < NF_WALK_BUCKETS ? walk_bucket_low(b + 1) - 1 : UINT64_MAX;
            return hi < a->max ? hi : a->max;
        }
    }
    return 0;
}

static void walk_summary(const walk_acc_t *a, nf_walk_summary_t *out)
{
    memset(out, 0, sizeof *out);
    if (!a->conns) return;
    out->conns = a->conns;
    out->rules = a->rules;
    out->mean = (double)a->rules / (double)a->conns;
    out->p50 = walk_q(a, 0.50);
    out->p99 = walk_q(a, 0.99);
    out->max = a->max;
}

void nf_walk_node(const nf_t *nf, nf_walk_summary_t *out)
{
    walk_acc_t *a = lb_calloc(1, sizeof *a);
    walk_add(a, nf);
    walk_summary(a, out);
    lb_free(a);
}

void nf_walk_net(const net_t *net, nf_walk_summary_t *out)
{
    walk_acc_t *a = lb_calloc(1, sizeof *a);
    for (size_t i = 0; i < net_node_count(net); i++) walk_add(a, net_node_at(net, i)->nf);
    walk_summary(a, out);
    lb_free(a);
}

void nf_walk_net_nft(const net_t *net, bool nft, nf_walk_summary_t *out)
{
    walk_acc_t *a = lb_calloc(1, sizeof *a);
    for (size_t i = 0; i < net_node_count(net); i++) {
        const nf_t *nf = net_node_at(net, i)->nf;
        if (nf && (nf->nft != NULL) == nft) walk_add(a, nf);
    }
    walk_summary(a, out);
    lb_free(a);
}

/* Drops p (freeing it) and any conntrack entry only it created. */
static int drop_pkt(nf_t *nf, pkt_t *p, const char *reason, const char *detail)
{
    ct_entry_t *e = p->ct;
    uint64_t id = p->id;
    walk_end(nf, p);
    net_drop(nf->net, nf->node, p, reason, "%s", detail);
    if (e) ct_release_unconfirmed(nf, e, id);
    return NF_STOLEN;
}

/* nf_send_reset() (net/ipv4/netfilter/nf_reject_ipv4.c): addresses swapped; with ACK set
 * seq = the packet's ack and only RST, else seq 0, ack = seq + len (+1 for SYN and FIN)
 * and RST|ACK. Never answers a RST. The RST is attached to the packet's connection
 * (nf_ct_attach), so conntrack reverses NAT on it. */
static void send_reset(nf_t *nf, const pkt_t *p)
{
    pkt_t *rst = pkt_rst_reply(nf->net, p);
    if (!rst) return;
    if (p->ct) {
        nf->attach_pkt = rst->id;
        nf->attach_ct = p->ct;
        nf->attach_dir = p->ct_dir ^ 1;
    }
    if (net_tracing(nf->net, p->flow)) {
        char ps[160];
        net_tracef(nf->net, nf->node->name, rst, "REJECT: send %s", pkt_str(rst, ps, sizeof ps));
    }
    net_node_output(nf->node, rst);
    nf->attach_pkt = 0;
    nf->attach_ct = NULL;
}

int nf_drop_(nf_t *nf, pkt_t *p, const char *reason, const char *detail)
{
    return drop_pkt(nf, p, reason, detail);
}

int nf_reject_(nf_t *nf, pkt_t *p, uint16_t with, const char *detail)
{
    uint64_t wp = nf->walk_pkt, wr = nf->walk_rules;    /* the reply walks the hooks */
    if (with == NF_REJECT_TCP_RESET) send_reset(nf, p);
    else net_icmp_error(nf->node, p, ICMP_DEST_UNREACH, (uint8_t)with);
    nf->walk_pkt = wp;
    nf->walk_rules = wr;
    return drop_pkt(nf, p, "nf-reject", detail);
}

/* Runs table ti at hook h; ACCEPT continues, anything else consumes p. */
static int run_filter(nf_t *nf, int ti, enum nf_hook h, pkt_t *p, net_iface_t *in,
                      net_iface_t *out)
{
    if (!(nf->hook_tables[h] & (1u << ti))) return NF_ACCEPT;
    nf_table_t *t = nf->tables[ti];
    vinfo_t vi = {0};
    int v = table_run(nf, t, h, p, in, out, &vi);
    if (v == V_ACCEPT) return NF_ACCEPT;
    char where[160], detail[512];
    where_str(t, h, &vi, where, sizeof where);
    if (vi.r) snprintf(detail, sizeof detail, "%s: %s", where, vi.r->text);
    else snprintf(detail, sizeof detail, "%s DROP", where);
    if (v == V_REJECT) return nf_reject_(nf, p, vi.r->reject_with, detail);
    /* kube-proxy's `-m conntrack --ctstate INVALID -j DROP`: name the cause */
    bool invalid = vi.r && (vi.r->m & (NFM_CTSTATE | NFM_STATE)) && p->ct_state == CT_INVALID;
    return drop_pkt(nf, p, invalid ? "ct-invalid" : "nf-drop", detail);
}

/* The nat table at hook h (nf_nat_inet_fn): only a connection's first packet (NEW, NAT not
 * yet set up for this manip type) walks the chains; everything else gets the binding. */
static int run_nat(nf_t *nf, enum nf_hook h, pkt_t *p, net_iface_t *in, net_iface_t *out)
{
    if (!p->ct) return NF_ACCEPT;
    if (ct_nat_done(p->ct, h)) {
        ct_nat_packet(nf, p, h);
        return NF_ACCEPT;
    }
    bool bound = false;
    if (p->ct_state == CT_NEW && (nf->hook_tables[h] & (1u << NF_TBL_NAT))) {
        nf_table_t *t = nf->tables[NF_TBL_NAT];
        vinfo_t vi = {0};
        int v = table_run(nf, t, h, p, in, out, &vi);
        if (v == V_DROP || v == V_REJECT) {
            char where[160], detail[512];
            where_str(t, h, &vi, where, sizeof where);
            snprintf(detail, sizeof detail, "%s%s%s", where, vi.r ? ": " : " DROP",
                     vi.r ? vi.r->text : "");
            return drop_pkt(nf, p, "nf-drop", detail);
        }
        if (v == V_NAT && ct_nat_setup(nf, p, vi.r, h, out) < 0) {
            char where[160], detail[512];
            where_str(t, h, &vi, where, sizeof where);
            snprintf(detail, sizeof detail, "%s: MASQUERADE: %s has no address", where,
                     out ? out->name : "(no interface)");
            return drop_pkt(nf, p, "nf-drop", detail);
        }
        bound = v == V_NAT;
    }
    /* nftables nat chains at the same hook (nf_nat_inet_fn: until one binds) */
    if (p->ct_state == CT_NEW && !bound && nf->nft && nft_nat_(nf, h, p, in, out, &bound))
        return NF_STOLEN;
    ct_nat_finish(nf, p, h);
    return NF_ACCEPT;
}

/* nftables filter chains with priority in [lo, hi) (nftables.c), between the tables. */
#define NFT_RUN(lo, hi) \
    do { if (nf->nft && nft_filter_(nf, h, (lo), (hi), p, in, out)) return NF_STOLEN; } while (0)

int nf_hook(nf_t *nf, enum nf_hook h, pkt_t *p, net_iface_t *in, net_iface_t *out)
{
    if (!nf->active) return NF_ACCEPT;
    /* Linux priorities: raw -300, conntrack -200, mangle -150, nat(DST) -100, filter 0,
     * nat(SRC) 100, confirm last; nftables base chains at their own priority (ties after
     * the iptables table), nftables nat chains with the iptables nat table. */
    switch (h) {
    case NF_PREROUTING:
    case NF_OUTPUT:
        p->ct = NULL;
        p->ct_dir = 0;
        p->ct_state = CT_UNTRACKED;
        walk_begin(nf, p);
        if (run_filter(nf, NF_TBL_RAW, h, p, in, out)) return NF_STOLEN;
        NFT_RUN(INT_MIN, -200);
        if (nf->ct_on) ct_in(nf, p, h);
        NFT_RUN(-200, -150);
        if (run_filter(nf, NF_TBL_MANGLE, h, p, in, out)) return NF_STOLEN;
        NFT_RUN(-150, -100);
        if (run_nat(nf, h, p, in, out)) return NF_STOLEN;
        NFT_RUN(-100, 0);
        if (h == NF_OUTPUT && run_filter(nf, NF_TBL_FILTER, h, p, in, out)) return NF_STOLEN;
        NFT_RUN(0, INT_MAX);
        return NF_ACCEPT;
    case NF_INPUT:
        NFT_RUN(INT_MIN, -150);
        if (run_filter(nf, NF_TBL_MANGLE, h, p, in, out)) return NF_STOLEN;
        NFT_RUN(-150, 0);
        if (run_filter(nf, NF_TBL_FILTER, h, p, in, out)) return NF_STOLEN;
        NFT_RUN(0, 100);
        if (run_nat(nf, h, p, in, out)) return NF_STOLEN;
        NFT_RUN(100, INT_MAX);
        walk_end(nf, p);
        return ct_confirm(nf, p);
    case NF_FORWARD:
        NFT_RUN(INT_MIN, -150);
        if (run_filter(nf, NF_TBL_MANGLE, h, p, in, out)) return NF_STOLEN;
        NFT_RUN(-150, 0);
        if (run_filter(nf, NF_TBL_FILTER, h, p, in, out)) return NF_STOLEN;
        NFT_RUN(0, INT_MAX);
        return NF_ACCEPT;
    case NF_POSTROUTING:
        NFT_RUN(INT_MIN, -150);
        if (run_filter(nf, NF_TBL_MANGLE, h, p, in, out)) return NF_STOLEN;
        NFT_RUN(-150, 100);
        if (run_nat(nf, h, p, in, out)) return NF_STOLEN;
        NFT_RUN(100, INT_MAX);
        walk_end(nf, p);
        return ct_confirm(nf, p);
    default:
        assert(0);
        return NF_ACCEPT;
    }
}
