/* validate.c -- turns one resolved scenario tree (a variant's overrides already applied)
 * into a validated model: top-level keys, element sections checked against the registry,
 * group expansion and name uniqueness, links resolved to node pairs with an address plan,
 * and the expectations that apply to the variant. Stops at the first error. */
#include <assert.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include "scenario_int.h"

/* Upper bounds on one group's size (`count`) and on all node elements' nodes together;
 * far above any realistic chain, well below what would exhaust memory. */
#define SCN_MAX_GROUP 65536
#define SCN_MAX_NODES (4 * SCN_MAX_GROUP)
/* A scenario without `seed`. */
#define SCN_SEED_DEFAULT 1

/* all-links: a run-wide impairment (net_set_all_links) that reaches every link, including
 * those the models create (cluster veths, vnet NICs), for fault injection. */
static const elem_param_t all_links_params[] = {
    { "loss", P_RATIO, "0", "loss on every link and vnet in addition to its own (a packet must "
      "survive both), like 1%", NULL, NULL },
    { "queue", P_SIZE, "0", "caps every link's and vnet NIC's transmit queue, like 1500B (0: "
      "no cap); a queue fills only where bandwidth is finite", NULL, NULL },
    { "bandwidth", P_BANDWIDTH, "0", "caps every link's and vnet NIC's rate, like 100Mbps (0: "
      "no cap)", NULL, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL }
};

static const elem_param_t scenario_params[] = {
    { "name", P_STR, NULL, "the scenario's name, like core-nat (a-z, 0-9, '-')", NULL, NULL },
    { "description", P_STR, "", "free text shown in reports", NULL, NULL },
    { "seed", P_ANY, "", "the random seed, an integer from 0 to 2^64-1 (default 1)", NULL, NULL },
    { "duration", P_DURATION, NULL, "the simulated time to run, like 60s", NULL, NULL },
    { "nodes", P_ANY, "", "a mapping of node names to node elements", NULL, NULL },
    { "links", P_ANY, "", "a list of links between nodes", NULL, NULL },
    { "cloud", P_ANY, "", "a mapping of names to cloud elements", NULL, NULL },
    { "apps", P_ANY, "", "a mapping of names to application elements", NULL, NULL },
    { "traffic", P_ANY, "", "a mapping of names to traffic elements", NULL, NULL },
    { "variants", P_ANY, "", "a mapping of variant names to {description, set}", NULL, NULL },
    { "expect", P_ANY, "", "a mapping of variant names (or \"*\") to lists of expectations",
      NULL, NULL },
    { "kubernetes", P_ANY, "", "a list of Kubernetes manifests, inline or { file: PATH }",
      NULL, NULL },
    { "kubernetes-remove", P_ANY, "", "objects to leave out, as KIND/NAMESPACE/NAME", NULL, NULL },
    { "kubernetes-add", P_ANY, "", "more manifests, inline or { file: PATH }", NULL, NULL },
    { "kubernetes-set", P_ANY, "", "a mapping of KIND/NAMESPACE/NAME.field paths to values",
      NULL, NULL },
    { "all-links", P_OBJ, "", "loss, queue and bandwidth for every link and vnet of the run, "
      "cluster veths included", all_links_params, NULL },
    { NULL, 0, NULL, NULL, NULL, NULL }
};

typedef LB_VEC(char *) strvec_t;

static const char *const section_key[ELEM_KIND_COUNT] = { "nodes", "apps", "traffic", "cloud" };
static const char *const section_what[ELEM_KIND_COUNT] = { "node", "app", "traffic", "cloud" };

/* ---- helpers ---------------------------------------------------------------------------------- */

static bool scenario_name_ok(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '-')) return false;
    return true;
}

/* Element, variant and group names: a letter, then letters, digits, '-' or '_'. */
static bool elem_name_ok(const char *s)
{
    if (!isalpha((unsigned char)*s)) return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_')) return false;
    return true;
}

static int bad_name(scn_diag_t *d, elem_pos_t pos, const char *what, const char *name)
{
    return diag_set(d, pos, LB_EINVAL, "bad %s name '%s'; expected letters, digits, '-' and '_', "
                    "starting with a letter", what, name);
}

