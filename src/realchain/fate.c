/* fate.c -- `sim --flow-fate FILE`: what one node's netfilter does to a flow's SYN, in the
 * simulator and, when the line names an observation of the real kernel, there too, with
 * the two compared (include/realchain.h). This is the kube-proxy packet-fate differential:
 * the node namespaces of the real chain hold exactly the rules `--dump-iptables` prints
 * (in nftables mode, the ruleset `--dump-nft` prints), so a rule is named by its table,
 * chain and position ("nat/KUBE-SERVICES#7", "kube-proxy/services#2") on both sides, and
 * its packet counter or a trace line says whether the flow took it.
 *
 * One flow, simulated: build the variant, run its t = 0 set-up, inject a TCP SYN arriving
 * on NODE/IFACE with its flow traced, and read what the node did with it: the rules it
 * matched (netfilter.c's trace lines), the conntrack entry it created (DNAT: the reply's
 * source differs from the original destination; SNAT: the reply's destination differs
 * from the original source). A DROP or REJECT among the rules is the drop point.
 * One flow, observed: a file with the node's `iptables-save`, the kernel's trace of the
 * SYN (`xtables-monitor --trace` lines of a raw-table TRACE rule) -- or, without trace
 * lines, `iptables-save -c` with the counters zeroed just before the SYN -- and
 * `conntrack -L` after it: the same reading of the same things. An nftables node: its
 * tables as `nft -a list table` prints them and `nft -a monitor trace` lines of the SYN
 * (every rule that ran to its end, by handle, with its verdict; nftables.c traces the
 * same), then `conntrack -L`.
 * Where the path meets `statistic --mode random` (kube-proxy's endpoint choice) the kernel
 * chose at random: the simulator is run again with the next seeds until it makes the same
 * choice (FATE_MAX_SEEDS at most; never: the choice is outside what the rules allow), and
 * everything else must then agree exactly. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "realchain.h"
#include "netfilter.h"
#include "nftables.h"
#include "realchain_int.h"

/* Seeds tried to make the simulator take the kernel's random endpoint choice: with n
 * equally likely endpoints the chance of missing it is (1 - 1/n)^64, < 1e-6 for n <= 4. */
#define FATE_MAX_SEEDS 64
/* The injected SYN: any initial sequence number (nothing checks it on a SYN); the window
 * and MSS a Linux client sends on a 1500-byte MTU (44 * 1460 = 64240). */
#define FATE_ISN 1000
#define FATE_SYN_WINDOW 64240
#define FATE_SYN_MSS 1460

typedef struct flowspec {
    char node[128], iface[32];
    uint32_t src, dst;
    uint16_t sport, dport;
    char *real;                     /* observation file, NULL: none */
    int line;
} flowspec_t;
typedef LB_VEC(flowspec_t) flows_t;

/* Rule and chain names: nftables chain names (kube-proxy's endpoint chains) run long. */
#define FATE_NAME_MAX 256
#define FATE_ID_MAX (2 * FATE_NAME_MAX)

/* One rule with its packet count, identified as "table/CHAIN#N": an iptables rule by its
 * position in the chain in iptables-save order, an nftables rule by its position in the
 * chain as `nft list ruleset` lists it (the kernel's trace names a rule by its handle,
 * which `nft -a list ruleset` ties to the position). */
typedef struct rule {
    char id[FATE_ID_MAX];
    char *text;                     /* iptables: everything after "-A CHAIN "; nftables: the
                                     * rule as listed, without "# handle N" */
    char chain[FATE_NAME_MAX];
    uint64_t pkts;
    uint64_t handle;                /* nftables, listed with -a; else 0 */
    bool nft;
} rule_t;
typedef LB_VEC(rule_t) rules_t;

typedef struct fate {
    const char *verdict;            /* forward, local, drop, reject, lost */
    char out[32];
    bool has_dnat, has_snat;
    uint32_t dnat_ip, snat_ip;
    uint16_t dnat_port, snat_port;
    char drop[FATE_ID_MAX];         /* "" when none */
    LB_VEC(char *) taken;           /* rule ids, in save order */
    LB_VEC(char *) random;          /* chains where a statistic rule was met */
    LB_VEC(char *) choices;         /* every DNAT target reachable from those chains */
} fate_t;

static void fate_free(fate_t *f)
{
    for (size_t i = 0; i < f->taken.n; i++) lb_free(f->taken.v[i]);
    for (size_t i = 0; i < f->random.n; i++) lb_free(f->random.v[i]);
    for (size_t i = 0; i < f->choices.n; i++) lb_free(f->choices.v[i]);
    lb_vec_free(&f->taken);
    lb_vec_free(&f->random);
    lb_vec_free(&f->choices);
}

static void rules_free(rules_t *r)
{
    for (size_t i = 0; i < r->n; i++) lb_free(r->v[i].text);
    lb_vec_free(r);
}

/* ---- reading iptables-save -c (ours and the kernel's) ------------------------------------ */

