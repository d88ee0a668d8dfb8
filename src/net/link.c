/* link.c -- full-duplex point-to-point links. Each direction is a FIFO transmitter:
 * a packet starts when the previous one has left (busy_until), takes bytes*8/bandwidth to
 * serialise, then `latency` to propagate. The waiting queue is implicit in busy_until, so
 * a hop costs one event (the arrival) and no queue structure. Tail drop when the backlog
 * -- every byte not yet serialised, the packet on the wire included -- would exceed
 * queue_bytes. Loss is drawn per packet from "link:<a>-<b>". */
#include <assert.h>
#include <stdio.h>
#include "net_int.h"

struct net_link {
    net_t *net;
    net_iface_t *end[2];
    net_link_params_t p;
    sim_time_t busy_until[2];
    gsl_rng *rng;               /* the loss stream, made when first needed (5 KB each) */
};

net_link_t *net_link_new(net_t *n, net_iface_t *a, net_iface_t *b, const net_link_params_t *p)
{
    assert(!a->link && !a->fabric && !b->link && !b->fabric && a != b);
    net_link_t *l = lb_calloc(1, sizeof *l);
    l->net = n;
    l->end[0] = a;
    l->end[1] = b;
    l->p = *p;
    a->link = l;
    a->link_side = 0;
    b->link = l;
    b->link_side = 1;
    lb_vec_push(&n->links, l);
    return l;
}

void net_link_free_(net_link_t *l) { lb_free(l); }

void net_link_set_params(net_link_t *l, const net_link_params_t *p) { l->p = *p; }
const net_link_params_t *net_link_params(const net_link_t *l) { return &l->p; }

static void arrive_cb(sim_t *sim, void *a, void *b)
{
    (void)sim;
    net_iface_t *ifc = a;
    net_node_rx(ifc->node, ifc, b);
}

void net_link_tx(net_link_t *l, int side, pkt_t *p)
{
    sim_t *sim = l->net->hdr.sim;
    sim_time_t now = sim_now(sim);
    uint64_t bytes = pkt_wire_bytes(p);
    sim_time_t start = l->busy_until[side] > now ? l->busy_until[side] : now;
    sim_time_t ser = 0;
    const net_all_links_t *all = &l->net->all;          /* run-wide impairment, if any */
    uint64_t bw = net_cap_(l->p.bandwidth_bps, all->bandwidth_bps),
             queue = net_cap_(l->p.queue_bytes, all->queue_bytes);
    double loss = net_loss_(l->p.loss, all->loss);
    if (bw) {
        ser = (sim_time_t)((bytes * 8 * (uint64_t)SIM_S + bw - 1) / bw);
        if (queue && start > now) {
            uint64_t waiting = (uint64_t)(start - now) * bw / 8 / SIM_S;
            if (waiting + bytes > queue) {
                net_drop(l->net, l->end[side]->node, p, "queue-full",
                         "%s: %llu bytes queued, limit %llu", l->end[side]->name,
                         (unsigned long long)waiting, (unsigned long long)queue);
                return;
            }
        }
    }
    l->busy_until[side] = start + ser;
    if (loss > 0 && !l->rng) {      /* streams are per name: making it late changes nothing */
        char name[256];
        snprintf(name, sizeof name, "link:%s/%s-%s/%s", l->end[0]->node->name, l->end[0]->name,
                 l->end[1]->node->name, l->end[1]->name);
        l->rng = sim_rng(net_sim_(l->net), name);
    }
    if (loss > 0 && gsl_rng_uniform(l->rng) < loss) {
        net_drop(l->net, l->end[side]->node, p, "link-loss", "lost on %s/%s -> %s",
                 l->end[side]->node->name, l->end[side]->name, l->end[!side]->node->name);
        return;
    }
    sim_schedule_at(sim, start + ser + l->p.latency, arrive_cb, l->end[!side], p);
}

net_iface_t *net_link_peer(const net_iface_t *ifc)
{
    return ifc->link ? ifc->link->end[1 - ifc->link_side] : NULL;
}
