/* nftables.c -- a node's nftables ruleset (family ip): the `nft -f` transaction parser,
 * the rule engine nft_do_chain() runs at the hooks, `nft list ruleset` output, and rulesets
 * shared between nodes. Follows the kernel's net/netfilter/nf_tables_core.c (rules in
 * order, expressions in order, a failed match breaks to the next rule; jump pushes, goto
 * does not, return pops, the end of a base chain applies its policy), nft_lookup.c /
 * nft_set_hash.c (a set or verdict-map lookup is one hash probe), nft_numgen.c
 * (reciprocal_scale(get_random_u32(), mod)), nft_nat.c and nft_masq.c (terminal NAT
 * statements, bound through conntrack as the iptables nat table binds), nft_reject_ipv4.c
 * (`reject` = ICMP port unreachable), and the listing format of nft 1.0.6.
 *
 * Data: a ruleset owns tables; a table owns its chains and sets by pointer in creation
 * order, addressed by position (a rule's jump, a set reference), so a ruleset can be copied
 * without rewriting references. Deleted chains and sets stay as dead slots. Each hook has
 * the positions of its base chains sorted by priority (rebuilt at every commit).
 * Invariant: a committed ruleset has no jump loop and no jump deeper than
 * NFT_JUMP_STACK_SIZE, no live reference to a dead chain or set, and no dnat, masquerade
 * or reject reachable from a base chain whose hook or type the kernel refuses it in.
 *
 * Supported transaction syntax, one command per line (`#` starts a comment line):
 *   add|create table ip T [{ comment "C" ; }]     delete|flush table ip T     flush ruleset
 *   add chain ip T C [{ [type filter|nat hook H priority P ;] [policy accept|drop ;]
 *                       [comment "C" ;] }]          flush|delete chain ip T C
 *   add set ip T S { type ipv4_addr ; [flags F[,F] ;] [timeout Ns ;] [comment "C" ;] }
 *   add map ip T M { type K : verdict ; [comment "C" ;] }   K: ipv4_addr . inet_proto .
 *                       inet_service | inet_proto . inet_service
 *   flush|delete set|map ip T S     add|delete element ip T S { E [, E]... }
 *       E: KEY [comment "C"] [: VERDICT]
 *   add rule ip T C EXPR... [comment "C"]
 *   P: an integer, or raw mangle dstnat filter security srcnat, with "+ N" / "- N"
 * Rule expressions:
 *   ct state S[,S]     ip saddr|daddr [!=] ADDR[/LEN] | @SET | { ADDR[/LEN], ... }
 *   meta l4proto [!=] PROTO     tcp|udp|sctp dport [!=] PORT     fib saddr|daddr type local
 *   [meta] mark [and|& M] ==|!= V      [meta] mark set [meta] mark or|xor|'|'|'^' V
 *   ip daddr . meta l4proto . th dport vmap @MAP     meta l4proto . th dport vmap @MAP
 *   numgen random mod N vmap { 0 : VERDICT, ... }   counter
 *   accept | drop | return | continue | jump C | goto C
 *   reject [with icmp [type] port-unreachable|host-unreachable|net-unreachable|
 *           admin-prohibited | with tcp reset]
 *   dnat [ip] to ADDR[:PORT]     masquerade [random] [fully-random] [persistent]
 * Not modelled (LB_EPARSE naming it): other families, `update @set` and dynamic sets with
 * timeouts (kube-proxy's session affinity), other statements and expressions. */
#include <assert.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "nf_int.h"
#include "nftables.h"

#define NFT_JUMP_STACK_SIZE 16      /* include/net/netfilter/nf_tables.h */
#define NFT_NAME_MAX 256            /* NFT_NAME_MAXLEN: table, chain, set names */

enum { NK_ADDR, NK_ADDR_PROTO_PORT, NK_PROTO_PORT, NK_INT };
enum { NV_NONE = 0, NV_ACCEPT, NV_DROP, NV_RETURN, NV_CONTINUE, NV_JUMP, NV_GOTO };
enum { CT_FILTER = 0, CT_NAT = 1 };

typedef struct nverdict {
    uint8_t code;                   /* NV_* */
    int32_t chain;                  /* NV_JUMP / NV_GOTO: chain position in its table */
} nverdict_t;

typedef struct nelem {
    uint64_t key;                   /* NK_ADDR: address; NK_ADDR_PROTO_PORT: address << 24 |
                                     * proto << 16 | port; NK_PROTO_PORT: proto << 16 | port;
                                     * NK_INT: the number */
    uint8_t plen;                   /* NK_ADDR: prefix length (32: one address) */
    nverdict_t v;                   /* maps */
    char *comment;
} nelem_t;

typedef struct nset {
    char *name;                     /* NULL: anonymous (owned by its rule) */
    uint8_t key;                    /* NK_* */
    bool map;                       /* verdict map */
    bool interval;                  /* prefixes allowed (flags interval, anonymous sets) */
    bool dead;
    char *comment, *flags;
    LB_VEC(nelem_t) el;
    lb_index_t ix;                  /* hash of an exact key -> el position */
    size_t nprefix;                 /* elements with plen < 32 */
} nset_t;

enum {
    IT_CT_STATE, IT_ADDR, IT_ADDR_SET, IT_L4PROTO, IT_DPORT, IT_FIB_LOCAL, IT_MARK_CMP,
    IT_VMAP, IT_NUMGEN_VMAP, IT_MARK_SET, IT_VERDICT, IT_DNAT, IT_MASQ, IT_REJECT,
    IT_COUNTER
};

typedef struct item {
    uint8_t op;                     /* IT_* */
    uint8_t f;                      /* saddr 0 / daddr 1; IT_VMAP: NK_*; IT_MARK_SET: 0 or,
                                     * 1 xor; IT_DPORT: protocol */
    bool neg;
    uint32_t a, b;                  /* per op: address and prefix length, state bits,
                                     * protocol, port, mask and value, modulus, NAT address
                                     * and port, masquerade flags, reject code */
    int32_t ref;                    /* named set or map position; -1: anon */
    nset_t *anon;                   /* anonymous set or inline verdict map (owned) */
    nverdict_t v;                   /* IT_VERDICT */
} item_t;

typedef struct nrule {
    LB_VEC(item_t) it;
    char *comment;
} nrule_t;

typedef struct nchain {
    char *name;
    bool base, dead;
    uint8_t type;                   /* CT_FILTER / CT_NAT */
    int8_t hook;                    /* enum nf_hook (base chains) */
    int prio;
    uint8_t policy;                 /* NV_ACCEPT / NV_DROP */
    char *comment;
    LB_VEC(nrule_t) rules;
    int mark_;                      /* scratch: commit's loop check */
    uint8_t hooks_;                 /* scratch: the hooks every statement reachable from here
                                     * allows (bit per enum nf_hook) */
    bool nat_;                      /* scratch: a NAT statement is reachable from here */
} nchain_t;

typedef struct ntable {
    char *name, *comment;
    LB_VEC(nchain_t *) chains;
    LB_VEC(nset_t *) sets;
    lb_index_t cix, six;            /* hash of a name -> position */
    LB_VEC(int32_t) hooks[NF_HOOK_COUNT];   /* base chains by priority */
} ntable_t;

typedef struct nruleset {
    LB_VEC(ntable_t *) t;
    int refs;                       /* shared rulesets: nodes and the cache */
} nruleset_t;

typedef struct ovr { int32_t table, set; nset_t *s; } ovr_t;

/* A node's state (nf->nft). */
struct nft_state {
    nruleset_t *rs;                 /* NULL: no tables */
    bool shared;                    /* rs belongs to a cache: immutable */
    LB_VEC(ovr_t) ovr;              /* the node's own copies of sets of a shared rs */
};

typedef struct centry { uint64_t key[2]; nruleset_t *rs; } centry_t;
struct nft_cache {
    LB_VEC(centry_t) e;
    lb_index_t ix;
};

/* ---- sets ---------------------------------------------------------------------------------- */

static uint64_t hkey(uint64_t k) { return lb_mix64(k ^ 0x9e3779b97f4a7c15ULL); }

static void set_free(nset_t *s)
{
    if (!s) return;
    lb_free(s->name);
    lb_free(s->comment);
    lb_free(s->flags);
    for (size_t i = 0; i < s->el.n; i++) lb_free(s->el.v[i].comment);
    lb_vec_free(&s->el);
    lb_index_free(&s->ix);
    lb_free(s);
}

static char *dup0(const char *s) { return s ? lb_strdup(s) : NULL; }

static nset_t *set_clone(const nset_t *s)
{
    nset_t *c = lb_calloc(1, sizeof *c);
    *c = *s;
    c->name = dup0(s->name);
    c->comment = dup0(s->comment);
    c->flags = dup0(s->flags);
    memset(&c->el, 0, sizeof c->el);
    memset(&c->ix, 0, sizeof c->ix);
    lb_vec_reserve(&c->el, s->el.n);
    for (size_t i = 0; i < s->el.n; i++) {
        nelem_t e = s->el.v[i];
        e.comment = dup0(e.comment);
        lb_vec_push(&c->el, e);
        if (e.plen == 32 || s->key != NK_ADDR) lb_index_add(&c->ix, hkey(e.key), i);
    }
    return c;
}

static uint32_t plen_mask(int plen) { return lb_prefix_mask(plen); }

/* Position of the element with exactly this key (and prefix), or -1. */
static long set_find_exact(const nset_t *s, uint64_t key, uint8_t plen)
{
    if (plen == 32 || s->key != NK_ADDR) {
        size_t it;
        for (size_t p = lb_index_first(&s->ix, hkey(key), &it); p != LB_INDEX_NONE;
             p = lb_index_next(&s->ix, hkey(key), &it))
            if (s->el.v[p].key == key) return (long)p;
        return -1;
    }
    for (size_t i = 0; i < s->el.n; i++)
        if (s->el.v[i].key == key && s->el.v[i].plen == plen) return (long)i;
    return -1;
}

/* The element a packet's key matches: an exact element (one hash probe), else the
 * longest prefix that contains it (interval sets). NULL: none. */
static const nelem_t *set_lookup(const nset_t *s, uint64_t key)
{
    size_t it;
    for (size_t p = lb_index_first(&s->ix, hkey(key), &it); p != LB_INDEX_NONE;
         p = lb_index_next(&s->ix, hkey(key), &it))
        if (s->el.v[p].key == key && (s->key != NK_ADDR || s->el.v[p].plen == 32))
            return &s->el.v[p];
    if (!s->nprefix) return NULL;
    const nelem_t *best = NULL;
    for (size_t i = 0; i < s->el.n; i++) {
        const nelem_t *e = &s->el.v[i];
        if (e->plen < 32 && ((uint32_t)key & plen_mask(e->plen)) == (uint32_t)e->key &&
            (!best || e->plen > best->plen))
            best = e;
    }
    return best;
}

static void set_add(nset_t *s, const nelem_t *e)
{
    long at = set_find_exact(s, e->key, e->plen);
    if (at >= 0) {                  /* nft: adding an existing element is not an error */
        lb_free(e->comment);
        return;
    }
    lb_vec_push(&s->el, *e);
    if (e->plen == 32 || s->key != NK_ADDR) lb_index_add(&s->ix, hkey(e->key), s->el.n - 1);
    else s->nprefix++;
}

static void set_del_at(nset_t *s, size_t i)
{
    nelem_t *e = &s->el.v[i];
    if (e->plen == 32 || s->key != NK_ADDR) lb_index_remove(&s->ix, hkey(e->key), i);
    else s->nprefix--;
    lb_free(e->comment);
    size_t last = s->el.n - 1;
    if (i != last) {
        nelem_t *m = &s->el.v[last];
        bool ixd = m->plen == 32 || s->key != NK_ADDR;
        if (ixd) lb_index_remove(&s->ix, hkey(m->key), last);
        s->el.v[i] = *m;
        if (ixd) lb_index_add(&s->ix, hkey(m->key), i);
    }
    s->el.n--;
}