static void parse_save(const char *text, rules_t *out)
{
    char table[32] = "";
    LB_VEC(rule_t) idx = {0};               /* per chain: last index, in .pkts */
    const char *p = text;
    while (p && *p) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *line = lb_strndup(p, len);
        p = e ? e + 1 : NULL;
        if (line[0] == '*') {
            snprintf(table, sizeof table, "%s", line + 1);
        } else {
            uint64_t pk = 0;
            const char *s = line;
            if (s[0] == '[') {
                pk = strtoull(s + 1, NULL, 10);
                s = strchr(s, ']');
                s = s ? s + 1 : line;
                while (*s == ' ') s++;
            }
            if (strncmp(s, "-A ", 3) == 0) {
                s += 3;
                size_t cl = strcspn(s, " ");
                rule_t r = {0};
                snprintf(r.chain, sizeof r.chain, "%.*s", (int)cl, s);
                int n = 1;
                for (size_t i = 0; i < idx.n; i++)
                    if (!strcmp(idx.v[i].chain, r.chain) && !strcmp(idx.v[i].id, table)) {
                        n = (int)++idx.v[i].pkts;
                        break;
                    }
                if (n == 1) {
                    rule_t c = {0};
                    snprintf(c.chain, sizeof c.chain, "%s", r.chain);
                    snprintf(c.id, sizeof c.id, "%s", table);
                    c.pkts = 1;
                    lb_vec_push(&idx, c);
                }
                snprintf(r.id, sizeof r.id, "%s/%s#%d", table, r.chain, n);
                r.text = lb_strdup(s[cl] ? s + cl + 1 : "");
                r.pkts = pk;
                lb_vec_push(out, r);
            }
        }
        lb_free(line);
    }
    lb_vec_free(&idx);
}

/* ---- reading `nft [-a] list ruleset` (ours and the kernel's) ------------------------------ */

/* The rules of an nftables listing into out, each "TABLE/CHAIN#N" by its position in its
 * chain, with its handle when the listing has them (`nft -a`). Sets and maps are skipped;
 * so is whatever is not a table (iptables-save lines, trace lines, conntrack's). */
static void parse_nft_list(const char *text, rules_t *out)
{
    char table[FATE_NAME_MAX] = "", chain[FATE_NAME_MAX] = "";
    enum { OUTSIDE, TABLE, CHAIN, SET } in = OUTSIDE;
    int n = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        char *line = lb_strndup(p, strcspn(p, "\n"));
        char *s = line, name[FATE_NAME_MAX];
        while (*s == '\t' || *s == ' ') s++;
        bool close = !strcmp(s, "}");
        switch (in) {
        case OUTSIDE:
            if (sscanf(s, "table %*s %255s {", name) == 1) {
                snprintf(table, sizeof table, "%s", name);
                in = TABLE;
            }
            break;
        case TABLE:
            if (sscanf(s, "chain %255s {", name) == 1) {
                snprintf(chain, sizeof chain, "%s", name);
                n = 0;
                in = CHAIN;
            } else if (!strncmp(s, "set ", 4) || !strncmp(s, "map ", 4)) {
                in = SET;
            } else if (close) {
                in = OUTSIDE;
            }
            break;
        case SET:
            if (close) in = TABLE;
            break;
        case CHAIN:
            if (close) {
                in = TABLE;
            } else if (*s && strncmp(s, "type ", 5) && strncmp(s, "comment ", 8) &&
                       strncmp(s, "policy ", 7)) {
                rule_t r = {.nft = true};
                char *h = NULL;
                for (char *q = strstr(s, " # handle "); q; q = strstr(q + 1, " # handle ")) h = q;
                if (h) {
                    r.handle = strtoull(h + 10, NULL, 10);
                    *h = '\0';
                }
                snprintf(r.chain, sizeof r.chain, "%s", chain);
                snprintf(r.id, sizeof r.id, "%s/%s#%d", table, chain, ++n);
                r.text = lb_strdup(s);
                lb_vec_push(out, r);
            }
            break;
        }
        lb_free(line);
    }
}

/* ---- what a rule does ----------------------------------------------------------------------- */

static bool has_word(const char *text, const char *w)
{
    size_t n = strlen(w);
    for (const char *s = strstr(text, w); s; s = strstr(s + 1, w))
        if ((s == text || s[-1] == ' ') && (!s[n] || s[n] == ' ')) return true;
    return false;
}

/* The rule's jump target ("-j X"), into out. */
static const char *target_of(const char *text, char *out, size_t n)
{
    out[0] = '\0';
    const char *j = strstr(text, "-j ");
    while (j && j != text && j[-1] != ' ') j = strstr(j + 1, "-j ");
    if (j) snprintf(out, n, "%.*s", (int)strcspn(j + 3, " "), j + 3);
    return out;
}