const scn_elem_t *model_elem(const scn_model_t *m, elem_section_t sec, const char *name)
{
    uint64_t h = lb_hash_str(name);
    for (size_t it, i = lb_index_first(&m->elem_index[sec], h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&m->elem_index[sec], h, &it))
        if (strcmp(m->elems[sec].v[i].name, name) == 0) return &m->elems[sec].v[i];
    return NULL;
}

static char *member_name(const scn_elem_t *e, int k)
{
    return k < 0 ? lb_strdup(e->name) : lb_sprintf("%s%d", e->name, k);
}

/* The name of node_names entry nn into buf. */
static const char *nodename_str(const scn_model_t *m, scn_nodename_t nn, char *buf, size_t n)
{
    const scn_elem_t *e = &m->elems[ELEM_NODE].v[nn.elem];
    if (nn.member < 0) snprintf(buf, n, "%s", e->name);
    else snprintf(buf, n, "%s%d", e->name, (int)nn.member);
    return buf;
}

/* The node_names entry called name, or NULL. */
static const scn_nodename_t *nodename_find(const scn_model_t *m, const char *name)
{
    uint64_t h = lb_hash_str(name);
    char buf[300];
    for (size_t it, i = lb_index_first(&m->node_index, h, &it); i != LB_INDEX_NONE;
         i = lb_index_next(&m->node_index, h, &it))
        if (strcmp(nodename_str(m, m->node_names.v[i], buf, sizeof buf), name) == 0)
            return &m->node_names.v[i];
    return NULL;
}

static void nodename_add(scn_model_t *m, const char *name, uint32_t elem, int32_t member)
{
    scn_nodename_t nn = { elem, member };
    lb_vec_push(&m->node_names, nn);
    lb_index_add(&m->node_index, lb_hash_str(name), m->node_names.n - 1);
}

/* A node name (single node or group member) -> the element that defines it. */
static const scn_elem_t *node_owner(const scn_model_t *m, const char *name, int *member)
{
    const scn_nodename_t *nn = nodename_find(m, name);
    if (!nn) return NULL;
    *member = nn->member;
    return &m->elems[ELEM_NODE].v[nn->elem];
}

/* ---- element sections --------------------------------------------------------------------------- */

static int type_error(scn_diag_t *d, const scn_node_t *tnode, elem_section_t sec, const char *ename)
{
    LB_VEC(const char *) names = { 0 };
    for (size_t i = 0; i < elem_type_count(); i++)
        if (elem_type_at(i)->section == sec) lb_vec_push(&names, elem_type_at(i)->name);
    char list[400] = "";
    names_join(list, sizeof list, names.v, names.n, 40);
    int rc;
    const elem_type_t *other = elem_type_find(tnode->str);
    const char *close = closest_name(tnode->str, names.v, names.n);
    if (other)
        rc = diag_set(d, tnode->pos, LB_EINVAL, "type '%s' belongs in section '%s', not '%s'; "
                      "%s types are: %s", tnode->str, section_key[other->section], section_key[sec],
                      section_what[sec], list[0] ? list : "(none registered)");
    else if (close)
        rc = diag_set(d, tnode->pos, LB_EINVAL, "unknown %s type '%s' for '%s'; did you mean '%s'?",
                      section_what[sec], tnode->str, ename, close);
    else
        rc = diag_set(d, tnode->pos, LB_EINVAL, "unknown %s type '%s' for '%s'; %s types are: %s",
                      section_what[sec], tnode->str, ename, section_what[sec],
                      list[0] ? list : "(none registered)");
    lb_vec_free(&names);
    return rc;
}