static void set_flush(nset_t *s)
{
    for (size_t i = 0; i < s->el.n; i++) lb_free(s->el.v[i].comment);
    s->el.n = 0;
    s->nprefix = 0;
    lb_index_clear(&s->ix);
}

/* ---- tables and rulesets ------------------------------------------------------------------- */

static void rule_fini(nrule_t *r)
{
    for (size_t i = 0; i < r->it.n; i++) set_free(r->it.v[i].anon);
    lb_vec_free(&r->it);
    lb_free(r->comment);
}

static void chain_free(nchain_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->rules.n; i++) rule_fini(&c->rules.v[i]);
    lb_vec_free(&c->rules);
    lb_free(c->name);
    lb_free(c->comment);
    lb_free(c);
}

static void chain_flush(nchain_t *c)
{
    for (size_t i = 0; i < c->rules.n; i++) rule_fini(&c->rules.v[i]);
    c->rules.n = 0;
}

static void table_free(ntable_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->chains.n; i++) chain_free(t->chains.v[i]);
    for (size_t i = 0; i < t->sets.n; i++) set_free(t->sets.v[i]);
    lb_vec_free(&t->chains);
    lb_vec_free(&t->sets);
    lb_index_free(&t->cix);
    lb_index_free(&t->six);
    for (int h = 0; h < NF_HOOK_COUNT; h++) lb_vec_free(&t->hooks[h]);
    lb_free(t->name);
    lb_free(t->comment);
    lb_free(t);
}

static void rs_unref(nruleset_t *rs)
{
    if (!rs || --rs->refs > 0) return;
    for (size_t i = 0; i < rs->t.n; i++) table_free(rs->t.v[i]);
    lb_vec_free(&rs->t);
    lb_free(rs);
}

static nchain_t *chain_clone(const nchain_t *c)
{
    nchain_t *d = lb_calloc(1, sizeof *d);
    *d = *c;
    d->name = lb_strdup(c->name);
    d->comment = dup0(c->comment);
    memset(&d->rules, 0, sizeof d->rules);
    lb_vec_reserve(&d->rules, c->rules.n);
    for (size_t i = 0; i < c->rules.n; i++) {
        const nrule_t *r = &c->rules.v[i];
        nrule_t n = {0};
        n.comment = dup0(r->comment);
        lb_vec_reserve(&n.it, r->it.n);
        for (size_t k = 0; k < r->it.n; k++) {
            item_t x = r->it.v[k];
            if (x.anon) x.anon = set_clone(x.anon);
            lb_vec_push(&n.it, x);
        }
        lb_vec_push(&d->rules, n);
    }
    return d;
}

static ntable_t *table_clone(const ntable_t *t, const struct nft_state *st, int32_t ti)
{
    ntable_t *d = lb_calloc(1, sizeof *d);
    d->name = lb_strdup(t->name);
    d->comment = dup0(t->comment);
    for (size_t i = 0; i < t->chains.n; i++) {
        lb_vec_push(&d->chains, chain_clone(t->chains.v[i]));
        if (!t->chains.v[i]->dead) lb_index_add(&d->cix, lb_hash_str(t->chains.v[i]->name), i);
    }
    for (size_t i = 0; i < t->sets.n; i++) {
        const nset_t *s = t->sets.v[i];
        for (size_t k = 0; st && k < st->ovr.n; k++)
            if (st->ovr.v[k].table == ti && st->ovr.v[k].set == (int32_t)i) s = st->ovr.v[k].s;
        lb_vec_push(&d->sets, set_clone(s));
        if (!s->dead) lb_index_add(&d->six, lb_hash_str(s->name), i);
    }
    for (int h = 0; h < NF_HOOK_COUNT; h++)
        for (size_t i = 0; i < t->hooks[h].n; i++) lb_vec_push(&d->hooks[h], t->hooks[h].v[i]);
    return d;
}

static nruleset_t *rs_clone(const nruleset_t *rs, const struct nft_state *st)
{
    nruleset_t *d = lb_calloc(1, sizeof *d);
    d->refs = 1;
    for (size_t i = 0; rs && i < rs->t.n; i++)
        lb_vec_push(&d->t, table_clone(rs->t.v[i], st, (int32_t)i));
    return d;
}

static long find_named(const lb_index_t *ix, const void *vec_v, size_t n, bool chains,
                       const char *name)
{
    size_t it;
    uint64_t h = lb_hash_str(name);
    for (size_t p = lb_index_first(ix, h, &it); p != LB_INDEX_NONE; p = lb_index_next(ix, h, &it)) {
        if (p >= n) continue;
        const char *nm = chains ? ((nchain_t *const *)vec_v)[p]->name
                                : ((nset_t *const *)vec_v)[p]->name;
        bool dead = chains ? ((nchain_t *const *)vec_v)[p]->dead : ((nset_t *const *)vec_v)[p]->dead;
        if (!dead && strcmp(nm, name) == 0) return (long)p;
    }
    return -1;
}

static long chain_pos(const ntable_t *t, const char *name)
{
    return find_named(&t->cix, t->chains.v, t->chains.n, true, name);
}

static long set_pos(const ntable_t *t, const char *name)
{
    return find_named(&t->six, t->sets.v, t->sets.n, false, name);
}

static long table_pos(const nruleset_t *rs, const char *name)
{
    for (size_t i = 0; rs && i < rs->t.n; i++)
        if (strcmp(rs->t.v[i]->name, name) == 0) return (long)i;
    return -1;
}

static struct nft_state *state(nf_t *nf)
{
    if (!nf->nft) nf->nft = lb_calloc(1, sizeof *nf->nft);
    return nf->nft;
}

static void ovr_clear(struct nft_state *st)
{
    for (size_t i = 0; i < st->ovr.n; i++) set_free(st->ovr.v[i].s);
    st->ovr.n = 0;
}

void nft_state_free_(struct nft_state *st)
{
    if (!st) return;
    ovr_clear(st);
    lb_vec_free(&st->ovr);
    rs_unref(st->rs);
    lb_free(st);
}

/* The set the node sees at (table, set): its own copy, else the ruleset's. */
static const nset_t *set_view(const struct nft_state *st, const ntable_t *t, int32_t ti,
                              int32_t si)
{
    for (size_t k = 0; st && k < st->ovr.n; k++)
        if (st->ovr.v[k].table == ti && st->ovr.v[k].set == si) return st->ovr.v[k].s;
    return t->sets.v[si];
}

/* ---- tokens -------------------------------------------------------------------------------- */

typedef struct tok { char *s; bool quoted; } tok_t;
typedef struct toks { tok_t *v; size_t n, cap; } toks_t;

static void toks_clear(toks_t *t)
{
    for (size_t i = 0; i < t->n; i++) lb_free(t->v[i].s);
    t->n = 0;
}

/* Splits one line: "quoted strings", the punctuation { } ; , as tokens of their own,
 * everything else at white space. Returns false for an unterminated string. */
static bool tokenize(const char *s, toks_t *t)
{
    toks_clear(t);
    while (*s) {
        if (isspace((unsigned char)*s)) { s++; continue; }
        tok_t k = {0};
        if (*s == '"') {
            const char *e = strchr(s + 1, '"');
            if (!e) return false;
            k.s = lb_strndup(s + 1, (size_t)(e - s - 1));
            k.quoted = true;
            s = e + 1;
        } else if (strchr("{};,", *s)) {
            k.s = lb_strndup(s, 1);
            s++;
        } else {
            const char *b = s;
            while (*s && !isspace((unsigned char)*s) && !strchr("{};,\"", *s)) s++;
            k.s = lb_strndup(b, (size_t)(s - b));
        }
        lb_vec_push(t, k);
    }
    return true;
}

/* ---- the transaction parser ---------------------------------------------------------------- */

typedef struct px {
    nruleset_t *rs;                 /* the working ruleset */
    struct nft_state *ovl;          /* overlay mode: set commands write the node's copies */
    LB_VEC(ovr_t) novr;             /* overlay mode: the copies made so far */
    toks_t tk;
    size_t i;                       /* next token */
    int line;
    char *err;
    size_t errlen;
    int rc;
    bool need_private;              /* overlay mode met a command that is not a set one */
} px_t;

static int perr(px_t *x, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(px_t *x, int rc, const char *fmt, ...)
{
    if (x->rc) return x->rc;
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lb_errf(x->err, x->errlen, "line %d: %s", x->line, msg);
    x->rc = rc;
    return rc;
}

static const char *peek(const px_t *x) { return x->i < x->tk.n ? x->tk.v[x->i].s : NULL; }
static bool at(const px_t *x, const char *w)
{
    const char *p = peek(x);
    return p && !x->tk.v[x->i].quoted && strcmp(p, w) == 0;
}
static const char *next(px_t *x) { return x->i < x->tk.n ? x->tk.v[x->i++].s : NULL; }
static bool eat(px_t *x, const char *w)
{
    if (!at(x, w)) return false;
    x->i++;
    return true;
}
static int expect(px_t *x, const char *w)
{
    if (eat(x, w)) return 0;
    const char *p = peek(x);
    return perr(x, LB_EPARSE, "expected '%s'%s%s%s", w, p ? " before '" : " at the end",
                p ? p : "", p ? "'" : "");
}

static bool parse_uint(const char *s, uint64_t max, uint64_t *v)
{
    if (!s || !*s) return false;
    char *end;
    unsigned long long x;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        if (!isxdigit((unsigned char)s[2])) return false;
        x = strtoull(s + 2, &end, 16);
    } else {
        if (!isdigit((unsigned char)*s)) return false;
        x = strtoull(s, &end, 10);
    }
    if (*end || x > max) return false;
    *v = x;
    return true;
}

static bool parse_proto(const char *s, uint8_t *p)
{
    static const struct { const char *n; uint8_t v; } names[] = {
        {"tcp", 6}, {"udp", 17}, {"sctp", 132}, {"icmp", 1}, {NULL, 0}};
    for (int i = 0; names[i].n; i++)
        if (s && strcmp(s, names[i].n) == 0) { *p = names[i].v; return true; }
    uint64_t v;
    if (!parse_uint(s, 255, &v)) return false;
    *p = (uint8_t)v;
    return true;
}

static const char *proto_str(uint8_t p, char buf[8])
{
    switch (p) {
    case 6: return "tcp";
    case 17: return "udp";
    case 132: return "sctp";
    case 1: return "icmp";
    default: snprintf(buf, 8, "%u", p); return buf;
    }
}

/* ADDR or ADDR/LEN (host bits must be zero, as nft requires). */
static bool parse_prefix(const char *s, uint32_t *a, uint8_t *plen)
{
    int l = 32;
    if (!s || lb_cidr_parse(s, a, &l)) return false;
    if (*a & ~plen_mask(l)) return false;
    *plen = (uint8_t)l;
    return true;
}

static int parse_name(px_t *x, const char *what, const char **out)
{
    const char *s = next(x);
    if (!s || strchr("{};,", s[0]) || strlen(s) >= NFT_NAME_MAX)
        return perr(x, LB_EPARSE, "expected a %s name", what);
    *out = s;
    return 0;
}

static int parse_table_ref(px_t *x, ntable_t **t, int32_t *ti, bool must)
{
    const char *fam = next(x), *name;
    if (!fam) return perr(x, LB_EPARSE, "expected a family and a table name");
    if (strcmp(fam, "ip") != 0)
        return perr(x, LB_EPARSE, "family '%s' is not modelled (only ip)", fam);
    if (parse_name(x, "table", &name)) return x->rc;
    long p = table_pos(x->rs, name);
    if (p < 0 && must) return perr(x, LB_ENOENT, "no such table: ip %s", name);
    *t = p < 0 ? NULL : x->rs->t.v[p];
    *ti = (int32_t)p;
    return 0;
}

/* The writable set at (table, position): in overlay mode the node's copy (made on first
 * write), else the set itself. */
static nset_t *set_w(px_t *x, int32_t ti, int32_t si)
{
    nset_t *s = x->rs->t.v[ti]->sets.v[si];
    if (!x->ovl) return s;
    for (size_t k = 0; k < x->novr.n; k++)
        if (x->novr.v[k].table == ti && x->novr.v[k].set == si) return x->novr.v[k].s;
    ovr_t o = { ti, si, set_clone(set_view(x->ovl, x->rs->t.v[ti], ti, si)) };
    lb_vec_push(&x->novr, o);
    return o.s;
}

