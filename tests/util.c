/* util.c -- shared test helpers: small topologies through the public C API and a packet
 * capture through the network observer. */
#include <check.h>
#include <string.h>
#include "util.h"

uint32_t tu_ip(const char *s)
{
    uint32_t a = 0;
    ck_assert_int_eq(lb_ip_parse(s, &a), 0);
    return a;
}

void tu_pair_new(tu_pair_t *t, uint64_t seed, sim_time_t latency, uint64_t bw, double loss)
{
    memset(t, 0, sizeof *t);
    t->sim = sim_new(seed);
    t->net = net_new(t->sim);
    t->a = net_node_add(t->net, "a");
    t->b = net_node_add(t->net, "b");
    net_iface_t *ia = net_iface_add(t->a, "eth0", tu_ip("10.0.0.1"), 24);
    net_iface_t *ib = net_iface_add(t->b, "eth0", tu_ip("10.0.0.2"), 24);
    net_link_params_t lp = {.latency = latency, .bandwidth_bps = bw, .loss = loss};
    t->link = net_link_new(t->net, ia, ib, &lp);
}

void tu_pair_free(tu_pair_t *t)
{
    net_free(t->net);
    sim_free(t->sim);
    memset(t, 0, sizeof *t);
}

static void cap_cb(void *data, sim_time_t t, const char *where, const pkt_t *p)
{
    tu_capture_t *c = data;
    if (c->n >= (int)(sizeof c->rec / sizeof c->rec[0])) return;
    c->rec[c->n].t = t;
    c->rec[c->n].p = *p;
    c->rec[c->n].p.msg = NULL;
    snprintf(c->rec[c->n].where, sizeof c->rec[c->n].where, "%s", where);
    c->n++;
}

void tu_capture_start(net_t *net, tu_capture_t *cap)
{
    cap->n = 0;
    net_observer_t o = {.capture = cap_cb, .data = cap};
    net_set_observer(net, &o);
}