/* Is `name` taken in the apps/traffic/cloud namespace or the node namespace? */
static int check_unique(scn_model_t *m, elem_section_t sec, const char *name, elem_pos_t pos,
                        scn_diag_t *d)
{
    if (sec == ELEM_NODE) {
        int k;
        const scn_elem_t *o = node_owner(m, name, &k);
        if (o && k >= 0)
            return diag_set(d, pos, LB_EINVAL, "node name '%s' is already used by a member of "
                            "group '%s' (count: %d, at line %d); expected a unique name", name,
                            o->name, o->count, o->pos.line);
        if (o)
            return diag_set(d, pos, LB_EINVAL, "node name '%s' is already defined at line %d",
                            name, o->pos.line);
        return 0;
    }
    for (int s = ELEM_APP; s < ELEM_KIND_COUNT; s++) {
        const scn_elem_t *o = model_elem(m, (elem_section_t)s, name);
        if (o)
            return diag_set(d, pos, LB_EINVAL, "name '%s' is already used by %s '%s' (line %d); "
                            "apps, traffic and cloud elements share one namespace", name,
                            section_what[s], name, o->pos.line);
    }
    if (sec == ELEM_TRAFFIC && (strcmp(name, "client") == 0 || strcmp(name, "counter") == 0))
        return diag_set(d, pos, LB_EINVAL, "traffic name '%s' is reserved (expectations use "
                        "'client.' for all traffic and 'counter.' for counters); expected "
                        "another name", name);
    return 0;
}

/* After adding a group (the last node element), its members must not collide with names
 * defined earlier; the names are then taken. The clash reported is with the earliest
 * element, at the first of the group's members that hits it. */
static int check_group_members(scn_model_t *m, const scn_elem_t *g, scn_diag_t *d)
{
    uint32_t gi = (uint32_t)(m->elems[ELEM_NODE].n - 1);
    const scn_nodename_t *hit = NULL;
    int hit_k = 0;
    for (int k = 0; k < g->count; k++) {
        char nm[300];
        snprintf(nm, sizeof nm, "%s%d", g->name, k);
        const scn_nodename_t *o = nodename_find(m, nm);
        if (o && (!hit || o->elem < hit->elem)) {
            hit = o;
            hit_k = k;
        }
    }
    if (hit) {
        const scn_elem_t *o = &m->elems[ELEM_NODE].v[hit->elem];
        char *nm = member_name(g, hit_k);
        int rc;
        if (!o->group)
            rc = diag_set(d, g->pos, LB_EINVAL, "group '%s' (count: %d) would create node '%s', "
                          "which is already defined at line %d; expected unique node names",
                          g->name, g->count, nm, o->pos.line);
        else
            rc = diag_set(d, g->pos, LB_EINVAL, "group '%s' (count: %d) would create node '%s', "
                          "which group '%s' (line %d) also creates; expected unique node names",
                          g->name, g->count, nm, o->name, o->pos.line);
        lb_free(nm);
        return rc;
    }
    for (int k = 0; k < g->count; k++) {
        char nm[300];
        snprintf(nm, sizeof nm, "%s%d", g->name, k);
        nodename_add(m, nm, gi, k);
    }
    return 0;
}