static int parse_verdict(px_t *x, ntable_t *t, nverdict_t *v)
{
    const char *w = next(x);
    memset(v, 0, sizeof *v);
    if (!w) return perr(x, LB_EPARSE, "expected a verdict");
    if (!strcmp(w, "accept")) v->code = NV_ACCEPT;
    else if (!strcmp(w, "drop")) v->code = NV_DROP;
    else if (!strcmp(w, "return")) v->code = NV_RETURN;
    else if (!strcmp(w, "continue")) v->code = NV_CONTINUE;
    else if (!strcmp(w, "jump") || !strcmp(w, "goto")) {
        const char *c;
        if (parse_name(x, "chain", &c)) return x->rc;
        long p = chain_pos(t, c);
        if (p < 0) return perr(x, LB_ENOENT, "no such chain: %s", c);
        if (t->chains.v[p]->base)
            return perr(x, LB_EPARSE, "cannot %s to base chain %s", w, c);
        v->code = w[0] == 'j' ? NV_JUMP : NV_GOTO;
        v->chain = (int32_t)p;
    } else {
        return perr(x, LB_EPARSE, "unknown verdict '%s'", w);
    }
    return 0;
}

/* One element key of set s's type from the tokens. */
static int parse_key(px_t *x, const nset_t *s, nelem_t *e)
{
    uint32_t a;
    uint8_t pl = 32, pr;
    uint64_t n;
    const char *w = next(x);
    memset(e, 0, sizeof *e);
    e->plen = 32;
    switch (s->key) {
    case NK_ADDR:
        if (!parse_prefix(w, &a, &pl)) return perr(x, LB_EPARSE, "expected an IPv4 address "
                                                   "or prefix, got '%s'", w ? w : "");
        if (pl < 32 && !s->interval)
            return perr(x, LB_EPARSE, "set member %s cannot be a prefix: set %s has no "
                        "interval flag", w, s->name ? s->name : "");
        e->key = a;
        e->plen = pl;
        return 0;
    case NK_ADDR_PROTO_PORT:
        if (!parse_prefix(w, &a, &pl) || pl != 32)
            return perr(x, LB_EPARSE, "expected an IPv4 address, got '%s'", w ? w : "");
        if (expect(x, ".")) return x->rc;
        w = next(x);
        /* fall through */
    case NK_PROTO_PORT:
        if (s->key == NK_PROTO_PORT) a = 0;
        if (!parse_proto(w, &pr))
            return perr(x, LB_EPARSE, "expected a protocol, got '%s'", w ? w : "");
        if (expect(x, ".")) return x->rc;
        w = next(x);
        if (!parse_uint(w, 65535, &n))
            return perr(x, LB_EPARSE, "expected a port, got '%s'", w ? w : "");
        e->key = (s->key == NK_ADDR_PROTO_PORT ? (uint64_t)a << 24 : 0) | (uint64_t)pr << 16 | n;
        return 0;
    default:
        if (!parse_uint(w, UINT32_MAX, &n))
            return perr(x, LB_EPARSE, "expected a number, got '%s'", w ? w : "");
        e->key = n;
        return 0;
    }
}

/* { E [, E]... } into s (elements added; deleted when del). */
static int parse_elements(px_t *x, ntable_t *t, nset_t *s, bool del)
{
    if (expect(x, "{")) return x->rc;
    for (;;) {
        nelem_t e;
        if (parse_key(x, s, &e)) return x->rc;
        if (eat(x, "comment")) {
            if (x->i >= x->tk.n || !x->tk.v[x->i].quoted)
                return perr(x, LB_EPARSE, "comment needs a quoted string");
            e.comment = lb_strdup(next(x));
        }
        if (s->map && !del) {
            if (expect(x, ":") || parse_verdict(x, t, &e.v)) {
                lb_free(e.comment);
                return x->rc;
            }
        }
        if (del) {
            long p = set_find_exact(s, e.key, e.plen);
            lb_free(e.comment);
            if (p < 0) return perr(x, LB_ENOENT, "element not in %s", s->name);
            set_del_at(s, (size_t)p);
        } else {
            set_add(s, &e);
        }
        if (eat(x, "}")) return 0;
        if (expect(x, ",")) return x->rc;
    }
}

static int parse_set_decl(px_t *x, ntable_t *t, bool map, const char *name)
{
    nset_t *s = lb_calloc(1, sizeof *s);
    s->name = lb_strdup(name);
    s->map = map;
    bool typed = false;
    int rc = 0;
    if (expect(x, "{")) goto bad;
    while (!eat(x, "}")) {
        if (eat(x, ";")) continue;
        if (eat(x, "type")) {
            const char *k1 = next(x);
            if (k1 && !strcmp(k1, "ipv4_addr") && !at(x, ".")) {
                s->key = NK_ADDR;
            } else if (k1 && !strcmp(k1, "ipv4_addr")) {
                if (expect(x, ".") || !eat(x, "inet_proto") || expect(x, ".") ||
                    !eat(x, "inet_service")) {
                    perr(x, LB_EPARSE, "type: only ipv4_addr, ipv4_addr . inet_proto . "
                         "inet_service and inet_proto . inet_service are modelled");
                    goto bad;
                }
                s->key = NK_ADDR_PROTO_PORT;
            } else if (k1 && !strcmp(k1, "inet_proto")) {
                if (expect(x, ".") || !eat(x, "inet_service")) {
                    perr(x, LB_EPARSE, "type: expected inet_proto . inet_service");
                    goto bad;
                }
                s->key = NK_PROTO_PORT;
            } else {
                perr(x, LB_EPARSE, "type '%s' is not modelled", k1 ? k1 : "");
                goto bad;
            }
            if (map && (expect(x, ":") || !eat(x, "verdict"))) {
                perr(x, LB_EPARSE, "map %s: only verdict maps are modelled", name);
                goto bad;
            }
            if (!map && at(x, ":")) {
                perr(x, LB_EPARSE, "set %s has a data type: use add map", name);
                goto bad;
            }
            typed = true;
        } else if (eat(x, "comment")) {
            if (x->i >= x->tk.n || !x->tk.v[x->i].quoted) {
                perr(x, LB_EPARSE, "comment needs a quoted string");
                goto bad;
            }
            lb_free(s->comment);
            s->comment = lb_strdup(next(x));
        } else if (eat(x, "flags")) {
            char buf[128] = "";
            for (;;) {
                const char *f = next(x);
                if (!f || (strcmp(f, "interval") && strcmp(f, "constant"))) {
                    perr(x, LB_EPARSE, "set flag '%s' is not modelled (interval, constant "
                         "are; dynamic and timeout sets are not)", f ? f : "");
                    goto bad;
                }
                if (!strcmp(f, "interval")) s->interval = true;
                if (buf[0]) strncat(buf, ",", sizeof buf - strlen(buf) - 1);
                strncat(buf, f, sizeof buf - strlen(buf) - 1);
                if (!eat(x, ",")) break;
            }
            lb_free(s->flags);
            s->flags = lb_strdup(buf);
        } else {
            const char *w = peek(x);
            perr(x, LB_EPARSE, "unexpected '%s' in the declaration of %s", w ? w : "", name);
            goto bad;
        }
    }
    if (!typed) {
        perr(x, LB_EPARSE, "%s %s needs a type", map ? "map" : "set", name);
        goto bad;
    }
    long p = set_pos(t, name);
    if (p >= 0) {
        const nset_t *o = t->sets.v[p];
        if (o->map != map || o->key != s->key || o->interval != s->interval) {
            perr(x, LB_EEXIST, "%s %s exists with other properties", map ? "map" : "set", name);
            goto bad;
        }
        set_free(s);
        return 0;
    }
    lb_vec_push(&t->sets, s);
    lb_index_add(&t->six, lb_hash_str(name), t->sets.n - 1);
    return 0;
bad:
    rc = x->rc;
    set_free(s);
    return rc;
}

static const struct { const char *n; int v; } std_prios[] = {
    {"raw", -300}, {"mangle", -150}, {"dstnat", -100}, {"filter", 0}, {"security", 50},
    {"srcnat", 100}, {NULL, 0}};

static int parse_prio(px_t *x, int *prio)
{
    const char *w = next(x);
    if (!w) return perr(x, LB_EPARSE, "expected a priority");
    long base = 0;
    char name[32];
    const char *sign = NULL;
    size_t k = 0;
    if (w[0] == '-' || isdigit((unsigned char)w[0])) {
        char *end;
        base = strtol(w, &end, 10);
        if (*end || base < -100000 || base > 100000)
            return perr(x, LB_EPARSE, "bad priority '%s'", w);
        *prio = (int)base;
        return 0;
    }
    while (w[k] && isalpha((unsigned char)w[k]) && k + 1 < sizeof name) { name[k] = w[k]; k++; }
    name[k] = 0;
    if (w[k]) sign = w + k;
    int i = 0;
    while (std_prios[i].n && strcmp(std_prios[i].n, name)) i++;
    if (!std_prios[i].n) return perr(x, LB_EPARSE, "unknown priority '%s'", w);
    base = std_prios[i].v;
    const char *num = NULL;
    char op = 0;
    if (sign) {                         /* "dstnat-10" */
        op = sign[0];
        num = sign + 1;
    } else if (at(x, "+") || at(x, "-")) {
        op = next(x)[0];
        num = next(x);
    }
    if (op) {
        uint64_t v;
        if ((op != '+' && op != '-') || !parse_uint(num, 100000, &v))
            return perr(x, LB_EPARSE, "bad priority '%s'", w);
        base += op == '+' ? (long)v : -(long)v;
    }
    *prio = (int)base;
    return 0;
}

static int parse_hook(const char *w)
{
    static const char *const names[NF_HOOK_COUNT] = {"prerouting", "input", "forward",
                                                     "output", "postrouting"};
    for (int h = 0; h < NF_HOOK_COUNT; h++)
        if (w && strcmp(w, names[h]) == 0) return h;
    return -1;
}

static int parse_chain_decl(px_t *x, ntable_t *t, const char *name)
{
    nchain_t c = {0};
    c.policy = NV_ACCEPT;
    c.hook = -1;
    char *comment = NULL;
    if (eat(x, "{")) {
        while (!eat(x, "}")) {
            if (eat(x, ";")) continue;
            if (eat(x, "type")) {
                const char *ty = next(x);
                if (!ty || (strcmp(ty, "filter") && strcmp(ty, "nat")))
                    return lb_free(comment), perr(x, LB_EPARSE, "chain type '%s' is not "
                                                  "modelled (filter, nat)", ty ? ty : "");
                c.type = ty[0] == 'n' ? CT_NAT : CT_FILTER;
                if (!eat(x, "hook")) return lb_free(comment), expect(x, "hook");
                int h = parse_hook(next(x));
                if (h < 0) return lb_free(comment), perr(x, LB_EPARSE, "unknown hook");
                if (c.type == CT_NAT && h == NF_FORWARD)
                    return lb_free(comment), perr(x, LB_EPARSE, "nat chains cannot use the "
                                                  "forward hook");
                c.hook = (int8_t)h;
                if (!eat(x, "priority")) return lb_free(comment), expect(x, "priority");
                if (parse_prio(x, &c.prio)) return lb_free(comment), x->rc;
                c.base = true;
            } else if (eat(x, "policy")) {
                const char *p = next(x);
                if (!p || (strcmp(p, "accept") && strcmp(p, "drop")))
                    return lb_free(comment), perr(x, LB_EPARSE, "policy must be accept or drop");
                c.policy = p[0] == 'a' ? NV_ACCEPT : NV_DROP;
            } else if (eat(x, "comment")) {
                if (x->i >= x->tk.n || !x->tk.v[x->i].quoted)
                    return lb_free(comment), perr(x, LB_EPARSE, "comment needs a quoted string");
                lb_free(comment);
                comment = lb_strdup(next(x));
            } else {
                const char *w = peek(x);
                return lb_free(comment), perr(x, LB_EPARSE, "unexpected '%s' in chain %s",
                                              w ? w : "", name);
            }
        }
    }
    long p = chain_pos(t, name);
    if (p >= 0) {
        nchain_t *o = t->chains.v[p];
        if (c.base && (!o->base || o->hook != c.hook || o->prio != c.prio || o->type != c.type)) {
            lb_free(comment);
            return perr(x, LB_EEXIST, "chain %s exists with other properties", name);
        }
        if (comment) { lb_free(o->comment); o->comment = comment; }
        return 0;
    }
    nchain_t *n = lb_calloc(1, sizeof *n);
    *n = c;
    n->name = lb_strdup(name);
    n->comment = comment;
    lb_vec_push(&t->chains, n);
    lb_index_add(&t->cix, lb_hash_str(name), t->chains.n - 1);
    return 0;
}

