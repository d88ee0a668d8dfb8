/* realchain.h -- what the simulator hands to the world outside it, and to the real chain
 * (scripts/realstack.sh builds a variant in network namespaces from these):
 *   - a JSON description of one built variant: its elements and their configuration, every
 *     node with interfaces, addresses and routes, the fabrics (VNet/VPC) with what they
 *     deliver to, the clusters (nodes, pods, Services, endpoints), and the load balancers
 *     with the parameters their models actually use (docs/DESCRIBE.md);
 *   - the stand-ins' configurations rendered from the models: haproxy for App Gateway and
 *     the ALB, nginx for every pod (apps from their manifests, the Istio gateway from the
 *     HTTPRoutes) and for kube-proxy's healthCheckNodePort servers;
 *   - the fate of single flows through one node's netfilter (DNAT target, SNAT, the rules
 *     taken, the drop point), for the kube-proxy packet-fate differential.
 * All three build the variant with scn_run_new and let its t = 0 set-up run; nothing is
 * simulated beyond that. */
#ifndef REALCHAIN_H
#define REALCHAIN_H

#include <stdio.h>
#include "scenario.h"

/* The version of the description format (docs/DESCRIBE.md); bumped on incompatible change. */
#define REALCHAIN_DESCRIBE_FORMAT 1

/* Writes the description of run r (built, its t = 0 events run) as JSON to out, one
 * document ending in a newline. s is the scenario r was built from. Returns 0, or LB_EIO
 * with a message in err. */
int realchain_describe(scn_t *s, scn_run_t *r, FILE *out, char *err, size_t errlen);

/* Writes the stand-ins' configuration files of run r into directory dir (created if
 * missing), each through a temporary name and renamed:
 *   <element>.haproxy.cfg   for each azure-app-gateway and aws-alb element
 *   pod-<pod>.nginx.conf    for each pod with an nginx app or an Istio gateway
 *   hc-<node>.nginx.conf    for each cluster node with a healthCheckNodePort server
 *   iptables-<node>.rules   for each cluster node: its rules as --dump-iptables prints them
 * and prints one line per file to out: "<kind> <name> <file>" (kind haproxy, pod, hc or iptables).
 * File and process paths inside the configurations (pid, logs, temp) are under dir, which
 * should be absolute. Returns 0, or LB_EIO / LB_EINVAL with a message in err. */
int realchain_render(scn_run_t *r, const char *dir, FILE *out, char *err, size_t errlen);

/* Reads flows from `in` (named `inname` in messages), one per line:
 *     NODE IFACE SRC:SPORT DST:DPORT        (TCP; '#' starts a comment)
 * and for each builds variant v of s with seed, lets t = 0 happen, injects a TCP SYN
 * arriving on NODE's interface IFACE and writes one JSON object per line to out:
 *   {"node", "in", "src", "dst", "verdict": "forward"|"local"|"drop"|"reject"|"no-route",
 *    "out": iface|null, "dnat": "ip:port"|null, "snat": "ip:port"|null,
 *    "drop": "table/CHAIN#N"|null, "rules": ["nat/KUBE-SERVICES#7", ...],
 *    "random": [{"chain": "KUBE-SVC-...", "targets": ["ip:port", ...]}]}
 * "rules" are the rules whose packet counters the SYN moved (iptables-save -c order,
 * 1-based within each chain) and, in nftables mode, the nft rules that ran to their end
 * whatever their verdict ("kube-proxy/services#2": the position in the chain as `nft list
 * ruleset` lists it, 1-based), "random" the chains where it met `statistic --mode
 * random` or `numgen random` and every DNAT target reachable from them. Returns 0; on a malformed line or an
 * unknown node/interface, LB_EINVAL with *d (file:line:col) and nothing more written. */
int realchain_flow_fate(scn_t *s, size_t v, uint64_t seed, FILE *in, const char *inname,
                        FILE *out, scn_diag_t *d);

#endif