static int load_section(scn_model_t *m, const scn_node_t *sec_node, elem_section_t sec,
                        scn_diag_t *d)
{
    if (!sec_node || sec_node->kind == SCN_NULL) return 0;
    if (sec_node->kind != SCN_MAP)
        return diag_set(d, sec_node->pos, LB_EINVAL, "%s: expected a mapping of names to "
                        "elements, like  r1: { type: router }; got %s", section_key[sec],
                        yt_kind_desc(sec_node));
    static const char *const extra[] = { "type", NULL };
    for (size_t i = 0; i < sec_node->n; i++) {
        const char *name = sec_node->keys[i];
        elem_pos_t kpos = sec_node->kpos[i];
        if (i % 1024 == 1023 && scn_stop_requested())
            return diag_set(d, kpos, LB_EINTR, "interrupted while validating");
        const scn_node_t *body = sec_node->v[i];
        int rc;
        if (!elem_name_ok(name)) return bad_name(d, kpos, section_what[sec], name);
        if ((rc = check_unique(m, sec, name, kpos, d)) < 0) return rc;
        if (body->kind != SCN_MAP)
            return diag_set(d, body->pos, LB_EINVAL, "%s '%s': expected a mapping with a type, "
                            "like { type: %s }; got %s", section_what[sec], name,
                            sec == ELEM_NODE ? "host" : sec == ELEM_APP ? "http-server"
                            : sec == ELEM_TRAFFIC ? "http-client" : "...", yt_kind_desc(body));
        const scn_node_t *tnode = yt_get(body, "type", NULL);
        if (!tnode || tnode->kind != SCN_SCALAR) {
            if (tnode && tnode->kind != SCN_NULL)
                return diag_set(d, tnode->pos, LB_EINVAL, "type: expected a type name; got %s",
                                yt_kind_desc(tnode));
            return diag_set(d, body->pos, LB_EINVAL, "missing required key 'type' in %s '%s'; "
                            "expected the element's type, like type: %s", section_what[sec], name,
                            sec == ELEM_NODE ? "router" : sec == ELEM_APP ? "http-server"
                            : sec == ELEM_TRAFFIC ? "http-client" : "...");
        }
        const elem_type_t *t = elem_type_find(tnode->str);
        if (!t || t->section != sec) return type_error(d, tnode, sec, name);
        char what[200];
        snprintf(what, sizeof what, "%s '%s' (%s)", section_what[sec], name, t->name);
        elem_cfg_t *cfg = NULL;
        if ((rc = elem_cfg_from_node(t->params, body, what, extra, &cfg, d)) < 0) return rc;
        cfg->name = lb_strdup(name);
        scn_elem_t e = { lb_strdup(name), t, cfg, kpos, false, 1 };
        const elem_val_t *cnt = sec == ELEM_NODE ? elem_find(cfg, "count") : NULL;
        if (cnt && cnt->kind == P_INT && cnt->set) {
            if (cnt->u.i < 1 || cnt->u.i > SCN_MAX_GROUP) {
                rc = diag_set(d, cnt->pos, LB_EINVAL, "count: expected a whole number from 1 to "
                              "%d; got %lld", SCN_MAX_GROUP, (long long)cnt->u.i);
                lb_free(e.name);
                elem_cfg_free(cfg);
                return rc;
            }
            e.group = true;
            e.count = (int)cnt->u.i;
        }
        if (sec == ELEM_NODE && m->node_names.n + (size_t)e.count > SCN_MAX_NODES) {
            rc = diag_set(d, kpos, LB_EINVAL, "node '%s' takes the scenario past %d nodes in all "
                          "(groups count each member); expected fewer", name, SCN_MAX_NODES);
            lb_free(e.name);
            elem_cfg_free(cfg);
            return rc;
        }
        lb_vec_push(&m->elems[sec], e);
        lb_index_add(&m->elem_index[sec], lb_hash_str(name), m->elems[sec].n - 1);
        if (sec == ELEM_NODE && !e.group)
            nodename_add(m, name, (uint32_t)(m->elems[sec].n - 1), -1);
        if (e.group && (rc = check_group_members(m, &m->elems[sec].v[m->elems[sec].n - 1], d)) < 0)
            return rc;
    }
    return 0;
}

/* ---- links --------------------------------------------------------------------------------------- */

static int ref_error(const scn_model_t *m, scn_diag_t *d, elem_pos_t pos, const char *ref)
{
    LB_VEC(const char *) names = { 0 };
    for (size_t i = 0; i < m->elems[ELEM_NODE].n; i++) lb_vec_push(&names, m->elems[ELEM_NODE].v[i].name);
    char list[400] = "";
    names_join(list, sizeof list, names.v, names.n, 30);
    int rc = diag_set(d, pos, LB_EINVAL, "link refers to node '%s', which is not defined; "
                      "nodes are: %s", ref, names.n ? list : "(none)");
    lb_vec_free(&names);
    return rc;
}

/* Resolves a link endpoint: a node, a group (all members) or one member. */
static int resolve_ref(const scn_model_t *m, const char *ref, elem_pos_t pos, strvec_t *out,
                       bool *is_group, scn_diag_t *d)
{
    const scn_elem_t *e = model_elem(m, ELEM_NODE, ref);
    *is_group = e && e->group;
    if (e && e->group) {
        for (int k = 0; k < e->count; k++) lb_vec_push(out, member_name(e, k));
        return 0;
    }
    int k;
    if (!e) e = node_owner(m, ref, &k);
    if (!e) return ref_error(m, d, pos, ref);
    lb_vec_push(out, lb_strdup(ref));
    return 0;
}

/* A shared segment: `members` instead of `between` (a subnet is required; groups join
 * with all their members; an `address` is for one node). */