/* ADDR[/LEN] | @SET | { ... } after `ip saddr|daddr [!=]`. */
static int parse_addr_match(px_t *x, ntable_t *t, item_t *it)
{
    if (at(x, "{")) {
        nset_t *s = lb_calloc(1, sizeof *s);
        s->key = NK_ADDR;
        s->interval = true;
        it->op = IT_ADDR_SET;
        it->ref = -1;
        it->anon = s;
        return parse_elements(x, t, s, false);
    }
    const char *w = next(x);
    if (w && w[0] == '@') {
        long p = set_pos(t, w + 1);
        if (p < 0) return perr(x, LB_ENOENT, "no such set: %s", w + 1);
        if (t->sets.v[p]->map || t->sets.v[p]->key != NK_ADDR)
            return perr(x, LB_EPARSE, "%s is not a set of ipv4_addr", w + 1);
        it->op = IT_ADDR_SET;
        it->ref = (int32_t)p;
        return 0;
    }
    uint32_t a;
    uint8_t pl;
    if (!parse_prefix(w, &a, &pl))
        return perr(x, LB_EPARSE, "expected an IPv4 address, prefix, @set or { ... }, got '%s'",
                    w ? w : "");
    it->op = IT_ADDR;
    it->a = a;
    it->b = pl;
    return 0;
}

static int parse_vmap_ref(px_t *x, ntable_t *t, uint8_t key, item_t *it)
{
    if (!eat(x, "vmap")) return expect(x, "vmap");
    const char *w = next(x);
    if (!w || w[0] != '@')
        return perr(x, LB_EPARSE, "only named verdict maps (@name) are modelled here");
    long p = set_pos(t, w + 1);
    if (p < 0) return perr(x, LB_ENOENT, "no such map: %s", w + 1);
    if (!t->sets.v[p]->map || t->sets.v[p]->key != key)
        return perr(x, LB_EPARSE, "map %s does not have this key type", w + 1);
    it->op = IT_VMAP;
    it->f = key;
    it->ref = (int32_t)p;
    return 0;
}

static int parse_neg(px_t *x, item_t *it)
{
    if (eat(x, "!=")) it->neg = true;
    else eat(x, "==");
    return 0;
}

static int parse_mark_value(px_t *x, uint32_t *v)
{
    uint64_t n;
    const char *w = next(x);
    if (!parse_uint(w, UINT32_MAX, &n))
        return perr(x, LB_EPARSE, "expected a mark value, got '%s'", w ? w : "");
    *v = (uint32_t)n;
    return 0;
}

static int parse_reject(px_t *x, item_t *it)
{
    it->op = IT_REJECT;
    it->a = ICMP_PORT_UNREACH;          /* nft_reject_ipv4 default: icmp port-unreachable */
    if (!eat(x, "with")) return 0;
    if (eat(x, "tcp")) {
        if (!eat(x, "reset")) return expect(x, "reset");
        it->a = NF_REJECT_TCP_RESET;
        return 0;
    }
    if (!eat(x, "icmp")) return perr(x, LB_EPARSE, "reject with: icmp or tcp reset");
    eat(x, "type");
    const char *w = next(x);
    static const struct { const char *n; int c; } codes[] = {
        {"port-unreachable", ICMP_PORT_UNREACH}, {"host-unreachable", ICMP_HOST_UNREACH},
        {"net-unreachable", ICMP_NET_UNREACH}, {"admin-prohibited", ICMP_ADMIN_PROHIBITED},
        {"prot-unreachable", 2}, {"net-prohibited", 9}, {"host-prohibited", 10}, {NULL, 0}};
    for (int i = 0; codes[i].n; i++)
        if (w && !strcmp(w, codes[i].n)) {
            it->a = (uint32_t)codes[i].c;
            return 0;
        }
    return perr(x, LB_EPARSE, "unknown ICMP reject type '%s'", w ? w : "");
}

/* One expression or statement of a rule into it. */
static int parse_item(px_t *x, ntable_t *t, item_t *it)
{
    memset(it, 0, sizeof *it);
    it->ref = -1;
    const char *w = next(x);
    if (!strcmp(w, "ct")) {
        if (!eat(x, "state")) return expect(x, "state");
        parse_neg(x, it);
        it->op = IT_CT_STATE;
        for (;;) {
            const char *s = next(x);
            if (!s) return perr(x, LB_EPARSE, "expected a conntrack state");
            if (!strcmp(s, "new")) it->a |= NF_CTS_NEW;
            else if (!strcmp(s, "established")) it->a |= NF_CTS_ESTABLISHED;
            else if (!strcmp(s, "related")) it->a |= NF_CTS_RELATED;
            else if (!strcmp(s, "invalid")) it->a |= NF_CTS_INVALID;
            else if (!strcmp(s, "untracked")) it->a |= NF_CTS_UNTRACKED;
            else return perr(x, LB_EPARSE, "unknown conntrack state '%s'", s);
            if (!eat(x, ",")) return 0;
        }
    }
    if (!strcmp(w, "ip")) {
        const char *f = next(x);
        if (!f || (strcmp(f, "saddr") && strcmp(f, "daddr")))
            return perr(x, LB_EPARSE, "ip: only saddr and daddr are modelled");
        it->f = f[0] == 'd';
        if (eat(x, ".")) {
            if (!it->f || !eat(x, "meta") || !eat(x, "l4proto") || expect(x, ".") ||
                !eat(x, "th") || !eat(x, "dport"))
                return perr(x, LB_EPARSE, "only the concatenation ip daddr . meta l4proto . "
                            "th dport is modelled");
            return parse_vmap_ref(x, t, NK_ADDR_PROTO_PORT, it);
        }
        parse_neg(x, it);
        return parse_addr_match(x, t, it);
    }
    if (!strcmp(w, "meta") && at(x, "l4proto")) {
        x->i++;
        if (eat(x, ".")) {
            if (!eat(x, "th") || !eat(x, "dport"))
                return perr(x, LB_EPARSE, "only meta l4proto . th dport is modelled");
            return parse_vmap_ref(x, t, NK_PROTO_PORT, it);
        }
        parse_neg(x, it);
        uint8_t p;
        if (!parse_proto(next(x), &p)) return perr(x, LB_EPARSE, "expected a protocol");
        it->op = IT_L4PROTO;
        it->a = p;
        return 0;
    }
    if (!strcmp(w, "tcp") || !strcmp(w, "udp") || !strcmp(w, "sctp")) {
        if (!eat(x, "dport")) return perr(x, LB_EPARSE, "%s: only dport is modelled", w);
        parse_neg(x, it);
        uint64_t port;
        const char *v = next(x);
        if (!parse_uint(v, 65535, &port)) return perr(x, LB_EPARSE, "bad port '%s'", v ? v : "");
        parse_proto(w, &it->f);
        it->op = IT_DPORT;
        it->a = (uint32_t)port;
        return 0;
    }
    if (!strcmp(w, "fib")) {
        const char *f = next(x);
        if (!f || (strcmp(f, "saddr") && strcmp(f, "daddr")) || !eat(x, "type"))
            return perr(x, LB_EPARSE, "fib: only fib saddr|daddr type [!=] local is modelled");
        parse_neg(x, it);
        if (!eat(x, "local")) return perr(x, LB_EPARSE, "fib: only the type local is modelled");
        it->op = IT_FIB_LOCAL;
        it->f = f[0] == 'd';
        return 0;
    }
    if (!strcmp(w, "mark") || (!strcmp(w, "meta") && at(x, "mark"))) {
        if (w[0] == 'm' && w[1] == 'e') x->i++;
        if (eat(x, "set")) {
            eat(x, "meta");
            if (!eat(x, "mark")) return expect(x, "mark");
            const char *op = next(x);
            if (!op || (strcmp(op, "or") && strcmp(op, "|") && strcmp(op, "xor") && strcmp(op, "^")))
                return perr(x, LB_EPARSE, "mark set: only mark or|xor V is modelled");
            it->op = IT_MARK_SET;
            it->f = op[0] == 'x' || op[0] == '^';
            return parse_mark_value(x, &it->a);
        }
        it->op = IT_MARK_CMP;
        it->a = 0xffffffffu;
        if (eat(x, "and") || eat(x, "&")) {
            if (parse_mark_value(x, &it->a)) return x->rc;
        }
        parse_neg(x, it);
        return parse_mark_value(x, &it->b);
    }
    if (!strcmp(w, "numgen")) {
        uint64_t mod;
        if (!eat(x, "random") || !eat(x, "mod"))
            return perr(x, LB_EPARSE, "numgen: only numgen random mod N is modelled");
        const char *m = next(x);
        if (!parse_uint(m, UINT32_MAX, &mod) || mod == 0)
            return perr(x, LB_EPARSE, "bad modulus '%s'", m ? m : "");
        if (!eat(x, "vmap")) return perr(x, LB_EPARSE, "numgen: only with an inline vmap");
        it->op = IT_NUMGEN_VMAP;
        it->a = (uint32_t)mod;
        it->anon = lb_calloc(1, sizeof *it->anon);
        it->anon->key = NK_INT;
        it->anon->map = true;
        return parse_elements(x, t, it->anon, false);
    }
    if (!strcmp(w, "counter")) {
        it->op = IT_COUNTER;
        uint64_t v;
        if (eat(x, "packets")) {
            if (!parse_uint(next(x), UINT64_MAX, &v) || !eat(x, "bytes") ||
                !parse_uint(next(x), UINT64_MAX, &v))
                return perr(x, LB_EPARSE, "counter: packets N bytes N");
        }
        return 0;
    }
    if (!strcmp(w, "reject")) return parse_reject(x, it);
    if (!strcmp(w, "dnat")) {
        eat(x, "ip");
        if (!eat(x, "to")) return expect(x, "to");
        const char *d = next(x);
        char host[32];
        const char *colon = d ? strchr(d, ':') : NULL;
        size_t hl = colon ? (size_t)(colon - d) : (d ? strlen(d) : 0);
        uint64_t port = 0;
        if (!d || hl >= sizeof host) return perr(x, LB_EPARSE, "dnat to ADDR[:PORT]");
        memcpy(host, d, hl);
        host[hl] = 0;
        if (lb_ip_parse(host, &it->a) || (colon && !parse_uint(colon + 1, 65535, &port)))
            return perr(x, LB_EPARSE, "bad dnat destination '%s'", d);
        it->op = IT_DNAT;
        it->b = colon ? (uint32_t)port : 0;
        it->f = colon != NULL;
        return 0;
    }
    if (!strcmp(w, "masquerade")) {
        it->op = IT_MASQ;
        for (;;) {
            if (eat(x, "fully-random")) it->a |= NF_NAT_RANDOM_FULLY;
            else if (eat(x, "random")) it->a |= NF_NAT_RANDOM;
            else if (eat(x, "persistent")) it->a |= NF_NAT_PERSISTENT;
            else if (!eat(x, ",")) return 0;
        }
    }
    if (!strcmp(w, "update") || !strcmp(w, "add"))
        return perr(x, LB_EPARSE, "'%s @set' (dynamic sets: kube-proxy's session affinity) is "
                    "not modelled", w);
    x->i--;
    it->op = IT_VERDICT;
    if (!strcmp(w, "accept") || !strcmp(w, "drop") || !strcmp(w, "return") ||
        !strcmp(w, "continue") || !strcmp(w, "jump") || !strcmp(w, "goto"))
        return parse_verdict(x, t, &it->v);
    x->i++;
    return perr(x, LB_EPARSE, "expression '%s' is not modelled", w);
}