/* Whether an nftables rule has a reject statement (not a word of its comment). */
static bool nft_rejects(const char *text)
{
    const char *c = strstr(text, " comment \"");
    char *stmts = lb_strndup(text, c ? (size_t)(c - text) : strlen(text));
    bool r = has_word(stmts, "reject");
    lb_free(stmts);
    return r;
}

/* Records rule `id` (with `text`) as taken: a DROP or REJECT is the drop point. An
 * nftables rule comes with the verdict it reached (`nft_verdict`, as the kernel traces
 * it: a reject statement's verdict is drop); an iptables rule's is its target. */
static void fate_take(fate_t *f, const char *id, const char *text, const char *nft_verdict)
{
    for (size_t k = 0; k < f->taken.n; k++)
        if (!strcmp(f->taken.v[k], id)) return;
    lb_vec_push(&f->taken, lb_strdup(id));
    bool drop, reject;
    if (nft_verdict) {
        drop = !strncmp(nft_verdict, "drop", 4) && (!nft_verdict[4] || nft_verdict[4] == ' ');
        reject = drop && nft_rejects(text);
    } else {
        char t[64];
        target_of(text, t, sizeof t);
        drop = !strcmp(t, "DROP");
        reject = !strcmp(t, "REJECT");
    }
    if (!f->drop[0] && (drop || reject)) {
        snprintf(f->drop, sizeof f->drop, "%s", id);
        f->verdict = reject ? "reject" : "drop";
    }
}

/* Whether id ("table/CHAIN#N") names a rule of r's chain. */
static bool same_chain(const char *id, const rule_t *r)
{
    const char *a = strrchr(id, '#'), *b = strrchr(r->id, '#');
    return a && b && a - id == b - r->id && !strncmp(id, r->id, (size_t)(a - id));
}

/* Pushes onto f->choices the DNAT target of every rule of chain `chain` (iptables
 * "--to-destination A", nftables "dnat [ip] to A"). */
static void chain_dnats(fate_t *f, const rules_t *rules, const char *chain, size_t cl)
{
    for (size_t j = 0; j < rules->n; j++) {
        const rule_t *r = &rules->v[j];
        if (strlen(r->chain) != cl || strncmp(r->chain, chain, cl)) continue;
        const char *d = strstr(r->text, "--to-destination ");
        size_t skip = 17;
        if (r->nft) {
            d = strstr(r->text, "dnat to ");
            skip = 8;
            if (!d) {
                d = strstr(r->text, "dnat ip to ");
                skip = 11;
            }
        }
        if (d) lb_vec_push(&f->choices, lb_strndup(d + skip, strcspn(d + skip, " ")));
    }
}

/* Every DNAT target the random chains can reach (an iptables rule's jump to KUBE-SEP-...;
 * each "goto endpoint-..." of an nftables `numgen random` verdict map), from the node's
 * rules. */
static void fate_choices(fate_t *f, const rules_t *rules)
{
    /* a chain the flow entered (one of its rules was taken) that holds a random rule */
    for (size_t t = 0; t < f->taken.n; t++)
        for (size_t i = 0; i < rules->n; i++) {
            const rule_t *r = &rules->v[i];
            if (!same_chain(f->taken.v[t], r)) continue;
            if (!has_word(r->text, r->nft ? "numgen" : "statistic")) continue;
            bool seen = false;
            for (size_t k = 0; k < f->random.n; k++) seen |= !strcmp(f->random.v[k], r->chain);
            if (!seen) lb_vec_push(&f->random, lb_strdup(r->chain));
        }
    for (size_t k = 0; k < f->random.n; k++)
        for (size_t i = 0; i < rules->n; i++) {
            const rule_t *r = &rules->v[i];
            if (strcmp(r->chain, f->random.v[k])) continue;
            if (!r->nft) {
                char sep[FATE_NAME_MAX];
                target_of(r->text, sep, sizeof sep);
                chain_dnats(f, rules, sep, strlen(sep));
                continue;
            }
            static const char *const verbs[] = {"goto ", "jump "};
            for (int v = 0; v < 2; v++)
                for (const char *g = strstr(r->text, verbs[v]); g; g = strstr(g + 5, verbs[v]))
                    chain_dnats(f, rules, g + 5, strcspn(g + 5, " ,}"));
        }
}

/* The rules with a packet count > 0, in save order (the kernel's counters were zeroed
 * just before the flow's SYN). */
static void fate_from_counters(fate_t *f, const rules_t *rules)
{
    for (size_t i = 0; i < rules->n; i++)
        if (rules->v[i].pkts > 0) fate_take(f, rules->v[i].id, rules->v[i].text, NULL);
    fate_choices(f, rules);
}

/* The last occurrence of w in s, or NULL. */
static const char *last_of(const char *s, const char *w)
{
    const char *l = NULL;
    for (const char *q = strstr(s, w); q; q = strstr(q + 1, w)) l = q;
    return l;
}

/* The rules a traced flow matched: netfilter.c's trace lines "<table>/<HOOK> rule N
 * matched: TEXT" (a built-in chain) or "<table>/<HOOK> -> CHAIN rule N matched: TEXT", and
 * nftables.c's "nft TABLE/CHAIN rule N matched: TEXT (verdict V)". */