static int load_segment(scn_model_t *m, scn_link_t *lp, scn_diag_t *d)
{
    const elem_val_t *bt = elem_get(lp->cfg, "between");
    const elem_val_t *mem = elem_get(lp->cfg, "members");
    const elem_val_t *sub = elem_get(lp->cfg, "subnet");
    if (bt->set)
        return diag_set(d, bt->pos, LB_EINVAL, "between and members: expected one of them "
                        "(between: two nodes; members: the nodes on a shared segment)");
    if (!mem->set)
        return diag_set(d, lp->pos, LB_EINVAL, "link: expected between (two nodes) or members "
                        "(the nodes on a shared segment)");
    if (!sub->set)
        return diag_set(d, mem->pos, LB_EINVAL, "members: a shared segment needs a subnet, "
                        "like subnet: 10.0.1.0/24");
    if (mem->u.objs.n < 2)
        return diag_set(d, mem->pos, LB_EINVAL, "members: expected at least two members; got "
                        "%zu", mem->u.objs.n);
    int rc = 0;
    lb_index_t seen = { 0 };                /* hash of a member's name -> members position */
    for (size_t i = 0; i < mem->u.objs.n && rc == 0; i++) {
        const elem_cfg_t *mc = mem->u.objs.v[i];
        const elem_val_t *node = elem_get(mc, "node"), *addr = elem_get(mc, "address");
        strvec_t names = { 0 };
        bool group;
        rc = resolve_ref(m, node->u.s, node->pos, &names, &group, d);
        if (rc == 0 && addr->set && names.n != 1)
            rc = diag_set(d, addr->pos, LB_EINVAL, "address: '%s' is a group of %zu nodes; "
                          "expected address only for a single node", node->u.s, names.n);
        for (size_t k = 0; k < names.n; k++) {
            uint64_t h = lb_hash_str(names.v[k]);
            for (size_t it, j = lb_index_first(&seen, h, &it); rc == 0 && j != LB_INDEX_NONE;
                 j = lb_index_next(&seen, h, &it))
                if (strcmp(lp->members.v[j].node, names.v[k]) == 0)
                    rc = diag_set(d, node->pos, LB_EINVAL, "members: node '%s' is on this "
                                  "segment already; expected each node once", names.v[k]);
            if (rc == 0) {
                scn_member_t x = { names.v[k], 0, mc };
                lb_vec_push(&lp->members, x);
                lb_index_add(&seen, h, lp->members.n - 1);
            } else {
                lb_free(names.v[k]);
            }
        }
        lb_vec_free(&names);
    }
    lb_index_free(&seen);
    return rc;
}

static int load_links(scn_model_t *m, const scn_node_t *links, scn_diag_t *d)
{
    if (!links || links->kind == SCN_NULL) return 0;
    if (links->kind != SCN_SEQ)
        return diag_set(d, links->pos, LB_EINVAL, "links: expected a list of links, like "
                        "- { between: [client, r1] }; got %s", yt_kind_desc(links));
    int rc = 0;
    for (size_t i = 0; i < links->n && rc == 0; i++) {
        if (i % 1024 == 1023 && scn_stop_requested()) {
            rc = diag_set(d, links->v[i]->pos, LB_EINTR, "interrupted while validating");
            break;
        }
        scn_link_t l = { 0 };
        l.pos = links->v[i]->pos;
        if ((rc = elem_cfg_from_node(link_params, links->v[i], "link", NULL, &l.cfg, d)) < 0) break;
        l.cfg->name = lb_sprintf("link %zu", i);
        lb_vec_push(&m->links, l);
        scn_link_t *lp = &m->links.v[m->links.n - 1];
        const elem_val_t *bt = elem_get(lp->cfg, "between");
        const elem_val_t *mem = elem_get(lp->cfg, "members");
        if (mem->set || !bt->set) {
            if ((rc = load_segment(m, lp, d)) < 0) break;
            continue;
        }
        if (bt->u.strs.n != 2) {
            rc = diag_set(d, bt->pos, LB_EINVAL, "between: expected exactly two node references, "
                          "like [client, r1]; got %zu", bt->u.strs.n);
            break;
        }
        strvec_t a = { 0 }, b = { 0 };
        bool ga, gb;
        rc = resolve_ref(m, bt->u.strs.v[0], bt->u.strs.pos[0], &a, &ga, d);
        if (rc == 0) rc = resolve_ref(m, bt->u.strs.v[1], bt->u.strs.pos[1], &b, &gb, d);
        if (rc == 0 && ga && gb && a.n != b.n)
            rc = diag_set(d, bt->pos, LB_EINVAL, "between: group '%s' has %zu members and group "
                          "'%s' has %zu; expected groups of equal size (zipped) or a group and a "
                          "single node", bt->u.strs.v[0], a.n, bt->u.strs.v[1], b.n);
        size_t n = a.n > b.n ? a.n : b.n;
        for (size_t k = 0; rc == 0 && k < n; k++) {
            const char *na = a.v[a.n == 1 ? 0 : k], *nb = b.v[b.n == 1 ? 0 : k];
            if (strcmp(na, nb) == 0) {
                rc = diag_set(d, bt->pos, LB_EINVAL, "between: a link cannot join node '%s' to "
                              "itself; expected two different nodes", na);
                break;
            }
            scn_pair_t p = { lb_strdup(na), lb_strdup(nb), 0, 0, 0, 0 };
            lb_vec_push(&lp->pairs, p);
        }
        const elem_val_t *sub = elem_get(lp->cfg, "subnet");
        if (rc == 0 && sub->set && lp->pairs.n != 1)
            rc = diag_set(d, sub->pos, LB_EINVAL, "subnet: this link expands to %zu links (a "
                          "group); expected subnet only on a link between two single nodes",
                          lp->pairs.n);
        for (size_t k = 0; k < a.n; k++) lb_free(a.v[k]);
        for (size_t k = 0; k < b.n; k++) lb_free(b.v[k]);
        lb_vec_free(&a);
        lb_vec_free(&b);
    }
    return rc;
}