static bool item_terminal(const item_t *it)
{
    return it->op == IT_VERDICT || it->op == IT_DNAT || it->op == IT_MASQ || it->op == IT_REJECT;
}

static int parse_rule(px_t *x, ntable_t *t, nchain_t *c)
{
    nrule_t r = {0};
    while (x->i < x->tk.n) {
        if (at(x, "comment")) {
            x->i++;
            if (x->i >= x->tk.n || !x->tk.v[x->i].quoted) {
                perr(x, LB_EPARSE, "comment needs a quoted string");
                break;
            }
            r.comment = lb_strdup(next(x));
            if (x->i < x->tk.n) {
                perr(x, LB_EPARSE, "unexpected '%s' after the comment", peek(x));
                break;
            }
            break;
        }
        if (r.it.n && item_terminal(&r.it.v[r.it.n - 1])) {
            perr(x, LB_EPARSE, "'%s' after a terminal statement", peek(x));
            break;
        }
        item_t it;
        if (parse_item(x, t, &it)) {
            set_free(it.anon);
            break;
        }
        lb_vec_push(&r.it, it);
    }
    if (!x->rc && !r.it.n) perr(x, LB_EPARSE, "empty rule");
    if (x->rc) {
        rule_fini(&r);
        return x->rc;
    }
    lb_vec_push(&c->rules, r);
    return 0;
}

static bool set_cmd(const px_t *x)
{
    const char *a = x->tk.v[0].s, *b = x->tk.n > 1 ? x->tk.v[1].s : "";
    return (!strcmp(a, "flush") && (!strcmp(b, "set") || !strcmp(b, "map"))) ||
           ((!strcmp(a, "add") || !strcmp(a, "delete")) && !strcmp(b, "element"));
}

static int run_line(px_t *x)
{
    x->i = 0;
    const char *verb = next(x), *obj = next(x);
    if (!obj) return perr(x, LB_EPARSE, "incomplete command '%s'", verb);
    if (x->ovl && !set_cmd(x)) {
        x->need_private = true;
        return perr(x, LB_ESTATE, "not a set command");
    }
    bool add = !strcmp(verb, "add") || !strcmp(verb, "create");
    bool del = !strcmp(verb, "delete") || !strcmp(verb, "destroy");
    bool flush = !strcmp(verb, "flush");
    if (!add && !del && !flush)
        return perr(x, LB_EPARSE, "command '%s' is not modelled (add, create, delete, flush)", verb);
    ntable_t *t = NULL;
    int32_t ti = -1;
    const char *name;
    if (!strcmp(obj, "ruleset")) {
        if (!flush) return perr(x, LB_EPARSE, "only flush ruleset");
        for (size_t i = 0; i < x->rs->t.n; i++) table_free(x->rs->t.v[i]);
        x->rs->t.n = 0;
        return 0;
    }
    if (!strcmp(obj, "table")) {
        if (parse_table_ref(x, &t, &ti, !add)) return x->rc;
        if (add) {
            if (!t) {
                t = lb_calloc(1, sizeof *t);
                t->name = lb_strdup(x->tk.v[3].s);
                lb_vec_push(&x->rs->t, t);
            }
            if (eat(x, "{")) {
                while (!eat(x, "}")) {
                    if (eat(x, ";")) continue;
                    if (!eat(x, "comment") || x->i >= x->tk.n || !x->tk.v[x->i].quoted)
                        return perr(x, LB_EPARSE, "table: only a comment is modelled");
                    lb_free(t->comment);
                    t->comment = lb_strdup(next(x));
                }
            }
        } else if (del) {
            table_free(t);
            memmove(&x->rs->t.v[ti], &x->rs->t.v[ti + 1],
                    (x->rs->t.n - (size_t)ti - 1) * sizeof *x->rs->t.v);
            x->rs->t.n--;
        } else {
            for (size_t i = 0; i < t->chains.n; i++) chain_flush(t->chains.v[i]);
        }
        goto end;
    }
    if (parse_table_ref(x, &t, &ti, true)) return x->rc;
    if (!strcmp(obj, "chain")) {
        if (parse_name(x, "chain", &name)) return x->rc;
        if (add) {
            if (parse_chain_decl(x, t, name)) return x->rc;
        } else {
            long p = chain_pos(t, name);
            if (p < 0) return perr(x, LB_ENOENT, "no such chain: %s", name);
            chain_flush(t->chains.v[p]);
            if (del) {
                t->chains.v[p]->dead = true;
                lb_index_remove(&t->cix, lb_hash_str(name), (size_t)p);
            }
        }
        goto end;
    }
    if (!strcmp(obj, "set") || !strcmp(obj, "map")) {
        if (parse_name(x, obj, &name)) return x->rc;
        if (add) {
            if (parse_set_decl(x, t, obj[0] == 'm', name)) return x->rc;
        } else {
            long p = set_pos(t, name);
            if (p < 0 || t->sets.v[p]->map != (obj[0] == 'm'))
                return perr(x, LB_ENOENT, "no such %s: %s", obj, name);
            nset_t *s = set_w(x, ti, (int32_t)p);
            set_flush(s);
            if (del) {
                s->dead = true;
                lb_index_remove(&t->six, lb_hash_str(name), (size_t)p);
            }
        }
        goto end;
    }
    if (!strcmp(obj, "element")) {
        if (parse_name(x, "set", &name)) return x->rc;
        long p = set_pos(t, name);
        if (p < 0) return perr(x, LB_ENOENT, "no such set or map: %s", name);
        if (flush) return perr(x, LB_EPARSE, "flush element: use flush set");
        if (parse_elements(x, t, set_w(x, ti, (int32_t)p), del)) return x->rc;
        goto end;
    }
    if (!strcmp(obj, "rule")) {
        if (!add) return perr(x, LB_EPARSE, "only add rule is modelled");
        if (parse_name(x, "chain", &name)) return x->rc;
        long p = chain_pos(t, name);
        if (p < 0) return perr(x, LB_ENOENT, "no such chain: %s", name);
        return parse_rule(x, t, t->chains.v[p]);
    }
    return perr(x, LB_EPARSE, "object '%s' is not modelled", obj);
end:
    if (x->i < x->tk.n) return perr(x, LB_EPARSE, "unexpected '%s'", peek(x));
    return 0;
}

/* ---- commit checks ------------------------------------------------------------------------- */

static bool verdict_dead(const ntable_t *t, const nverdict_t *v)
{
    return (v->code == NV_JUMP || v->code == NV_GOTO) && t->chains.v[v->chain]->dead;
}

/* hook names as nft prints them */
static const char *const hook_lc[NF_HOOK_COUNT] = {"prerouting", "input", "forward", "output",
                                                    "postrouting"};

/* The hooks a statement may run at, as the kernel's validate functions allow them
 * (nft_nat_validate, nft_masq_validate, nft_reject_validate: nft_chain_validate_hooks), and
 * whether it needs a nat-type base chain (nft_chain_validate_dependency NFT_CHAIN_T_NAT).
 * Measured with nft -f on 6.18: dnat at postrouting, masquerade at prerouting or input,
 * reject at postrouting are "Operation not supported". */
#define HOOK_BIT(h) (1u << (h))
#define HOOKS_ALL ((1u << NF_HOOK_COUNT) - 1)
static uint8_t item_hooks(const item_t *it, bool *nat)
{
    switch (it->op) {
    case IT_DNAT:
        *nat = true;
        return HOOK_BIT(NF_PREROUTING) | HOOK_BIT(NF_OUTPUT);
    case IT_MASQ:
        *nat = true;
        return HOOK_BIT(NF_POSTROUTING);
    case IT_REJECT:
        return HOOK_BIT(NF_PREROUTING) | HOOK_BIT(NF_INPUT) | HOOK_BIT(NF_FORWARD) |
               HOOK_BIT(NF_OUTPUT);
    default:
        return HOOKS_ALL;
    }
}

static const char *item_stmt(const item_t *it)
{
    return it->op == IT_DNAT ? "dnat" : it->op == IT_MASQ ? "masquerade" : "reject";
}

/* What chain c's jump or goto target needs, added to c's own (after verdict_depth). */
static void verdict_needs(const ntable_t *t, nchain_t *c, const nverdict_t *v)
{
    if (v->code != NV_JUMP && v->code != NV_GOTO) return;
    const nchain_t *tc = t->chains.v[v->chain];
    c->hooks_ &= tc->hooks_;
    c->nat_ |= tc->nat_;
}

/* Depth of jumps below chain c (goto adds none); -1: a loop, -2: a dead target. Also
 * leaves in c->hooks_ / c->nat_ what the statements reachable from c need. */
static int chain_depth(const ntable_t *t, const struct nft_state *st, int32_t ti, nchain_t *c,
                       const char **bad);

static int verdict_depth(const ntable_t *t, const struct nft_state *st, int32_t ti,
                         const nverdict_t *v, const char **bad)
{
    if (v->code != NV_JUMP && v->code != NV_GOTO) return 0;
    if (verdict_dead(t, v)) {
        *bad = t->chains.v[v->chain]->name;
        return -2;
    }
    int d = chain_depth(t, st, ti, t->chains.v[v->chain], bad);
    if (d < 0) return d;
    return d + (v->code == NV_JUMP);
}

static int chain_depth(const ntable_t *t, const struct nft_state *st, int32_t ti, nchain_t *c,
                       const char **bad)
{
    if (c->mark_ == -1) {
        *bad = c->name;
        return -1;
    }
    if (c->mark_ > 0) return c->mark_ - 1;
    c->mark_ = -1;
    c->hooks_ = HOOKS_ALL;
    c->nat_ = false;
    int best = 0;
    for (size_t i = 0; i < c->rules.n; i++) {
        const nrule_t *r = &c->rules.v[i];
        for (size_t k = 0; k < r->it.n; k++) {
            const item_t *it = &r->it.v[k];
            int d = 0;
            c->hooks_ &= item_hooks(it, &c->nat_);
            if (it->op == IT_VERDICT) {
                d = verdict_depth(t, st, ti, &it->v, bad);
                if (d >= 0) verdict_needs(t, c, &it->v);
            } else if (it->op == IT_VMAP || it->op == IT_NUMGEN_VMAP) {
                const nset_t *s = it->anon ? it->anon : set_view(st, t, ti, it->ref);
                for (size_t e = 0; e < s->el.n && d >= 0; e++) {
                    int de = verdict_depth(t, st, ti, &s->el.v[e].v, bad);
                    if (de >= 0) verdict_needs(t, c, &s->el.v[e].v);
                    d = de < 0 ? de : de > d ? de : d;
                }
            } else if (it->op == IT_ADDR_SET && it->ref >= 0 && t->sets.v[it->ref]->dead) {
                *bad = t->sets.v[it->ref]->name;
                d = -2;
            }
            if (d < 0) {
                c->mark_ = 0;
                return d;
            }
            if (d > best) best = d;
        }
    }
    c->mark_ = best + 1;
    return best;
}

/* The first statement reachable from chain c that base chain b's hook or type does not
 * allow: its chain in *where, the statement returned (NULL: none). seen: one flag per
 * chain of t. Only on the error path, after chain_depth found there is one. */