static void fate_from_trace(fate_t *f, const char *trace, const rules_t *rules)
{
    for (const char *l = trace; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        char *line = lb_strndup(l, strcspn(l, "\n"));
        const char *m = strstr(line, " matched: ");
        const char *nft = strstr(line, " nft ");
        char id[FATE_ID_MAX];
        if (m && nft && nft < m) {
            /* nft TABLE/CHAIN rule N matched: TEXT (verdict V) */
            const char *tb = nft + 5, *sl = strchr(tb, '/');
            const char *ru = sl ? last_of(sl, " rule ") : NULL;
            const char *vd = last_of(m, " (verdict ");
            if (sl && ru && ru < m && vd) {
                snprintf(id, sizeof id, "%.*s/%.*s#%d", (int)(sl - tb), tb, (int)(ru - sl - 1),
                         sl + 1, atoi(ru + 6));
                char *text = lb_strndup(m + 10, (size_t)(vd - (m + 10)));
                char *verdict = lb_strndup(vd + 10, strcspn(vd + 10, ")"));
                fate_take(f, id, text, verdict);
                lb_free(text);
                lb_free(verdict);
            }
        } else if (m) {
            /* back to the start of "<table>/" */
            const char *w = m;
            while (w > line && !(w[-1] == ' ' && strchr(w, '/') && strchr(w, '/') < m)) w--;
            char where[FATE_ID_MAX];
            snprintf(where, sizeof where, "%.*s", (int)(m - w), w);
            char table[32], hook[32], chain[FATE_NAME_MAX];
            int n = 0;
            if (sscanf(where, "%31[^/]/%31s -> %255s rule %d", table, hook, chain, &n) != 4 &&
                sscanf(where, "%31[^/]/%31s rule %d", table, hook, &n) == 3)
                snprintf(chain, sizeof chain, "%s", hook);
            if (n > 0) {
                snprintf(id, sizeof id, "%s/%s#%d", table, chain, n);
                fate_take(f, id, m + 10, NULL);
            }
        }
        lb_free(line);
    }
    fate_choices(f, rules);
}

/* The rules the kernel traced for the flow's packets (`xtables-monitor --trace` lines of
 * iptables-nft: " TRACE: 2 ID TABLE:CHAIN:rule:HANDLE:VERDICT  -4 -t TABLE -A CHAIN TEXT"),
 * each found by its text among the node's rules (the raw table's TRACE rules are not the
 * node's: skipped). */
static void fate_from_nftrace(fate_t *f, const char *text, const rules_t *rules)
{
    for (const char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *e = strchr(line, '\n');
        size_t len = e ? (size_t)(e - line) : strlen(line);
        const char *t = strstr(line, "TRACE: ");
        if (!t || t > line + len) continue;
        const char *a = strstr(line, " -A ");
        const char *tb = strstr(line, " -t ");
        if (!a || a > line + len || !tb || tb > a) continue;
        char table[32];
        if (sscanf(tb + 4, "%31s", table) != 1 || !strcmp(table, "raw")) continue;
        size_t cl = strcspn(a + 4, " \n");
        const char *rt = a + 4 + cl;
        if (*rt == ' ') rt++;
        size_t tl = (size_t)(line + len - rt);
        while (tl && (rt[tl - 1] == ' ' || rt[tl - 1] == '\r')) tl--;
        for (size_t i = 0; i < rules->n; i++) {
            const rule_t *r = &rules->v[i];
            if (r->nft || strlen(r->chain) != cl || strncmp(r->chain, a + 4, cl)) continue;
            if (strncmp(r->id, table, strlen(table)) || r->id[strlen(table)] != '/') continue;
            if (strlen(r->text) != tl || strncmp(r->text, rt, tl)) continue;
            fate_take(f, r->id, r->text, NULL);
            break;
        }
    }
    fate_choices(f, rules);
}

/* The rules the kernel traced for the flow's packets in nftables (`nft -a monitor trace`
 * of a `meta nftrace set 1` rule in a table of the test's own): "trace id ID ip TABLE
 * CHAIN rule TEXT # handle H (verdict V)", each found by table, chain and handle among
 * the node's rules listed with `nft -a` (the test's trace table is not listed: its lines
 * are skipped, as are the "packet:", "policy" and chain-end "verdict" lines). */