/* ---- expectations ------------------------------------------------------------------------------- */

static int check_expect(const scn_model_t *m, const scn_expect_t *e, scn_diag_t *d)
{
    if (e->source && !model_elem(m, ELEM_TRAFFIC, e->source)) {
        LB_VEC(const char *) names = { 0 };
        for (size_t i = 0; i < m->elems[ELEM_TRAFFIC].n; i++)
            lb_vec_push(&names, m->elems[ELEM_TRAFFIC].v[i].name);
        char list[400] = "";
        names_join(list, sizeof list, names.v, names.n, 30);
        const char *close = closest_name(e->source, names.v, names.n);
        char hint[200] = "";
        if (close) snprintf(hint, sizeof hint, "did you mean '%s'? ", close);
        int rc = diag_set(d, e->pos, LB_EINVAL, "expectation refers to traffic '%s', which is not "
                          "defined; %straffic is: %s (or 'client' for all traffic)", e->source,
                          hint, names.n ? list : "(none)");
        lb_vec_free(&names);
        return rc;
    }
    sim_time_t to = e->to < 0 ? m->duration : e->to;
    char a[32], b[32], c[32];
    unit_duration_str(e->from, a, sizeof a);
    unit_duration_str(to, b, sizeof b);
    unit_duration_str(m->duration, c, sizeof c);
    if (e->from >= m->duration)
        return diag_set(d, e->pos, LB_EINVAL, "expectation window [%s, %s) starts at or after the "
                        "end of the run (duration %s); expected times within the run", a, b, c);
    if (to > m->duration)
        return diag_set(d, e->pos, LB_EINVAL, "expectation window [%s, %s) ends after the run's "
                        "duration %s; expected times within the run", a, b, c);
    if (e->from >= to)
        return diag_set(d, e->pos, LB_EINVAL, "expectation window [%s, %s) is empty; expected "
                        "'after' before 'before' and within the duration %s", a, b, c);
    return 0;
}

/* scn_ignore_expectations(): models are built without their `expect` section. */
static bool ignore_expectations;
void scn_ignore_expectations(bool ignore) { ignore_expectations = ignore; }

/* The expectations under ex's key i: each parsed; with keep, checked against the model
 * (sources and windows: a variant may change the duration or the traffic) and kept. */
