/* netfilter.h -- a node's netfilter: the five hooks, the nat and filter tables with
 * built-in and user chains, rules in iptables syntax, and conntrack with NAT reversal.
 * kube-proxy writes its rules here as iptables-restore text, exactly as proxier.go does,
 * and `--dump-iptables NODE` prints them back in iptables-save form.
 *
 * Hook -> tables, in Linux order (net/netfilter, nf_nat_core.c):
 *   PREROUTING : conntrack in, nat (DNAT, only for a connection's first packet)
 *   INPUT      : filter, nat (SNAT), conntrack confirm
 *   FORWARD    : filter
 *   OUTPUT     : conntrack in, nat (DNAT), filter
 *   POSTROUTING: nat (SNAT / MASQUERADE, first packet only), conntrack confirm
 * Later packets of a connection get the NAT binding from conntrack; replies are
 * reverse-translated. Supported rule syntax: see nf_rule_parse() in src/net/netfilter.c. */
#ifndef NETFILTER_H
#define NETFILTER_H

#include <stdio.h>
#include "net.h"

typedef struct nf nf_t;
typedef struct ct_entry ct_entry_t;

enum nf_hook { NF_PREROUTING, NF_INPUT, NF_FORWARD, NF_OUTPUT, NF_POSTROUTING, NF_HOOK_COUNT };
enum nf_verdict { NF_ACCEPT = 0, NF_STOLEN = 1 };  /* STOLEN: consumed (dropped/rejected) */
enum ct_state { CT_NONE = 0, CT_NEW, CT_ESTABLISHED, CT_RELATED, CT_INVALID, CT_UNTRACKED };

/* Tunables with Linux defaults (Documentation/networking/nf_conntrack-sysctl.rst). */
typedef struct nf_params {
    bool conntrack;                 /* track connections even without NAT rules */
    bool tcp_loose;                 /* nf_conntrack_tcp_loose, default 1: a mid-stream ACK
                                     * with no entry is picked up instead of INVALID */
    sim_time_t to_syn_sent;         /* 120 s */
    sim_time_t to_syn_recv;         /* 60 s */
    sim_time_t to_established;      /* 432000 s (5 days) */
    sim_time_t to_fin_wait;         /* 120 s */
    sim_time_t to_close_wait;       /* 60 s */
    sim_time_t to_last_ack;         /* 30 s */
    sim_time_t to_time_wait;        /* 120 s */
    sim_time_t to_close;            /* 10 s */
    sim_time_t to_unacknowledged;   /* 300 s */
    uint16_t nat_port_lo, nat_port_hi;  /* MASQUERADE/SNAT source port range, 1024..65535 */
} nf_params_t;
void nf_params_default(nf_params_t *p);

/* The node's netfilter, created on first use with default params. */
nf_t *nf_get(net_node_t *node);
void nf_free(nf_t *nf);
void nf_set_params(nf_t *nf, const nf_params_t *p);

/* Runs hook h on p. in/out are the input and output interfaces (NULL where Linux has
 * none). Returns NF_ACCEPT to continue, or NF_STOLEN when the packet was consumed: dropped
 * (recorded with net_drop: reason "nf-drop" naming table/chain/rule, or "ct-invalid"),
 * or rejected (an RST or ICMP error was sent back, then the packet dropped). May rewrite
 * p's addresses and ports (NAT). Fast path: a node with no rules and conntrack off
 * returns NF_ACCEPT at once. */
int nf_hook(nf_t *nf, enum nf_hook h, pkt_t *p, net_iface_t *in, net_iface_t *out);

/* Rules. `table` is "nat" or "filter" ("mangle" and "raw" are accepted and empty).
 * nf_exec runs one iptables command line without the leading "iptables":
 *   "-t nat -N KUBE-SVC-X", "-A KUBE-SVC-X -m statistic --mode random --probability 0.5
 *    -j KUBE-SEP-Y", "-I INPUT 1 -p tcp --dport 80 -j DROP", "-F CHAIN", "-X CHAIN",
 *   "-P FORWARD DROP".
 * nf_restore loads iptables-restore text (*table / :CHAIN POLICY [p:b] / -A ... / COMMIT);
 * each table it names is replaced whole, like iptables-restore without --noflush.
 * On error both return LB_EPARSE / LB_ENOENT and write "line N: message" into err. */
int nf_exec(nf_t *nf, const char *cmdline, char *err, size_t errlen);
int nf_restore(nf_t *nf, const char *text, char *err, size_t errlen);
/* Prints all tables in iptables-save format, with packet/byte counters when counters. */
void nf_save(const nf_t *nf, FILE *out, bool counters);
/* Packet count of rule number `rule` (1-based) in table/chain; -1 if absent. Tests use it. */
int64_t nf_rule_packets(const nf_t *nf, const char *table, const char *chain, int rule);
size_t nf_rule_count(const nf_t *nf);

/* Conntrack. */
size_t nf_ct_count(const nf_t *nf);
/* Prints the table like `conntrack -L`. */
void nf_ct_dump(const nf_t *nf, FILE *out);
/* Looks up the entry a packet with this tuple would match; NULL if none. */
const ct_entry_t *nf_ct_lookup(const nf_t *nf, uint8_t proto, uint32_t src, uint16_t sport,
                               uint32_t dst, uint16_t dport);
/* Describes an entry (both tuples, TCP state, NAT) into buf; returns buf. */
const char *nf_ct_str(const ct_entry_t *e, char *buf, size_t n);
/* Removes every entry (conntrack -F). */
void nf_ct_flush(nf_t *nf);

#endif