static void fate_from_nft_monitor(fate_t *f, const char *text, const rules_t *rules)
{
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, "trace id ", 9)) continue;
        char *line = lb_strndup(l, strcspn(l, "\n"));
        char table[FATE_NAME_MAX], chain[FATE_NAME_MAX], kind[16];
        const char *h = last_of(line, " # handle "), *vd = last_of(line, " (verdict ");
        if (sscanf(line, "trace id %*s %*s %255s %255s %15s", table, chain, kind) == 3 &&
            !strcmp(kind, "rule") && h && vd) {
            uint64_t handle = strtoull(h + 10, NULL, 10);
            size_t tl = strlen(table);
            for (size_t i = 0; i < rules->n; i++) {
                const rule_t *r = &rules->v[i];
                if (!r->nft || r->handle != handle || strcmp(r->chain, chain)) continue;
                if (strncmp(r->id, table, tl) || r->id[tl] != '/') continue;
                char *verdict = lb_strndup(vd + 10, strcspn(vd + 10, ")"));
                fate_take(f, r->id, r->text, verdict);
                lb_free(verdict);
                break;
            }
        }
        lb_free(line);
    }
    fate_choices(f, rules);
}

/* ---- the simulated side ------------------------------------------------------------------- */

/* The node's rules as iptables-save -c and `nft list ruleset` print them (caller frees). */
static char *save_text(net_node_t *n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) abort();
    nf_save(nf_get(n), m, true);
    nft_list(nf_get(n), m);
    fclose(m);
    return buf;
}

static void ct_fate(fate_t *f, const ct_entry_t *e)
{
    nf_tuple_t o = nf_ct_tuple(e, 0), r = nf_ct_tuple(e, 1);
    if (r.src != o.dst || r.sport != o.dport) {
        f->has_dnat = true;
        f->dnat_ip = r.src;
        f->dnat_port = r.sport;
    }
    if (r.dst != o.src || r.dport != o.sport) {
        f->has_snat = true;
        f->snat_ip = r.dst;
        f->snat_port = r.dport;
    }
}

/* Where a flow that was neither dropped nor rejected went: delivered locally, forwarded
 * out of an interface (the route to its destination after DNAT), or lost. */
static void fate_where(fate_t *f, const net_node_t *node, bool tracked, uint32_t dst)
{
    if (f->drop[0]) return;
    if (!tracked) {
        f->verdict = "lost";
        return;
    }
    uint32_t to = f->has_dnat ? f->dnat_ip : dst;
    if (net_node_is_local(node, to)) {
        f->verdict = "local";
        return;
    }
    const net_route_t *rt = net_route_lookup(node, to);
    f->verdict = rt ? "forward" : "lost";
    if (rt && rt->ifc) snprintf(f->out, sizeof f->out, "%s", rt->ifc->name);
}

/* Simulates flow fs with `seed` into f. 0, or LB_EINVAL with diag (bad node/iface). */
static int sim_fate(scn_t *s, size_t v, uint64_t seed, const flowspec_t *fs, fate_t *f,
                    scn_diag_t *d)
{
    scn_run_t *r;
    if (scn_run_new(s, v, seed, &r, d)) return LB_EINVAL;
    sim_t *sim = scn_run_sim(r);
    sim_run(sim, 0);
    net_node_t *node = scn_run_node(r, fs->node);
    net_iface_t *in = NULL;
    for (size_t i = 0; node && i < node->ifaces.n; i++)
        if (!strcmp(node->ifaces.v[i]->name, fs->iface)) in = node->ifaces.v[i];
    if (!in) {
        scn_run_free(r);
        return LB_ENOENT;
    }
    net_t *net = scn_run_net(r);
    char *trace = NULL;
    size_t tlen = 0;
    FILE *tf = open_memstream(&trace, &tlen);
    if (!tf) abort();
    pkt_t *p = pkt_new(net);
    p->flow = net_flow_new(net);
    scn_run_set_trace(r, p->flow, tf);              /* this flow's packets only */
    p->src = fs->src;
    p->dst = fs->dst;
    p->sport = fs->sport;
    p->dport = fs->dport;
    p->proto = NET_PROTO_TCP;
    p->tcp_flags = TCP_SYN;
    p->seq = FATE_ISN;
    p->win = FATE_SYN_WINDOW;
    p->mss = FATE_SYN_MSS;
    net_node_rx(node, in, p);
    const ct_entry_t *e = nf_ct_lookup(nf_get(node), NET_PROTO_TCP, fs->src, fs->sport, fs->dst,
                                       fs->dport);
    if (e) ct_fate(f, e);
    bool tracked = e != NULL;
    scn_run_set_trace(r, 0, NULL);          /* the SYN's own path: nothing else ran */
    fclose(tf);
    /* only the lines of the node the flow was injected at */
    char *mine = lb_calloc(1, tlen + 1), *q = mine;
    char tag[160];
    snprintf(tag, sizeof tag, "s  %s  ", fs->node);
    for (const char *l = trace; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        size_t ll = strchr(l, '\n') ? (size_t)(strchr(l, '\n') - l) + 1 : strlen(l);
        const char *t = strstr(l, tag);
        if (t && t < l + ll) {
            memcpy(q, l, ll);
            q += ll;
        }
    }
    char *rules_text = save_text(node);
    rules_t rules = {0};
    parse_save(rules_text, &rules);
    parse_nft_list(rules_text, &rules);
    fate_from_trace(f, mine, &rules);
    fate_where(f, node, tracked, fs->dst);
    rules_free(&rules);
    free(rules_text);
    free(trace);
    lb_free(mine);
    scn_run_free(r);
    return 0;
}

