/* vnet.c -- the "vnet" element: a cloud virtual network (Azure VNet, AWS VPC) as a fabric
 * that delivers by IP, with hosts from the nodes section attached to it (an internet
 * client, a jump box). Cloud elements (clusters, load balancers, gateways) put their own
 * interfaces into it. Intra-region latency: Azure documents sub-millisecond round trips
 * within a region (learn.microsoft.com/azure/networking/azure-network-latency); the
 * default 100 us one way is a parameter. */
#include <stdio.h>
#include <string.h>
#include "element.h"
#include "net.h"

#define VNET_LATENCY_DEFAULT "100us"

static const elem_param_t vnet_params[] = {
    {"type", P_STR, NULL, "vnet", NULL, NULL},
    {"latency", P_DURATION, VNET_LATENCY_DEFAULT, "one-way latency between any two attachments", NULL, NULL},
    {"bandwidth", P_BANDWIDTH, "0bps", "per-NIC bandwidth (0: unlimited)", NULL, NULL},
    {"queue", P_SIZE, "0", "bytes that may wait per NIC (0: unlimited; fills only with a "
     "bandwidth)", NULL, NULL},
    {"loss", P_RATIO, "0", "packet loss inside the fabric", NULL, NULL},
    {"attach", P_STRLIST, "[]", "nodes from the nodes section to attach (one NIC each)", NULL, NULL},
    {"attach-subnet", P_CIDR, "203.0.113.0/24", "addresses for attached nodes (.10, .11, ...)", NULL, NULL},
    {NULL, 0, NULL, NULL, NULL, NULL},
};

static int vnet_build(build_ctx_t *ctx, const char *name, const elem_cfg_t *cfg)
{
    net_fabric_params_t fp = {
        .latency = elem_get(cfg, "latency")->u.i,
        .bandwidth_bps = (uint64_t)elem_get(cfg, "bandwidth")->u.i,
        .queue_bytes = (uint64_t)elem_get(cfg, "queue")->u.i,
        .loss = elem_get(cfg, "loss")->u.f,
    };
    net_fabric_t *fab = net_fabric_new(build_net(ctx), name, &fp);
    build_put(ctx, name, "fabric", fab);
    const elem_val_t *att = elem_get(cfg, "attach");
    const elem_val_t *sub = elem_get(cfg, "attach-subnet");
    uint32_t mask = lb_prefix_mask(sub->u.cidr.plen), next = (sub->u.cidr.addr & mask) + 10,
             last = (sub->u.cidr.addr | ~mask) - 1;
    for (size_t i = 0; i < att->u.strs.n; i++) {
        net_node_t **nodes;
        size_t n = build_nodes(ctx, att->u.strs.v[i], &nodes);
        if (!n)
            return build_error(ctx, att->u.strs.pos[i], "vnet '%s': attach: no node '%s'",
                               name, att->u.strs.v[i]);
        for (size_t k = 0; k < n; k++) {
            char ifname[16], a[16];
            if (sub->u.cidr.plen > 28 || next > last)
                return build_error(ctx, att->u.strs.pos[i], "vnet '%s': attach-subnet %s/%d "
                                   "has no address left for %s (hosts take .10 up to the last "
                                   "but one)", name, lb_ip_str(sub->u.cidr.addr & mask, a),
                                   sub->u.cidr.plen, nodes[k]->name);
            snprintf(ifname, sizeof ifname, "eth%zu", nodes[k]->ifaces.n);
            net_iface_t *ifc = net_iface_add(nodes[k], ifname, next++, sub->u.cidr.plen);
            net_fabric_attach(fab, ifc);
            if (!net_route_lookup(nodes[k], 0))         /* no default route yet: this one */
                net_route_add(nodes[k], 0, 0, 0, ifc);
        }
    }
    return 0;
}

static const elem_type_t vnet_type = {
    "vnet", ELEM_CLOUD,
    "a cloud virtual network (VNet/VPC): delivers by IP between everything attached",
    vnet_params, vnet_build,
};

void vnet_register(void) { elem_register(&vnet_type); }