static int expect_list(scn_model_t *m, const scn_node_t *ex, size_t i, bool keep, scn_diag_t *d)
{
    const char *key = ex->keys[i];
    const scn_node_t *list = ex->v[i];
    if (list->kind == SCN_NULL) return 0;
    if (list->kind != SCN_SEQ && list->kind != SCN_SCALAR)
        return diag_set(d, list->pos, LB_EINVAL, "expect.%s: expected a list of expectations "
                        "like [\"browse.status_2xx_ratio >= 0.99\"]; got %s", key,
                        yt_kind_desc(list));
    size_t n = list->kind == SCN_SEQ ? list->n : 1;
    for (size_t j = 0; j < n; j++) {
        const scn_node_t *it = list->kind == SCN_SEQ ? list->v[j] : list;
        if (it->kind != SCN_SCALAR)
            return diag_set(d, it->pos, LB_EINVAL, "expectation: expected a string like "
                            "\"browse.status_2xx_ratio >= 0.99 after 5s\"; got %s",
                            yt_kind_desc(it));
        scn_expect_t e;
        int rc = expect_parse(it->str, it->pos, &e, d);
        if (rc < 0) return rc;
        e.variant = lb_strdup(key);
        if (keep && (rc = check_expect(m, &e, d)) < 0) {
            expect_clear(&e);
            return rc;
        }
        if (keep)
            lb_vec_push(&m->expects, e);
        else
            expect_clear(&e);
    }
    return 0;
}

/* The base model (variant NULL) checks every key of `expect` and the syntax of every
 * expectation, once; a variant's model takes only "*" and its own key, in the order
 * written (variants and overrides cannot change `expect`). So V variants with an
 * expectation each cost O(V), not O(V^2) or worse. */
static int load_expect(scn_model_t *m, const scn_node_t *ex, const char *variant,
                       const char *const *variants, size_t nvariants, scn_diag_t *d)
{
    if (!ex || ex->kind == SCN_NULL) return 0;
    if (ex->kind != SCN_MAP)
        return diag_set(d, ex->pos, LB_EINVAL, "expect: expected a mapping of variant names (or "
                        "\"*\") to lists of expectations; got %s", yt_kind_desc(ex));
    if (variant) {
        size_t star = 0, own = 0;
        bool has_star = yt_get(ex, "*", &star) != NULL, has_own = yt_get(ex, variant, &own) != NULL;
        int rc = 0;
        if (has_star && (!has_own || star < own)) rc = expect_list(m, ex, star, true, d);
        if (rc == 0 && has_own) rc = expect_list(m, ex, own, true, d);
        if (rc == 0 && has_star && has_own && own < star) rc = expect_list(m, ex, star, true, d);
        return rc;
    }
    lb_index_t names = { 0 };
    for (size_t v = 0; v < nvariants; v++) lb_index_add(&names, lb_hash_str(variants[v]), v);
    int rc = 0;
    for (size_t i = 0; i < ex->n && rc == 0; i++) {
        const char *key = ex->keys[i];
        bool known = strcmp(key, "*") == 0;
        uint64_t h = lb_hash_str(key);
        for (size_t it, v = lb_index_first(&names, h, &it); v != LB_INDEX_NONE && !known;
             v = lb_index_next(&names, h, &it))
            known = strcmp(variants[v], key) == 0;
        if (!known) {
            char list[400] = "";
            names_join(list, sizeof list, variants, nvariants, 30);
            const char *close = closest_name(key, variants, nvariants);
            char hint[200] = "";
            if (close) snprintf(hint, sizeof hint, "did you mean '%s'? ", close);
            rc = diag_set(d, ex->kpos[i], LB_EINVAL, "expect refers to variant '%s', which is "
                          "not defined; %svariants are: %s (or \"*\" for all)", key, hint, list);
            break;
        }
        rc = expect_list(m, ex, i, false, d);
    }
    lb_index_free(&names);
    return rc;
}

/* ---- the model --------------------------------------------------------------------------------- */