static const item_t *find_misplaced(const ntable_t *t, const struct nft_state *st, int32_t ti,
                                    const nchain_t *b, const nchain_t *c, bool *seen,
                                    const nchain_t **where)
{
    for (size_t i = 0; i < c->rules.n; i++)
        for (size_t k = 0; k < c->rules.v[i].it.n; k++) {
            const item_t *it = &c->rules.v[i].it.v[k];
            bool nat = false;
            uint8_t h = item_hooks(it, &nat);
            if (!(h & HOOK_BIT(b->hook)) || (nat && b->type != CT_NAT)) {
                *where = c;
                return it;
            }
            const nverdict_t *vs = NULL;
            size_t nv = 0, stride = 0;
            if (it->op == IT_VERDICT) {
                vs = &it->v;
                nv = 1;
            } else if (it->op == IT_VMAP || it->op == IT_NUMGEN_VMAP) {
                const nset_t *s = it->anon ? it->anon : set_view(st, t, ti, it->ref);
                vs = s->el.n ? &s->el.v[0].v : NULL;
                nv = s->el.n;
                stride = sizeof s->el.v[0];
            }
            for (size_t e = 0; e < nv; e++) {
                const nverdict_t *v = (const nverdict_t *)((const char *)vs + e * stride);
                if (v->code != NV_JUMP && v->code != NV_GOTO) continue;
                if (seen[v->chain]) continue;
                seen[v->chain] = true;
                const item_t *bad = find_misplaced(t, st, ti, b, t->chains.v[v->chain], seen, where);
                if (bad) return bad;
            }
        }
    return NULL;
}

/* A statement reachable from base chain b at a hook or in a chain type the kernel refuses
 * it at: the error into x, naming the statement, its chain and how it is reached. */
static int misplaced_error(px_t *x, const ntable_t *t, const struct nft_state *st, int32_t ti,
                           const nchain_t *b)
{
    bool *seen = lb_calloc(t->chains.n ? t->chains.n : 1, sizeof *seen);
    const nchain_t *where = NULL;
    const item_t *it = find_misplaced(t, st, ti, b, b, seen, &where);
    lb_free(seen);
    assert(it);
    bool nat = false;
    uint8_t h = item_hooks(it, &nat);
    char allowed[64] = "";
    for (int k = 0; k < NF_HOOK_COUNT; k++)
        if (h & HOOK_BIT(k))
            snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s",
                     allowed[0] ? ", " : "", hook_lc[k]);
    char via[300] = "";
    if (where != b)
        snprintf(via, sizeof via, " (reached from chain %s)", b->name);
    return perr(x, LB_EINVAL, "%s in chain %s%s: type %s hook %s; it runs only in %schains "
                "at %s (the kernel answers: Operation not supported)", item_stmt(it),
                where->name, via, b->type == CT_NAT ? "nat" : "filter", hook_lc[b->hook],
                nat ? "nat " : "", allowed);
}

/* nf_tables_check_loops() / nft_chain_validate() -- loops and nesting below the base
 * chains (an unreachable chain may loop, as the kernel allows), the statements' hooks and
 * chain types (the expressions' validate functions, run from the base chains: a chain no
 * base chain reaches may hold any) -- and the references: 0 or an error into x. */
static int commit_check(px_t *x, const struct nft_state *st)
{
    for (size_t ti = 0; ti < x->rs->t.n; ti++) {
        ntable_t *t = x->rs->t.v[ti];
        for (size_t i = 0; i < t->chains.n; i++) t->chains.v[i]->mark_ = 0;
        /* a dead map still referenced by a rule, or a dead chain by a map */
        for (size_t i = 0; i < t->sets.n; i++) {
            const nset_t *s = set_view(st, t, (int32_t)ti, (int32_t)i);
            for (size_t e = 0; !s->dead && e < s->el.n; e++)
                if (verdict_dead(t, &s->el.v[e].v))
                    return perr(x, LB_EINVAL, "chain %s is deleted but map %s refers to it",
                                t->chains.v[s->el.v[e].v.chain]->name, s->name);
        }
        for (size_t i = 0; i < t->chains.n; i++) {
            nchain_t *c = t->chains.v[i];
            if (c->dead) continue;
            for (size_t r = 0; r < c->rules.n; r++)
                for (size_t k = 0; k < c->rules.v[r].it.n; k++) {
                    const item_t *it = &c->rules.v[r].it.v[k];
                    if (it->op == IT_VMAP && t->sets.v[it->ref]->dead)
                        return perr(x, LB_EINVAL, "map %s is deleted but chain %s refers to it",
                                    t->sets.v[it->ref]->name, c->name);
                }
            if (!c->base) continue;     /* nft_chain_validate(): from the base chains */
            const char *bad = NULL;
            int d = chain_depth(t, st, (int32_t)ti, c, &bad);
            if (d == -1) return perr(x, LB_EINVAL, "jump loop through chain %s", bad);
            if (d == -2) return perr(x, LB_EINVAL, "chain %s refers to %s, which is deleted",
                                     c->name, bad);
            if (d >= NFT_JUMP_STACK_SIZE)
                return perr(x, LB_EINVAL, "chain %s: jumps nested %d deep (the kernel's limit "
                            "is %d)", c->name, d, NFT_JUMP_STACK_SIZE - 1);
            if (!(c->hooks_ & HOOK_BIT(c->hook)) || (c->nat_ && c->type != CT_NAT))
                return misplaced_error(x, t, st, (int32_t)ti, c);
        }
        for (int h = 0; h < NF_HOOK_COUNT; h++) {
            t->hooks[h].n = 0;
            for (size_t i = 0; i < t->chains.n; i++) {
                const nchain_t *c = t->chains.v[i];
                if (c->dead || !c->base || c->hook != h) continue;
                size_t k = t->hooks[h].n;       /* stable insertion by priority */
                lb_vec_push(&t->hooks[h], (int32_t)i);
                while (k > 0 && t->chains.v[t->hooks[h].v[k - 1]]->prio > c->prio) {
                    t->hooks[h].v[k] = t->hooks[h].v[k - 1];
                    k--;
                }
                t->hooks[h].v[k] = (int32_t)i;
            }
        }
    }
    return 0;
}

/* Runs text's commands on x->rs; 0 or the error (x->rc). */
static int run_text(px_t *x, const char *text)
{
    const char *s = text;
    x->line = 0;
    while (*s && !x->rc) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        x->line++;
        char *ln = lb_strndup(s, n);
        char *h = ln;
        while (isspace((unsigned char)*h)) h++;
        if (*h && *h != '#') {
            if (!tokenize(h, &x->tk)) perr(x, LB_EPARSE, "unterminated string");
            else if (x->tk.n) run_line(x);
        }
        lb_free(ln);
        s = e ? e + 1 : s + n;
    }
    return x->rc;
}

/* ---- nf hooks: activation ------------------------------------------------------------------ */

/* The nat hooks need conntrack; so do `ct state` rules (latched like the module). */
static void activate(nf_t *nf)
{
    const struct nft_state *st = nf->nft;
    if (!st || !st->rs || !st->rs->t.n) return;
    nf->ct_on = true;
    nf->active = true;
}

static void install(nf_t *nf, nruleset_t *rs, bool shared)
{
    struct nft_state *st = state(nf);
    ovr_clear(st);
    rs_unref(st->rs);
    st->rs = rs;
    st->shared = shared;
    activate(nf);
}

/* Runs text as one transaction into x->rs (a ruleset of its own) and checks the result as
 * a commit would; on failure x->rs is released. The tokens are freed either way. */
static int load_whole(px_t *x, const char *text)
{
    int rc = run_text(x, text);
    if (!rc) rc = commit_check(x, NULL);
    toks_clear(&x->tk);
    lb_free(x->tk.v);
    if (rc) {
        rs_unref(x->rs);
        x->rs = NULL;
    }
    return rc;
}

int nft_apply(nf_t *nf, const char *text, char *err, size_t errlen)
{
    struct nft_state *st = state(nf);
    px_t x = {0};
    x.err = err;
    x.errlen = errlen;
    if (err && errlen) err[0] = 0;
    if (st->shared && st->rs) {         /* set commands only: the node's own set copies */
        x.rs = st->rs;
        x.ovl = st;
        bool maps = false;              /* only verdict maps can add jumps to check */
        if (run_text(&x, text) == 0)
            for (size_t k = 0; k < x.novr.n; k++) maps |= x.novr.v[k].s->map;
        if (!x.rc && (!maps || commit_check(&x, st) == 0)) {
            for (size_t k = 0; k < x.novr.n; k++) {
                bool had = false;
                for (size_t j = 0; j < st->ovr.n && !had; j++)
                    if (st->ovr.v[j].table == x.novr.v[k].table && st->ovr.v[j].set == x.novr.v[k].set) {
                        set_free(st->ovr.v[j].s);
                        st->ovr.v[j].s = x.novr.v[k].s;
                        had = true;
                    }
                if (!had) lb_vec_push(&st->ovr, x.novr.v[k]);
            }
            lb_vec_free(&x.novr);
            toks_clear(&x.tk);
            lb_free(x.tk.v);
            return 0;
        }
        for (size_t k = 0; k < x.novr.n; k++) set_free(x.novr.v[k].s);
        lb_vec_free(&x.novr);
        bool retry = x.need_private;
        int rc = x.rc;
        toks_clear(&x.tk);
        lb_free(x.tk.v);
        if (!retry) return rc;
        memset(&x, 0, sizeof x);
        x.err = err;
        x.errlen = errlen;
        if (err && errlen) err[0] = 0;
    }
    x.rs = rs_clone(st->rs, st);
    int rc = load_whole(&x, text);
    if (rc) return rc;
    install(nf, x.rs, false);
    return 0;
}

nft_cache_t *nft_cache_new(void) { return lb_calloc(1, sizeof(nft_cache_t)); }

void nft_cache_free(nft_cache_t *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->e.n; i++) rs_unref(c->e.v[i].rs);
    lb_vec_free(&c->e);
    lb_index_free(&c->ix);
    lb_free(c);
}

static long cache_find(const nft_cache_t *c, const uint64_t key[2])
{
    uint64_t h = lb_mix64(key[0] ^ lb_mix64(key[1]));
    size_t it;
    for (size_t p = lb_index_first(&c->ix, h, &it); p != LB_INDEX_NONE; p = lb_index_next(&c->ix, h, &it))
        if (c->e.v[p].key[0] == key[0] && c->e.v[p].key[1] == key[1]) return (long)p;
    return -1;
}

bool nft_cache_has(const nft_cache_t *c, const uint64_t key[2]) { return cache_find(c, key) >= 0; }

int nft_apply_shared(nf_t *nf, nft_cache_t *c, const uint64_t key[2], const char *text,
                     char *err, size_t errlen)
{
    uint64_t h = lb_mix64(key[0] ^ lb_mix64(key[1]));
    if (err && errlen) err[0] = 0;
    long p = cache_find(c, key);
    if (p >= 0) {
        c->e.v[p].rs->refs++;
        install(nf, c->e.v[p].rs, true);
        return 0;
    }
    if (!text) {
        lb_errf(err, errlen, "line 1: no ruleset cached for this key and no text");
        return LB_ENOENT;
    }
    px_t x = {0};
    x.err = err;
    x.errlen = errlen;
    x.rs = lb_calloc(1, sizeof *x.rs);
    x.rs->refs = 1;
    int rc = load_whole(&x, text);
    if (rc) return rc;
    centry_t e = { {key[0], key[1]}, x.rs };
    lb_vec_push(&c->e, e);
    lb_index_add(&c->ix, h, c->e.n - 1);
    x.rs->refs++;                       /* the cache's and the node's */
    install(nf, x.rs, true);
    return 0;
}

void nft_flush_ruleset(nf_t *nf)
{
    if (!nf->nft) return;
    install(nf, NULL, false);
}

bool nft_active(const nf_t *nf)
{
    return nf && nf->nft && nf->nft->rs && nf->nft->rs->t.n;
}

size_t nft_rule_count(const nf_t *nf)
{
    size_t n = 0;
    if (!nft_active(nf)) return 0;
    const nruleset_t *rs = nf->nft->rs;
    for (size_t i = 0; i < rs->t.n; i++)
        for (size_t k = 0; k < rs->t.v[i]->chains.n; k++)
            if (!rs->t.v[i]->chains.v[k]->dead) n += rs->t.v[i]->chains.v[k]->rules.n;
    return n;
}