/* ---- the observed side -------------------------------------------------------------------- */

/* "key=value" after position *s in a conntrack -L line; advances *s past it. */
static bool ct_field(const char **s, const char *key, char *out, size_t n)
{
    char k[16];
    snprintf(k, sizeof k, "%s=", key);
    const char *p = strstr(*s, k);
    while (p && p != *s && p[-1] != ' ') p = strstr(p + 1, k);
    if (!p) return false;
    p += strlen(k);
    size_t len = strcspn(p, " \n");
    snprintf(out, n, "%.*s", (int)len, p);
    *s = p + len;
    return true;
}

/* Reads an observation file into f. 0, or LB_EIO with a message. */
static int real_fate(const flowspec_t *fs, const net_node_t *node, fate_t *f, char *err,
                     size_t n)
{
    FILE *in = fopen(fs->real, "r");
    if (!in) {
        lb_errf(err, n, "%s: %s", fs->real, strerror(errno));
        return LB_EIO;
    }
    char *text = NULL;
    size_t cap = 0, len = 0;
    char buf[4096];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, in)) > 0) {
        if (len + k + 1 > cap) {
            cap = (len + k + 1) * 2;
            text = lb_realloc(text, cap);
        }
        memcpy(text + len, buf, k);
        len += k;
    }
    fclose(in);
    if (!text) text = lb_strdup("");
    else text[len] = '\0';
    rules_t rs = {0};
    parse_save(text, &rs);
    parse_nft_list(text, &rs);
    if (!strncmp(text, "trace id ", 9) || strstr(text, "\ntrace id ")) fate_from_nft_monitor(f, text, &rs);
    else if (strstr(text, "TRACE: ")) fate_from_nftrace(f, text, &rs);
    else fate_from_counters(f, &rs);
    rules_free(&rs);
    /* conntrack -L: "tcp 6 117 SYN_SENT src=A dst=B sport=P dport=Q ... src=C dst=D ..." */
    bool tracked = false;
    for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "tcp ", 4) != 0) continue;
        const char *s = line;
        char a[4][64], b[4][64];
        static const char *const keys[] = {"src", "dst", "sport", "dport"};
        bool ok = true;
        for (int i = 0; i < 4 && ok; i++) ok = ct_field(&s, keys[i], a[i], sizeof a[i]);
        for (int i = 0; i < 4 && ok; i++) ok = ct_field(&s, keys[i], b[i], sizeof b[i]);
        uint32_t osrc, odst, rsrc, rdst;
        if (!ok || lb_ip_parse(a[0], &osrc) || lb_ip_parse(a[1], &odst) ||
            lb_ip_parse(b[0], &rsrc) || lb_ip_parse(b[1], &rdst))
            continue;
        if (osrc != fs->src || odst != fs->dst || atoi(a[2]) != fs->sport ||
            atoi(a[3]) != fs->dport)
            continue;
        tracked = true;
        uint16_t rsport = (uint16_t)atoi(b[2]), rdport = (uint16_t)atoi(b[3]);
        if (rsrc != odst || rsport != fs->dport) {
            f->has_dnat = true;
            f->dnat_ip = rsrc;
            f->dnat_port = rsport;
        }
        if (rdst != osrc || rdport != fs->sport) {
            f->has_snat = true;
            f->snat_ip = rdst;
            f->snat_port = rdport;
        }
        break;
    }
    fate_where(f, node, tracked, fs->dst);
    free(text);
    return 0;
}

/* ---- comparing and printing --------------------------------------------------------------- */

static void addr_port(char *out, size_t n, uint32_t ip, uint16_t port)
{
    char b[16];
    snprintf(out, n, "%s:%u", lb_ip_str(ip, b), port);
}

static cJSON *fate_json(const fate_t *f)
{
    cJSON *o = cJSON_CreateObject();
    char b[32];
    cJSON_AddStringToObject(o, "verdict", f->verdict);
    if (f->out[0]) cJSON_AddStringToObject(o, "out", f->out);
    else cJSON_AddNullToObject(o, "out");
    if (f->has_dnat) {
        addr_port(b, sizeof b, f->dnat_ip, f->dnat_port);
        cJSON_AddStringToObject(o, "dnat", b);
    } else {
        cJSON_AddNullToObject(o, "dnat");
    }
    if (f->has_snat) {
        addr_port(b, sizeof b, f->snat_ip, f->snat_port);
        cJSON_AddStringToObject(o, "snat", b);
    } else {
        cJSON_AddNullToObject(o, "snat");
    }
    if (f->drop[0]) cJSON_AddStringToObject(o, "drop", f->drop);
    else cJSON_AddNullToObject(o, "drop");
    cJSON *t = cJSON_AddArrayToObject(o, "rules");
    for (size_t i = 0; i < f->taken.n; i++) cJSON_AddItemToArray(t, cJSON_CreateString(f->taken.v[i]));
    cJSON *rnd = cJSON_AddArrayToObject(o, "random");
    for (size_t i = 0; i < f->random.n; i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "chain", f->random.v[i]);
        cJSON_AddItemToArray(rnd, c);
    }
    cJSON *ch = cJSON_AddArrayToObject(o, "choices");
    for (size_t i = 0; i < f->choices.n; i++) cJSON_AddItemToArray(ch, cJSON_CreateString(f->choices.v[i]));
    return o;
}