void model_unref(scn_model_t *m)
{
    if (!m || --m->refs > 0) return;
    for (int s = 0; s < ELEM_KIND_COUNT; s++) {
        for (size_t i = 0; i < m->elems[s].n; i++) {
            lb_free(m->elems[s].v[i].name);
            elem_cfg_free(m->elems[s].v[i].cfg);
        }
        lb_vec_free(&m->elems[s]);
        lb_index_free(&m->elem_index[s]);
    }
    lb_vec_free(&m->node_names);
    lb_index_free(&m->node_index);
    for (size_t i = 0; i < m->links.n; i++) {
        scn_link_t *l = &m->links.v[i];
        elem_cfg_free(l->cfg);
        for (size_t k = 0; k < l->pairs.n; k++) {
            lb_free(l->pairs.v[k].a);
            lb_free(l->pairs.v[k].b);
        }
        lb_vec_free(&l->pairs);
        for (size_t k = 0; k < l->members.n; k++) lb_free(l->members.v[k].node);
        lb_vec_free(&l->members);
    }
    lb_vec_free(&m->links);
    for (size_t i = 0; i < m->expects.n; i++) expect_clear(&m->expects.v[i]);
    lb_vec_free(&m->expects);
    lb_free(m->name);
    lb_free(m->description);
    manifests_free(m->kube);
    yt_free(m->tree);
    lb_free(m);
}

int model_new(scn_node_t *tree, const char *variant, const char *const *variants,
              size_t nvariants, scn_files_t *files, scn_model_t **out, scn_diag_t *d)
{
    scn_model_t *m = lb_calloc(1, sizeof *m);
    m->refs = 1;
    m->tree = tree;
    elem_cfg_t *top = NULL;
    int rc = 0;
    if (tree->kind != SCN_MAP) {
        rc = diag_set(d, tree->pos, LB_EINVAL, "a scenario must be a mapping with name, duration, "
                      "nodes, links...; got %s", yt_kind_desc(tree));
        goto out;
    }
    if ((rc = elem_cfg_from_node(scenario_params, tree, "scenario", NULL, &top, d)) < 0) goto out;
    const elem_val_t *name = elem_get(top, "name");
    if (!scenario_name_ok(name->u.s)) {
        rc = diag_set(d, name->pos, LB_EINVAL, "name: expected lowercase letters, digits and '-', "
                      "like core-nat; got '%s'", name->u.s);
        goto out;
    }
    /* seed: all of 0 .. 2^64-1 (an int64 parameter would stop at 2^63-1) */
    const scn_node_t *seed = elem_get(top, "seed")->u.any;
    m->seed = SCN_SEED_DEFAULT;
    if (seed && seed->kind != SCN_NULL &&
        (seed->kind != SCN_SCALAR || lb_parse_u64(seed->str, &m->seed) < 0)) {
        rc = seed->kind == SCN_SCALAR ?
            diag_set(d, seed->pos, LB_EINVAL, "seed: expected an integer from 0 to %llu; got "
                     "'%s'", (unsigned long long)UINT64_MAX, seed->str) :
            diag_set(d, seed->pos, LB_EINVAL, "seed: expected an integer from 0 to %llu; got %s",
                     (unsigned long long)UINT64_MAX, yt_kind_desc(seed));
        goto out;
    }
    const elem_val_t *dur = elem_get(top, "duration");
    if (dur->u.i <= 0) {
        rc = diag_set(d, dur->pos, LB_EINVAL, "duration: expected a positive duration like 60s; "
                      "got '0'");
        goto out;
    }
    m->name = lb_strdup(name->u.s);
    m->description = lb_strdup(elem_str(top, "description"));
    m->duration = dur->u.i;
    const elem_cfg_t *al = elem_get(top, "all-links")->u.objs.v[0];
    m->all_links = (net_all_links_t){ .loss = elem_get(al, "loss")->u.f,
                                      .queue_bytes = (uint64_t)elem_get(al, "queue")->u.i,
                                      .bandwidth_bps = (uint64_t)elem_get(al, "bandwidth")->u.i };
    rc = kube_load(tree, files, &m->kube, d);
    for (int s = 0; s < ELEM_KIND_COUNT && rc == 0; s++)
        rc = load_section(m, yt_get(tree, section_key[s], NULL), (elem_section_t)s, d);
    if (rc == 0) rc = load_links(m, yt_get(tree, "links", NULL), d);
    if (rc == 0) rc = topology_plan(m, d);
    if (rc == 0 && !ignore_expectations)
        rc = load_expect(m, yt_get(tree, "expect", NULL), variant, variants, nvariants, d);
out:
    elem_cfg_free(top);
    if (rc < 0) {
        model_unref(m);
        return rc;
    }
    *out = m;
    return 0;
}