long nft_set_size(const nf_t *nf, const char *table, const char *name)
{
    if (!nft_active(nf)) return -1;
    long ti = table_pos(nf->nft->rs, table);
    if (ti < 0) return -1;
    const ntable_t *t = nf->nft->rs->t.v[ti];
    long si = set_pos(t, name);
    if (si < 0) return -1;
    return (long)set_view(nf->nft, t, (int32_t)ti, (int32_t)si)->el.n;
}

/* ---- listing (nft list ruleset) ------------------------------------------------------------ */

/* nft's prio2str(): a standard priority name valid for the hook, with an offset of at
 * most 10 either way; else the number. */
static void prio_str(int hook, int prio, char *buf, size_t n)
{
    for (int i = 0; std_prios[i].n; i++) {
        int d = prio - std_prios[i].v;
        if (d < -10 || d > 10) continue;
        if (!strcmp(std_prios[i].n, "dstnat") && hook != NF_PREROUTING) continue;
        if (!strcmp(std_prios[i].n, "srcnat") && hook != NF_POSTROUTING) continue;
        if (d == 0) snprintf(buf, n, "%s", std_prios[i].n);
        else snprintf(buf, n, "%s %c %d", std_prios[i].n, d < 0 ? '-' : '+', d < 0 ? -d : d);
        return;
    }
    snprintf(buf, n, "%d", prio);
}

static void put_verdict(FILE *out, const ntable_t *t, const nverdict_t *v)
{
    switch (v->code) {
    case NV_ACCEPT: fputs("accept", out); break;
    case NV_DROP: fputs("drop", out); break;
    case NV_RETURN: fputs("return", out); break;
    case NV_CONTINUE: fputs("continue", out); break;
    case NV_JUMP: fprintf(out, "jump %s", t->chains.v[v->chain]->name); break;
    case NV_GOTO: fprintf(out, "goto %s", t->chains.v[v->chain]->name); break;
    default: break;
    }
}

static void put_key(FILE *out, const nset_t *s, const nelem_t *e)
{
    char a[16], p[8];
    switch (s->key) {
    case NK_ADDR:
        if (e->plen == 32) fputs(lb_ip_str((uint32_t)e->key, a), out);
        else fprintf(out, "%s/%u", lb_ip_str((uint32_t)e->key, a), e->plen);
        break;
    case NK_ADDR_PROTO_PORT:
        fprintf(out, "%s . %s . %u", lb_ip_str((uint32_t)(e->key >> 24), a),
                proto_str((uint8_t)(e->key >> 16), p), (unsigned)(e->key & 0xffff));
        break;
    case NK_PROTO_PORT:
        fprintf(out, "%s . %u", proto_str((uint8_t)(e->key >> 16), p), (unsigned)(e->key & 0xffff));
        break;
    default:
        fprintf(out, "%llu", (unsigned long long)e->key);
    }
}

static int elem_cmp(const void *a, const void *b)
{
    const nelem_t *x = *(const nelem_t *const *)a, *y = *(const nelem_t *const *)b;
    if (x->key != y->key) return x->key < y->key ? -1 : 1;
    return (int)x->plen - (int)y->plen;
}

/* Elements sorted by key (the kernel lists them in its hash order); anonymous sets on one
 * line, named ones wrapped as nft's calculate_delim() does: addresses two a line,
 * integers five, concatenations one. */
static void put_elements(FILE *out, const ntable_t *t, const nset_t *s, bool inline_)
{
    const nelem_t **v = lb_malloc((s->el.n + 1) * sizeof *v);
    size_t per = s->key == NK_ADDR ? 2 : s->key == NK_INT ? 5 : 1;
    for (size_t i = 0; i < s->el.n; i++) v[i] = &s->el.v[i];
    qsort(v, s->el.n, sizeof *v, elem_cmp);
    for (size_t i = 0; i < s->el.n; i++) {
        if (i) fputs(inline_ || i % per ? ", " : ",\n\t\t\t     ", out);
        put_key(out, s, v[i]);
        if (v[i]->comment) fprintf(out, " comment \"%s\"", v[i]->comment);
        if (s->map) {
            fputs(" : ", out);
            put_verdict(out, t, &v[i]->v);
        }
    }
    lb_free(v);
}

static void put_item(FILE *out, const ntable_t *t, const struct nft_state *st, int32_t ti,
                     const item_t *it)
{
    char a[16], p[8];
    const char *neg = it->neg ? "!= " : "";
    switch (it->op) {
    case IT_CT_STATE: {
        static const struct { uint32_t b; const char *n; } names[] = {
            {NF_CTS_INVALID, "invalid"}, {NF_CTS_ESTABLISHED, "established"},
            {NF_CTS_RELATED, "related"}, {NF_CTS_NEW, "new"}, {NF_CTS_UNTRACKED, "untracked"},
            {0, NULL}};
        fprintf(out, "ct state %s", neg);
        bool first = true;
        for (int i = 0; names[i].n; i++)
            if (it->a & names[i].b) {
                fprintf(out, "%s%s", first ? "" : ",", names[i].n);
                first = false;
            }
        break;
    }
    case IT_ADDR:
        fprintf(out, "ip %s %s%s", it->f ? "daddr" : "saddr", neg, lb_ip_str(it->a, a));
        if (it->b < 32) fprintf(out, "/%u", it->b);
        break;
    case IT_ADDR_SET:
        fprintf(out, "ip %s %s", it->f ? "daddr" : "saddr", neg);
        if (it->ref >= 0) {
            fprintf(out, "@%s", t->sets.v[it->ref]->name);
        } else if (it->anon->el.n == 1) {   /* nft prints a one-element set as its value */
            put_key(out, it->anon, &it->anon->el.v[0]);
        } else {
            fputs("{ ", out);
            put_elements(out, t, it->anon, true);
            fputs(" }", out);
        }
        break;
    case IT_L4PROTO:
        fprintf(out, "meta l4proto %s%s", neg, proto_str((uint8_t)it->a, p));
        break;
    case IT_DPORT:
        fprintf(out, "%s dport %s%u", proto_str(it->f, p), neg, it->a);
        break;
    case IT_FIB_LOCAL:
        fprintf(out, "fib %s type %slocal", it->f ? "daddr" : "saddr", neg);
        break;
    case IT_MARK_CMP:
        if (it->a == 0xffffffffu) fprintf(out, "meta mark %s0x%08x", neg, it->b);
        else fprintf(out, "meta mark & 0x%08x %s 0x%08x", it->a, it->neg ? "!=" : "==", it->b);
        break;
    case IT_MARK_SET:
        fprintf(out, "meta mark set meta mark %c 0x%08x", it->f ? '^' : '|', it->a);
        break;
    case IT_VMAP:
        fprintf(out, "%s vmap @%s", it->f == NK_ADDR_PROTO_PORT ? "ip daddr . meta l4proto . th dport"
                : "meta l4proto . th dport", t->sets.v[it->ref]->name);
        break;
    case IT_NUMGEN_VMAP:
        fprintf(out, "numgen random mod %u vmap { ", it->a);
        put_elements(out, t, it->anon, true);
        fputs(" }", out);
        break;
    case IT_COUNTER:
        fputs("counter", out);
        break;
    case IT_VERDICT:
        put_verdict(out, t, &it->v);
        break;
    case IT_DNAT:
        fprintf(out, "dnat to %s", lb_ip_str(it->a, a));
        if (it->f) fprintf(out, ":%u", it->b);
        break;
    case IT_MASQ:
        fputs("masquerade", out);
        if (it->a & NF_NAT_RANDOM) fputs(" random", out);
        if (it->a & NF_NAT_RANDOM_FULLY) fputs(" fully-random", out);
        if (it->a & NF_NAT_PERSISTENT) fputs(" persistent", out);
        break;
    case IT_REJECT:
        if (it->a == NF_REJECT_TCP_RESET) fputs("reject with tcp reset", out);
        else if (it->a == ICMP_PORT_UNREACH) fputs("reject", out);
        else {
            const char *n = it->a == ICMP_HOST_UNREACH ? "host-unreachable"
                            : it->a == ICMP_NET_UNREACH ? "net-unreachable"
                            : it->a == ICMP_ADMIN_PROHIBITED ? "admin-prohibited"
                            : it->a == 2 ? "prot-unreachable" : it->a == 9 ? "net-prohibited"
                            : "host-prohibited";
            fprintf(out, "reject with icmp %s", n);
        }
        break;
    }
    (void)st;
    (void)ti;
}

void nft_list(const nf_t *nf, FILE *out)
{
    if (!nft_active(nf)) return;
    const struct nft_state *st = nf->nft;
    const nruleset_t *rs = st->rs;
    for (size_t ti = 0; ti < rs->t.n; ti++) {
        const ntable_t *t = rs->t.v[ti];
        bool first = true;
        fprintf(out, "table ip %s {\n", t->name);
        if (t->comment) fprintf(out, "\tcomment \"%s\"\n", t->comment);
        for (size_t i = 0; i < t->sets.n; i++) {
            const nset_t *s = set_view(st, t, (int32_t)ti, (int32_t)i);
            if (s->dead) continue;
            fprintf(out, "%s\t%s %s {\n\t\ttype %s%s\n", first ? "" : "\n", s->map ? "map" : "set",
                    s->name, s->key == NK_ADDR ? "ipv4_addr" : s->key == NK_PROTO_PORT
                    ? "inet_proto . inet_service" : "ipv4_addr . inet_proto . inet_service",
                    s->map ? " : verdict" : "");
            if (s->flags) fprintf(out, "\t\tflags %s\n", s->flags);
            if (s->comment) fprintf(out, "\t\tcomment \"%s\"\n", s->comment);
            if (s->el.n) {
                fputs("\t\telements = { ", out);
                put_elements(out, t, s, false);
                fputs(" }\n", out);
            }
            fputs("\t}\n", out);
            first = false;
        }
        for (size_t i = 0; i < t->chains.n; i++) {
            const nchain_t *c = t->chains.v[i];
            if (c->dead) continue;
            fprintf(out, "%s\tchain %s {\n", first ? "" : "\n", c->name);
            first = false;
            if (c->comment) fprintf(out, "\t\tcomment \"%s\"\n", c->comment);
            if (c->base) {
                char pb[40];
                prio_str(c->hook, c->prio, pb, sizeof pb);
                fprintf(out, "\t\ttype %s hook %s priority %s; policy %s;\n",
                        c->type == CT_NAT ? "nat" : "filter", hook_lc[c->hook], pb,
                        c->policy == NV_DROP ? "drop" : "accept");
            }
            for (size_t r = 0; r < c->rules.n; r++) {
                const nrule_t *ru = &c->rules.v[r];
                fputs("\t\t", out);
                for (size_t k = 0; k < ru->it.n; k++) {
                    if (k) fputc(' ', out);
                    put_item(out, t, st, (int32_t)ti, &ru->it.v[k]);
                }
                if (ru->comment) fprintf(out, " comment \"%s\"", ru->comment);
                fputc('\n', out);
            }
            fputs("\t}\n", out);
        }
        fputs("}\n", out);
    }
}

/* ---- evaluation (nft_do_chain) ------------------------------------------------------------- */

enum { R_ACCEPT, R_DROP, R_REJECT, R_NAT };

typedef struct res {
    int kind;                       /* R_* */
    const ntable_t *t;
    const nchain_t *chain;          /* where the verdict was reached */
    size_t rule;                    /* 0-based; SIZE_MAX: the policy */
    const item_t *it;               /* the terminal statement (reject, NAT) */
} res_t;

static uint32_t numgen_random(nf_t *nf, uint32_t mod)
{
    /* nft_ng_random_gen(): reciprocal_scale(get_random_u32(), modulus) */
    uint32_t r = (uint32_t)gsl_rng_get(nf->rng);
    return (uint32_t)(((uint64_t)r * mod) >> 32);
}

static bool addr_in(const item_t *it, uint32_t a)
{
    return (a & plen_mask((int)it->b)) == it->a;
}

/* One rule: NULL verdict pointer when an expression did not match (the kernel's
 * NFT_BREAK); else the rule's verdict in *v (NV_NONE: it ran to the end), or a terminal
 * statement in *term. */
