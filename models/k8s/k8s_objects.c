/* k8s_objects.c -- the small shared helpers declared at the bottom of k8s.h: label and
 * annotation lookup, matchLabels selection, find-by-namespace/name, and releasing a whole
 * k8s_objects_t. Every string and object reachable from k8s_objects_t is owned by it
 * (lb_malloc'd); positions (elem_pos_t.file) belong to the loader and are not freed. */
#include <string.h>
#include "k8s.h"

const char *k8s_kv_get(const k8s_kvs_t *kv, const char *key)
{
    if (!kv || !key)
        return NULL;
    for (size_t i = 0; i < kv->n; i++)
        if (kv->v[i].key && strcmp(kv->v[i].key, key) == 0)
            return kv->v[i].value ? kv->v[i].value : "";
    return NULL;
}

/* matchLabels: every selector pair must be present with the same value. An empty selector
 * selects everything (k8s.io/apimachinery labels.SelectorFromSet of an empty set). */
bool k8s_labels_match(const k8s_kvs_t *selector, const k8s_kvs_t *labels)
{
    if (!selector)
        return true;
    for (size_t i = 0; i < selector->n; i++) {
        const char *v = k8s_kv_get(labels, selector->v[i].key);
        const char *want = selector->v[i].value ? selector->v[i].value : "";
        if (!v || strcmp(v, want) != 0)
            return false;
    }
    return true;
}

/* ---- freeing ---------------------------------------------------------------------------- */
static void kvs_free(k8s_kvs_t *kv)
{
    for (size_t i = 0; i < kv->n; i++) {
        lb_free(kv->v[i].key);
        lb_free(kv->v[i].value);
    }
    lb_vec_free(kv);
}

static void meta_free(k8s_meta_t *m)
{
    lb_free(m->name);
    lb_free(m->ns);
    kvs_free(&m->labels);
    kvs_free(&m->annotations);
}

static void probe_free(k8s_probe_t *p)
{
    lb_free(p->path);
    lb_free(p->port.name);
}

static void container_free(k8s_container_t *c)
{
    lb_free(c->name);
    lb_free(c->image);
    for (size_t i = 0; i < c->ports.n; i++) {
        lb_free(c->ports.v[i].name);
        lb_free(c->ports.v[i].protocol);
    }
    lb_vec_free(&c->ports);
    probe_free(&c->readiness);
    probe_free(&c->liveness);
    lb_free(c->nginx_conf);
    for (size_t i = 0; i < c->config_maps.n; i++)
        lb_free(c->config_maps.v[i]);
    lb_vec_free(&c->config_maps);
}

static void deployment_free(k8s_deployment_t *d)
{
    meta_free(&d->meta);
    kvs_free(&d->selector);
    kvs_free(&d->pod_labels);
    kvs_free(&d->node_selector);
    for (size_t i = 0; i < d->tolerations.n; i++) {
        k8s_toleration_t *t = &d->tolerations.v[i];
        lb_free(t->key);
        lb_free(t->op);
        lb_free(t->value);
        lb_free(t->effect);
    }
    lb_vec_free(&d->tolerations);
    for (size_t i = 0; i < d->containers.n; i++)
        container_free(&d->containers.v[i]);
    lb_vec_free(&d->containers);
    lb_free(d);
}

static void service_free(k8s_service_t *s)
{
    meta_free(&s->meta);
    kvs_free(&s->selector);
    for (size_t i = 0; i < s->ports.n; i++) {
        k8s_service_port_t *p = &s->ports.v[i];
        lb_free(p->name);
        lb_free(p->target_port.name);
        lb_free(p->protocol);
        lb_free(p->app_protocol);
    }
    lb_vec_free(&s->ports);
    lb_vec_free(&s->source_ranges);
    lb_free(s);
}

static void gateway_free(k8s_gateway_t *g)
{
    meta_free(&g->meta);
    lb_free(g->class_name);
    for (size_t i = 0; i < g->listeners.n; i++) {
        gw_listener_t *l = &g->listeners.v[i];
        lb_free(l->name);
        lb_free(l->protocol);
        lb_free(l->hostname);
        lb_free(l->cert_ref);
        lb_free(l->routes_from);
    }
    lb_vec_free(&g->listeners);
    kvs_free(&g->infra_labels);
    kvs_free(&g->infra_annotations);
    lb_free(g);
}

static void header_matches_free(gw_header_match_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lb_free(v[i].name);
        lb_free(v[i].value);
    }
}