/* Differences between the simulated and the observed fate, as sentences into diffs. */
static void compare(const fate_t *sim, const fate_t *real, cJSON *diffs)
{
    char a[64], b[64];
    if (strcmp(sim->verdict, real->verdict)) {
        snprintf(a, sizeof a, "verdict: simulator %s, kernel %s", sim->verdict, real->verdict);
        cJSON_AddItemToArray(diffs, cJSON_CreateString(a));
    }
    if (strcmp(sim->drop, real->drop)) {
        char m[2 * FATE_ID_MAX + 64];
        snprintf(m, sizeof m, "drop point: simulator %s, kernel %s", sim->drop[0] ? sim->drop : "none",
                 real->drop[0] ? real->drop : "none");
        cJSON_AddItemToArray(diffs, cJSON_CreateString(m));
    }
    if (sim->has_dnat != real->has_dnat ||
        (sim->has_dnat && (sim->dnat_ip != real->dnat_ip || sim->dnat_port != real->dnat_port))) {
        if (sim->has_dnat) addr_port(a, sizeof a, sim->dnat_ip, sim->dnat_port);
        if (real->has_dnat) addr_port(b, sizeof b, real->dnat_ip, real->dnat_port);
        char m[200];
        snprintf(m, sizeof m, "DNAT: simulator %s, kernel %s", sim->has_dnat ? a : "none",
                 real->has_dnat ? b : "none");
        cJSON_AddItemToArray(diffs, cJSON_CreateString(m));
    }
    /* SNAT: the address; MASQUERADE --random-fully draws the port */
    if (sim->has_snat != real->has_snat || (sim->has_snat && sim->snat_ip != real->snat_ip)) {
        lb_ip_str(sim->snat_ip, a);
        lb_ip_str(real->snat_ip, b);
        char m[200];
        snprintf(m, sizeof m, "SNAT: simulator %s, kernel %s", sim->has_snat ? a : "none",
                 real->has_snat ? b : "none");
        cJSON_AddItemToArray(diffs, cJSON_CreateString(m));
    }
    for (int side = 0; side < 2; side++) {
        const fate_t *x = side ? real : sim, *y = side ? sim : real;
        for (size_t i = 0; i < x->taken.n; i++) {
            bool found = false;
            for (size_t k = 0; k < y->taken.n && !found; k++) found = !strcmp(x->taken.v[i], y->taken.v[k]);
            if (found) continue;
            char m[FATE_ID_MAX + 64];
            snprintf(m, sizeof m, "rule %s taken only by the %s", x->taken.v[i],
                     side ? "kernel" : "simulator");
            cJSON_AddItemToArray(diffs, cJSON_CreateString(m));
        }
    }
}

/* ---- the input ---------------------------------------------------------------------------- */

static bool parse_ep(const char *w, uint32_t *ip, uint16_t *port)
{
    const char *c = strrchr(w, ':');
    if (!c || c == w || (size_t)(c - w) >= 16) return false;
    char a[16];
    memcpy(a, w, (size_t)(c - w));
    a[c - w] = '\0';
    char *end;
    long p = strtol(c + 1, &end, 10);
    if (*end || p < 1 || p > 65535 || lb_ip_parse(a, ip)) return false;
    *port = (uint16_t)p;
    return true;
}