static bool rule_eval(nf_t *nf, const struct nft_state *st, const ntable_t *t, int32_t ti,
                      const nrule_t *r, pkt_t *p, nverdict_t *v, const item_t **term)
{
    v->code = NV_NONE;
    *term = NULL;
    for (size_t k = 0; k < r->it.n; k++) {
        const item_t *it = &r->it.v[k];
        bool m = true;
        switch (it->op) {
        case IT_CT_STATE:
            m = (ct_state_bits(p) & it->a) != 0;
            break;
        case IT_ADDR:
            m = addr_in(it, it->f ? p->dst : p->src);
            break;
        case IT_ADDR_SET: {
            const nset_t *s = it->anon ? it->anon : set_view(st, t, ti, it->ref);
            m = set_lookup(s, it->f ? p->dst : p->src) != NULL;
            break;
        }
        case IT_L4PROTO:
            m = p->proto == it->a;
            break;
        case IT_DPORT:
            m = p->proto == it->f && p->dport == it->a;
            break;
        case IT_FIB_LOCAL:
            m = net_node_is_local(nf->node, it->f ? p->dst : p->src);
            break;
        case IT_MARK_CMP:
            m = (p->mark & it->a) == it->b;
            break;
        case IT_VMAP:
        case IT_NUMGEN_VMAP: {
            uint64_t key;
            if (it->op == IT_NUMGEN_VMAP) key = numgen_random(nf, it->a);
            else if (it->f == NK_ADDR_PROTO_PORT)
                key = (uint64_t)p->dst << 24 | (uint64_t)p->proto << 16 | p->dport;
            else key = (uint64_t)p->proto << 16 | p->dport;
            const nset_t *s = it->anon ? it->anon : set_view(st, t, ti, it->ref);
            const nelem_t *e = set_lookup(s, key);
            if (!e) return false;
            if (e->v.code == NV_CONTINUE) continue;
            *v = e->v;
            return true;
        }
        case IT_MARK_SET:
            p->mark = it->f ? p->mark ^ it->a : p->mark | it->a;
            continue;
        case IT_COUNTER:
            continue;
        case IT_VERDICT:
            if (it->v.code == NV_CONTINUE) continue;
            *v = it->v;
            return true;
        default:                        /* reject, dnat, masquerade */
            *term = it;
            return true;
        }
        if (m == it->neg) return false;
    }
    return true;
}

/* Rule r as nft lists it, into buf. */
static void rule_str(const nrule_t *r, const ntable_t *t, const struct nft_state *st, int32_t ti,
                     char *buf, size_t n)
{
    buf[0] = 0;
    FILE *f = fmemopen(buf, n, "w");
    if (!f) return;
    for (size_t k = 0; k < r->it.n; k++) {
        if (k) fputc(' ', f);
        put_item(f, t, st, ti, &r->it.v[k]);
    }
    if (r->comment) fprintf(f, " comment \"%s\"", r->comment);
    fclose(f);
    buf[n - 1] = 0;
}

/* One NFT_TRACETYPE_RULE line as the kernel writes it (nft_trace_packet): every rule that ran
 * to its end, with its verdict -- "continue" for one without (a mark set, a counter), reject
 * as drop; a NAT statement's verdict is the caller's nat_verdict ("accept", or "drop" when
 * the binding could not be made). */
static void trace_rule(nf_t *nf, const struct nft_state *st, const ntable_t *t, int32_t ti,
                       const nchain_t *c, size_t i, const pkt_t *p, const item_t *term,
                       const nverdict_t *v, const char *nat_verdict)
{
    char text[768], verdict[NFT_NAME_MAX + 16];
    rule_str(&c->rules.v[i], t, st, ti, text, sizeof text);
    if (term) {
        snprintf(verdict, sizeof verdict, "%s", term->op == IT_REJECT ? "drop" : nat_verdict);
    } else if (v->code == NV_NONE) {
        snprintf(verdict, sizeof verdict, "continue");
    } else {
        FILE *vf = fmemopen(verdict, sizeof verdict, "w");
        if (vf) {
            put_verdict(vf, t, v);
            fclose(vf);
        }
        verdict[sizeof verdict - 1] = 0;
    }
    net_tracef(nf->net, nf->node->name, p, "nft %s/%s rule %zu matched: %s (verdict %s)",
               t->name, c->name, i + 1, text, verdict);
}

/* Walks base chain b: the result in *res (accept: continue to the next hook function). */
static void chain_run(nf_t *nf, const struct nft_state *st, const ntable_t *t, int32_t ti,
                      const nchain_t *b, pkt_t *p, res_t *res)
{
    struct { const nchain_t *c; size_t i; } stack[NFT_JUMP_STACK_SIZE];
    const nchain_t *c = b;
    size_t i = 0;
    int sp = 0;
    bool tracing = net_tracing(nf->net, p->flow);
    res->t = t;
    for (;;) {
        if (i >= c->rules.n) {
            if (sp == 0) break;
            sp--;
            c = stack[sp].c;
            i = stack[sp].i;
            continue;
        }
        const nrule_t *r = &c->rules.v[i];
        nverdict_t v;
        const item_t *term;
        nf->walk_rules++;
        if (!rule_eval(nf, st, t, ti, r, p, &v, &term)) {
            i++;
            continue;
        }
        /* a NAT statement's verdict is the binding's (nft_nat_eval, nft_masq_eval: accept,
         * or drop when it cannot be made): nft_nat_ traces it once it has tried */
        if (tracing && !(term && term->op != IT_REJECT))
            trace_rule(nf, st, t, ti, c, i, p, term, &v, NULL);
        res->chain = c;
        res->rule = i;
        if (term) {
            res->it = term;
            res->kind = term->op == IT_REJECT ? R_REJECT : R_NAT;
            return;
        }
        switch (v.code) {
        case NV_NONE:
            i++;
            continue;
        case NV_ACCEPT:
            res->kind = R_ACCEPT;
            return;
        case NV_DROP:
            res->kind = R_DROP;
            return;
        case NV_RETURN:
            if (sp == 0) goto policy;
            sp--;
            c = stack[sp].c;
            i = stack[sp].i;
            continue;
        case NV_JUMP:
            assert(sp < NFT_JUMP_STACK_SIZE);   /* commit_check bounds the nesting */
            stack[sp].c = c;
            stack[sp].i = i + 1;
            sp++;
            /* fall through */
        case NV_GOTO:
            c = t->chains.v[v.chain];
            i = 0;
            continue;
        }
    }
policy:
    res->chain = b;
    res->rule = SIZE_MAX;
    res->it = NULL;
    res->kind = b->policy == NV_DROP ? R_DROP : R_ACCEPT;
}

static void where_str(const res_t *r, const nchain_t *base, enum nf_hook h, char *buf, size_t n)
{
    if (r->rule == SIZE_MAX)
        snprintf(buf, n, "nft %s/%s (%s) policy", r->t->name, base->name, hook_lc[h]);
    else if (r->chain == base)
        snprintf(buf, n, "nft %s/%s rule %zu", r->t->name, base->name, r->rule + 1);
    else
        snprintf(buf, n, "nft %s/%s -> %s rule %zu", r->t->name, base->name, r->chain->name,
                 r->rule + 1);
}

/* The verdict's rule as nft lists it, into buf ("" for a policy). */
static void rule_text(const res_t *r, const struct nft_state *st, char *buf, size_t n)
{
    buf[0] = 0;
    if (r->rule == SIZE_MAX) return;
    rule_str(&r->chain->rules.v[r->rule], r->t, st, (int32_t)table_pos(st->rs, r->t->name),
             buf, n);
}

/* A verdict's drop detail: where it was decided and the rule's text. Built only when a
 * packet is dropped or rejected: formatting a rule costs more than evaluating it. */
#define VERDICT_DETAIL_MAX 1600
static void verdict_detail(const res_t *r, const struct nft_state *st, const nchain_t *b,
                           enum nf_hook h, char *detail, size_t n)
{
    char where[NFT_NAME_MAX * 2 + 64], text[768];
    where_str(r, b, h, where, sizeof where);
    rule_text(r, st, text, sizeof text);
    snprintf(detail, n, "%s%s%s", where, text[0] ? ": " : " DROP", text);
}

int nft_filter_(nf_t *nf, enum nf_hook h, int lo, int hi, pkt_t *p, net_iface_t *in,
                net_iface_t *out)
{
    const struct nft_state *st = nf->nft;
    (void)in;
    (void)out;
    if (!st || !st->rs) return NF_ACCEPT;
    for (size_t ti = 0; ti < st->rs->t.n; ti++) {
        const ntable_t *t = st->rs->t.v[ti];
        for (size_t k = 0; k < t->hooks[h].n; k++) {
            const nchain_t *b = t->chains.v[t->hooks[h].v[k]];
            if (b->type != CT_FILTER || b->prio < lo || b->prio >= hi) continue;
            res_t r = {0};
            chain_run(nf, st, t, (int32_t)ti, b, p, &r);
            if (r.kind == R_ACCEPT) continue;
            if (r.kind == R_NAT) continue;      /* NAT statements act in nat chains only */
            char detail[VERDICT_DETAIL_MAX];
            verdict_detail(&r, st, b, h, detail, sizeof detail);
            if (r.kind == R_REJECT) return nf_reject_(nf, p, (uint16_t)r.it->a, detail);
            return nf_drop_(nf, p, "nf-drop", detail);
        }
    }
    return NF_ACCEPT;
}

int nft_nat_(nf_t *nf, enum nf_hook h, pkt_t *p, net_iface_t *in, net_iface_t *out, bool *bound)
{
    const struct nft_state *st = nf->nft;
    (void)in;
    *bound = false;
    if (!st || !st->rs) return NF_ACCEPT;
    for (size_t ti = 0; ti < st->rs->t.n; ti++) {
        const ntable_t *t = st->rs->t.v[ti];
        for (size_t k = 0; k < t->hooks[h].n; k++) {
            const nchain_t *b = t->chains.v[t->hooks[h].v[k]];
            if (b->type != CT_NAT) continue;
            res_t r = {0};
            chain_run(nf, st, t, (int32_t)ti, b, p, &r);
            if (r.kind == R_ACCEPT) continue;
            char detail[VERDICT_DETAIL_MAX];
            if (r.kind == R_REJECT || r.kind == R_DROP) {
                verdict_detail(&r, st, b, h, detail, sizeof detail);
                if (r.kind == R_REJECT) return nf_reject_(nf, p, (uint16_t)r.it->a, detail);
                return nf_drop_(nf, p, "nf-drop", detail);
            }
            /* nft_nat_eval / nft_masq_eval: the binding through conntrack, as the iptables
             * DNAT and MASQUERADE targets make it */
            nf_rule_t tr;
            memset(&tr, 0, sizeof tr);
            bool dst = nf_hook_manip(h) == NF_MANIP_DST;
            if (r.it->op == IT_DNAT) {
                if (!dst) continue;             /* never: commit_check refuses dnat there */
                tr.target = NFT_DNAT;
                tr.nat_addr = r.it->a;
                if (r.it->f) {
                    tr.nat_flags = NF_NAT_HAS_PORT;
                    tr.nat_port[0] = tr.nat_port[1] = (uint16_t)r.it->b;
                }
            } else {
                if (dst) continue;              /* never: masquerade runs at postrouting only */
                tr.target = NFT_MASQ;
                tr.nat_flags = (uint8_t)r.it->a;
            }
            int bind = ct_nat_setup(nf, p, &tr, h, out);
            if (net_tracing(nf->net, p->flow))
                trace_rule(nf, st, t, (int32_t)ti, r.chain, r.rule, p, r.it, NULL,
                           bind < 0 ? "drop" : "accept");
            if (bind < 0) {
                verdict_detail(&r, st, b, h, detail, sizeof detail);
                snprintf(detail + strlen(detail), sizeof detail - strlen(detail),
                         ": MASQUERADE: %s has no address", out ? out->name : "(no interface)");
                return nf_drop_(nf, p, "nf-drop", detail);
            }
            *bound = true;
            return NF_ACCEPT;
        }
    }
    return NF_ACCEPT;
}