static void route_free(k8s_httproute_t *r)
{
    meta_free(&r->meta);
    for (size_t i = 0; i < r->parents.n; i++) {
        lb_free(r->parents.v[i].name);
        lb_free(r->parents.v[i].ns);
        lb_free(r->parents.v[i].section);
    }
    lb_vec_free(&r->parents);
    for (size_t i = 0; i < r->hostnames.n; i++)
        lb_free(r->hostnames.v[i]);
    lb_vec_free(&r->hostnames);
    for (size_t i = 0; i < r->rules.n; i++) {
        gw_route_rule_t *rule = &r->rules.v[i];
        for (size_t j = 0; j < rule->matches.n; j++) {
            gw_route_match_t *m = &rule->matches.v[j];
            lb_free(m->path);
            lb_free(m->method);
            header_matches_free(m->headers.v, m->headers.n);
            lb_vec_free(&m->headers);
            header_matches_free(m->query.v, m->query.n);
            lb_vec_free(&m->query);
        }
        lb_vec_free(&rule->matches);
        for (size_t j = 0; j < rule->backends.n; j++) {
            gw_backend_ref_t *b = &rule->backends.v[j];
            lb_free(b->group);
            lb_free(b->kind);
            lb_free(b->name);
            lb_free(b->ns);
        }
        lb_vec_free(&rule->backends);
    }
    lb_vec_free(&r->rules);
    lb_free(r);
}

static void grant_free(k8s_refgrant_t *g)
{
    meta_free(&g->meta);
    for (size_t i = 0; i < g->from.n; i++) {
        lb_free(g->from.v[i].group);
        lb_free(g->from.v[i].kind);
        lb_free(g->from.v[i].ns);
    }
    lb_vec_free(&g->from);
    for (size_t i = 0; i < g->to.n; i++) {
        lb_free(g->to.v[i].group);
        lb_free(g->to.v[i].kind);
        lb_free(g->to.v[i].name);
    }
    lb_vec_free(&g->to);
    lb_free(g);
}

/* Frees every object and string o holds and leaves *o empty (all vectors zero). The
 * k8s_objects_t itself is not freed: callers embed it or free it themselves. */
void k8s_objects_free(k8s_objects_t *o)
{
    if (!o)
        return;
    for (size_t i = 0; i < o->namespaces.n; i++) {
        meta_free(&o->namespaces.v[i]->meta);
        lb_free(o->namespaces.v[i]);
    }
    lb_vec_free(&o->namespaces);
    for (size_t i = 0; i < o->configmaps.n; i++) {
        meta_free(&o->configmaps.v[i]->meta);
        kvs_free(&o->configmaps.v[i]->data);
        lb_free(o->configmaps.v[i]);
    }
    lb_vec_free(&o->configmaps);
    for (size_t i = 0; i < o->deployments.n; i++)
        deployment_free(o->deployments.v[i]);
    lb_vec_free(&o->deployments);
    for (size_t i = 0; i < o->services.n; i++)
        service_free(o->services.v[i]);
    lb_vec_free(&o->services);
    for (size_t i = 0; i < o->gateways.n; i++)
        gateway_free(o->gateways.v[i]);
    lb_vec_free(&o->gateways);
    for (size_t i = 0; i < o->routes.n; i++)
        route_free(o->routes.v[i]);
    lb_vec_free(&o->routes);
    for (size_t i = 0; i < o->grants.n; i++)
        grant_free(o->grants.v[i]);
    lb_vec_free(&o->grants);
}

/* ---- lookup ----------------------------------------------------------------------------- */
/* A NULL namespace in the object means "default" (k8s.h). */
static bool meta_is(const k8s_meta_t *m, const char *ns, const char *name)
{
    const char *mns = m->ns ? m->ns : "default";
    return m->name && name && strcmp(m->name, name) == 0 && strcmp(mns, ns ? ns : "default") == 0;
}

k8s_service_t *k8s_service_find(const k8s_objects_t *o, const char *ns, const char *name)
{
    for (size_t i = 0; o && i < o->services.n; i++)
        if (meta_is(&o->services.v[i]->meta, ns, name))
            return o->services.v[i];
    return NULL;
}

k8s_gateway_t *k8s_gateway_find(const k8s_objects_t *o, const char *ns, const char *name)
{
    for (size_t i = 0; o && i < o->gateways.n; i++)
        if (meta_is(&o->gateways.v[i]->meta, ns, name))
            return o->gateways.v[i];
    return NULL;
}

k8s_configmap_t *k8s_configmap_find(const k8s_objects_t *o, const char *ns, const char *name)
{
    for (size_t i = 0; o && i < o->configmaps.n; i++)
        if (meta_is(&o->configmaps.v[i]->meta, ns, name))
            return o->configmaps.v[i];
    return NULL;
}