static int fail(scn_diag_t *d, const char *file, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(scn_diag_t *d, const char *file, int line, int col, const char *fmt, ...)
{
    memset(d, 0, sizeof *d);
    snprintf(d->file, sizeof d->file, "%s", file);
    d->line = line;
    d->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    va_end(ap);
    return LB_EINVAL;
}

/* Reads every flow line, checking syntax and that node and interface exist in variant v. */
static int read_flows(scn_t *s, size_t v, uint64_t seed, FILE *in, const char *inname,
                      flows_t *flows, scn_diag_t *d)
{
    scn_run_t *r;
    if (scn_run_new(s, v, seed, &r, d)) return LB_EINVAL;
    char *line = NULL;
    size_t cap = 0;
    int ln = 0, rc = 0;
    while (rc == 0 && getline(&line, &cap, in) > 0) {
        ln++;
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *w[6];
        int col[6], nw = 0;
        for (char *p = line; *p && nw < 6;) {
            while (*p && isspace((unsigned char)*p)) p++;
            if (!*p) break;
            col[nw] = (int)(p - line) + 1;
            w[nw++] = p;
            while (*p && !isspace((unsigned char)*p)) p++;
            if (*p) *p++ = '\0';
        }
        if (nw == 0) continue;
        if (nw < 4 || nw > 5) {
            rc = fail(d, inname, ln, 1, "expected NODE IFACE SRC:SPORT DST:DPORT [OBSERVED-FILE]");
            break;
        }
        flowspec_t f = {.line = ln};
        net_node_t *node = scn_run_node(r, w[0]);
        if (!node || strlen(w[0]) >= sizeof f.node) {
            rc = fail(d, inname, ln, col[0], "no node '%s' in variant '%s'", w[0],
                      scn_variant_name(s, v));
            break;
        }
        bool ifc = false;
        for (size_t i = 0; i < node->ifaces.n; i++) ifc |= !strcmp(node->ifaces.v[i]->name, w[1]);
        if (!ifc || strlen(w[1]) >= sizeof f.iface) {
            rc = fail(d, inname, ln, col[1], "node %s has no interface '%s'", w[0], w[1]);
            break;
        }
        if (!parse_ep(w[2], &f.src, &f.sport)) {
            rc = fail(d, inname, ln, col[2], "bad source '%s'; expected IPv4:PORT", w[2]);
            break;
        }
        if (!parse_ep(w[3], &f.dst, &f.dport)) {
            rc = fail(d, inname, ln, col[3], "bad destination '%s'; expected IPv4:PORT", w[3]);
            break;
        }
        snprintf(f.node, sizeof f.node, "%s", w[0]);
        snprintf(f.iface, sizeof f.iface, "%s", w[1]);
        f.real = nw == 5 ? lb_strdup(w[4]) : NULL;
        lb_vec_push(flows, f);
    }
    free(line);
    scn_run_free(r);
    return rc;
}

static bool dnat_is(const fate_t *f, const fate_t *want)
{
    return f->has_dnat == want->has_dnat &&
           (!f->has_dnat || (f->dnat_ip == want->dnat_ip && f->dnat_port == want->dnat_port));
}

int realchain_flow_fate(scn_t *s, size_t v, uint64_t seed, FILE *in, const char *inname,
                        FILE *out, scn_diag_t *d)
{
    flows_t flows = {0};
    int rc = read_flows(s, v, seed, in, inname, &flows, d);
    for (size_t i = 0; i < flows.n && rc == 0; i++) {
        const flowspec_t *fs = &flows.v[i];
        fate_t sim = {0}, real = {0};
        char err[300] = "";
        int seeds = 1;
        rc = sim_fate(s, v, seed, fs, &sim, d);
        if (rc == 0 && fs->real) {
            /* the node as built, for addresses and routes of the observed side */
            scn_run_t *r;
            if (scn_run_new(s, v, seed, &r, d)) {
                rc = LB_EINVAL;
            } else {
                sim_run(scn_run_sim(r), 0);
                if (real_fate(fs, scn_run_node(r, fs->node), &real, err, sizeof err))
                    rc = fail(d, inname, fs->line, 1, "%s", err);
                scn_run_free(r);
            }
            /* the kernel's random endpoint choice: find a seed where the model makes it */
            while (rc == 0 && sim.random.n && !dnat_is(&sim, &real) && seeds < FATE_MAX_SEEDS) {
                fate_t next = {0};
                rc = sim_fate(s, v, seed + (uint64_t)seeds, fs, &next, d);
                seeds++;
                if (rc == 0 && dnat_is(&next, &real)) {
                    fate_free(&sim);
                    sim = next;
                } else {
                    fate_free(&next);
                }
            }
        }
        if (rc == 0) {
            cJSON *o = cJSON_CreateObject();
            char a[32], b[32];
            addr_port(a, sizeof a, fs->src, fs->sport);
            addr_port(b, sizeof b, fs->dst, fs->dport);
            cJSON_AddStringToObject(o, "node", fs->node);
            cJSON_AddStringToObject(o, "in", fs->iface);
            cJSON_AddStringToObject(o, "src", a);
            cJSON_AddStringToObject(o, "dst", b);
            cJSON_AddItemToObject(o, "sim", fate_json(&sim));
            if (fs->real) {
                cJSON_AddItemToObject(o, "real", fate_json(&real));
                cJSON_AddNumberToObject(o, "seeds", seeds);
                cJSON *diffs = cJSON_AddArrayToObject(o, "differences");
                compare(&sim, &real, diffs);
                cJSON_AddBoolToObject(o, "agree", cJSON_GetArraySize(diffs) == 0);
            }
            char *text = cJSON_PrintUnformatted(o);
            fprintf(out, "%s\n", text);
            fflush(out);
            free(text);
            cJSON_Delete(o);
        }
        fate_free(&sim);
        fate_free(&real);
    }
    for (size_t i = 0; i < flows.n; i++) lb_free(flows.v[i].real);
    lb_vec_free(&flows);
    return rc;
}
