/* netfilter.h -- a node's netfilter: the five hooks, the nat and filter tables with
 * built-in and user chains, rules in iptables syntax, and conntrack with NAT reversal.
 * kube-proxy writes its rules here as iptables-restore text, exactly as proxier.go does,
 * and `--dump-iptables NODE` prints them back in iptables-save form.
 *
 * Hook -> tables, in Linux priority order (net/netfilter, nf_nat_core.c):
 *   PREROUTING : raw, conntrack in, mangle, nat (DNAT, only for a connection's first packet)
 *   INPUT      : mangle, filter, nat (SNAT), conntrack confirm
 *   FORWARD    : mangle, filter
 *   OUTPUT     : raw, conntrack in, mangle, nat (DNAT), filter
 *   POSTROUTING: mangle, nat (SNAT / MASQUERADE, first packet only), conntrack confirm
 * Later packets of a connection get the NAT binding from conntrack; replies are
 * reverse-translated. Conntrack runs when params.conntrack is set, or (latched, like the
 * kernel module) once the nat table has a rule or any rule uses -m conntrack / -m state.
 * Supported rule syntax: see the comment at the top of src/net/netfilter.c. */
#ifndef NETFILTER_H
#define NETFILTER_H

#include <stdio.h>
#include "net.h"

typedef struct nf nf_t;
typedef struct ct_entry ct_entry_t;

enum nf_hook { NF_PREROUTING, NF_INPUT, NF_FORWARD, NF_OUTPUT, NF_POSTROUTING, NF_HOOK_COUNT };
enum nf_verdict { NF_ACCEPT = 0, NF_STOLEN = 1 };  /* STOLEN: consumed (dropped/rejected) */
enum ct_state { CT_NONE = 0, CT_NEW, CT_ESTABLISHED, CT_RELATED, CT_INVALID, CT_UNTRACKED };
/* "NEW", "ESTABLISHED", ... ("NONE" for CT_NONE). */
const char *nf_ct_state_name(int state);

/* A conntrack tuple (ICMP: ports 0). Host byte order like everything else. */
typedef struct nf_tuple {
    uint32_t src, dst;
    uint16_t sport, dport;
    uint8_t proto;
} nf_tuple_t;

/* Tunables with Linux defaults (Documentation/networking/nf_conntrack-sysctl.rst,
 * net/netfilter/nf_conntrack_proto_{tcp,udp,icmp}.c, net/netfilter/xt_recent.c). */
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
    sim_time_t to_unacknowledged;   /* 300 s (also tcp_timeout_max_retrans) */
    uint16_t nat_port_lo, nat_port_hi;  /* MASQUERADE/SNAT source port range, 1024..65535 */
    /* additions beyond the original contract */
    sim_time_t to_udp;              /* nf_conntrack_udp_timeout = 30 s */
    sim_time_t to_udp_stream;       /* nf_conntrack_udp_timeout_stream = 120 s */
    sim_time_t to_icmp;             /* nf_conntrack_icmp_timeout = 30 s */
    int tcp_max_retrans;            /* nf_conntrack_tcp_max_retrans = 3 */
    sim_time_t sweep_interval;      /* how often expired entries are reaped: 10 s (the
                                     * model's choice; expiry itself is exact, on lookup) */
    int recent_list_tot;            /* xt_recent ip_list_tot = 100 addresses per list */
    int ct_max;                     /* nf_conntrack_max: a new connection finding this many
                                     * entries is dropped ("table full"); 0: no limit.
                                     * Default NF_CT_MAX_DEFAULT */
    bool linear;                    /* evaluate every rule in turn, without the chains'
                                     * dispatch index (same verdicts, counters and rule
                                     * counts, only slower; tests compare the two).
                                     * Default false */
} nf_params_t;
/* nf_conntrack_init_start(): a hash of 262144 buckets on a 64-bit machine with more than
 * 4 GB of memory (every node size clusters use), nf_conntrack_max = the bucket count
 * (measured on 6.18: nf_conntrack_buckets and nf_conntrack_max both 262144). */
#define NF_CT_MAX_DEFAULT 262144
void nf_params_default(nf_params_t *p);
const nf_params_t *nf_params(const nf_t *nf);

/* The node's netfilter, created on first use with default params. */
nf_t *nf_get(net_node_t *node);
void nf_free(nf_t *nf);
void nf_set_params(nf_t *nf, const nf_params_t *p);

/* Runs hook h on p. in/out are the input and output interfaces (NULL where Linux has
 * none). Returns NF_ACCEPT to continue, or NF_STOLEN when the packet was consumed: dropped
 * (recorded with net_drop: reason "nf-drop" with a detail naming table/hook/chain/rule and
 * the rule text, e.g. "filter/FORWARD -> KUBE-FORWARD rule 1: -m conntrack --ctstate
 * INVALID -j DROP"; reason "ct-invalid" when that rule matched on conntrack state and the
 * packet was INVALID; "ct-clash" when a new entry could not be confirmed), or rejected
 * (reason "nf-reject": an RST or ICMP error was sent back first). May rewrite p's
 * addresses and ports (NAT). Fast path: a node with no rules and conntrack off returns
 * NF_ACCEPT at once; rule evaluation never allocates or formats unless tracing. */
int nf_hook(nf_t *nf, enum nf_hook h, pkt_t *p, net_iface_t *in, net_iface_t *out);

/* Rules. `table` is "filter", "nat", "mangle" or "raw" (the last two are evaluated at
 * their hooks too, with the generic targets; nothing else populates them).
 * nf_exec runs one iptables command line without the leading "iptables":
 *   "-t nat -N KUBE-SVC-X", "-A KUBE-SVC-X -m statistic --mode random --probability 0.5
 *    -j KUBE-SEP-Y", "-I INPUT 1 -p tcp --dport 80 -j DROP", "-F CHAIN", "-X CHAIN",
 *   "-P FORWARD DROP".
 * nf_restore loads iptables-restore text (*table / :CHAIN POLICY [p:b] / -A ... / COMMIT);
 * each table it names is replaced whole, like iptables-restore without --noflush.
 * "-C CHAIN rulespec" returns 0 if the rule exists, else LB_ENOENT; "-R CHAIN N" replaces.
 * On error they return LB_EPARSE (syntax, invalid rule), LB_ENOENT (no such chain, target
 * or rule) or LB_EEXIST (-N of an existing chain) and write "line N: message" into err
 * (line 1 for nf_exec). nf_exec then changed nothing; nf_restore keeps the tables whose
 * COMMIT came before the error and discards the one being parsed. */
int nf_exec(nf_t *nf, const char *cmdline, char *err, size_t errlen);
int nf_restore(nf_t *nf, const char *text, char *err, size_t errlen);
/* As nf_restore, with flags: NF_RESTORE_NOFLUSH behaves like `iptables-restore --noflush`
 * (what kube-proxy runs): a table is not flushed; each `:CHAIN` line flushes (or creates)
 * that user chain, built-in chains keep their rules. Each table is applied at its COMMIT;
 * an error discards the table being parsed and stops (earlier COMMITs stay applied). */
enum { NF_RESTORE_NOFLUSH = 1, NF_RESTORE_SHARED = 2 };
/* NF_RESTORE_SHARED: the node's tables may be shared with other nodes of the network
 * whose tables have the same content (copy-on-write; counters stay per node, and
 * nf_save, nf_rule_packets and the verdicts are exactly those of private tables), and a
 * table section applied before to the same table is not parsed again. For callers that
 * write the same rules on many nodes (kube-proxy). */
int nf_restore_flags(nf_t *nf, const char *text, int flags, char *err, size_t errlen);
/* nf_restore_flags with NF_RESTORE_SHARED, where the caller names the text with a key
 * (128 bits, e.g. a hash of what the text was made from): a section is remembered by
 * (table before, key, its position in the text) instead of a hash of its bytes, so a
 * repeated restore costs nothing per byte. Two calls with the same key must pass the same
 * text. */
int nf_restore_keyed(nf_t *nf, const char *text, int flags, const uint64_t key[2], char *err,
                     size_t errlen);
/* True when the node's table (by name) is a shared copy (NF_RESTORE_SHARED). Tests. */
bool nf_table_shared(const nf_t *nf, const char *table);
/* Prints all tables in iptables-save format, with packet/byte counters when counters. */
void nf_save(const nf_t *nf, FILE *out, bool counters);
/* Packet count of rule number `rule` (1-based) in table/chain; -1 if absent. Tests use it. */
int64_t nf_rule_packets(const nf_t *nf, const char *table, const char *chain, int rule);
size_t nf_rule_count(const nf_t *nf);

/* Rules traversed per new connection. For each packet that creates a conntrack entry at
 * a node (a connection's first packet there), the number of rules the kernel evaluates
 * for it on that node, over every table and hook it passes: ipt_do_table() tries each
 * rule of a chain in order until one matches, so a rule counts whether it matched or
 * not; the end of a chain and the policy are not rules. The engine's dispatch index
 * skips rules a packet cannot match without evaluating them, but counts them, so the
 * figure is the linear walk's. A connection whose first packet the rules drop or reject
 * counts too. Needs conntrack (no entry, no sample). conns is the number of samples,
 * rules their sum; p50/p99 come from a log-linear histogram (exact below 64; above, the
 * largest value of the quantile's bucket, at most 1/64 high, and never above max); max
 * is exact. All 0 without samples. */
typedef struct nf_walk_summary {
    uint64_t conns, rules;
    double mean;
    uint64_t p50, p99, max;
} nf_walk_summary_t;
void nf_walk_node(const nf_t *nf, nf_walk_summary_t *out);
/* The same over every node of net that has netfilter. */
void nf_walk_net(const net_t *net, nf_walk_summary_t *out);
/* The same over the nodes that have ever loaded an nftables ruleset (nft true: every rule
 * evaluated there, nftables and iptables, counts) or never have (nft false). */
void nf_walk_net_nft(const net_t *net, bool nft, nf_walk_summary_t *out);

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

/* Entry accessors (tests and --explain). TCP states follow nf_conntrack_proto_tcp.c. */
enum nf_ct_tcp_state { NF_TCP_NONE, NF_TCP_SYN_SENT, NF_TCP_SYN_RECV, NF_TCP_ESTABLISHED,
                       NF_TCP_FIN_WAIT, NF_TCP_CLOSE_WAIT, NF_TCP_LAST_ACK, NF_TCP_TIME_WAIT,
                       NF_TCP_CLOSE, NF_TCP_SYN_SENT2, NF_TCP_STATE_COUNT };
int nf_ct_tcp_state(const ct_entry_t *e);               /* NF_TCP_NONE for UDP/ICMP */
const char *nf_ct_tcp_state_name(int state);            /* "ESTABLISHED", ... */
/* dir 0: original tuple, 1: reply tuple (after NAT, as conntrack -L prints it). */
nf_tuple_t nf_ct_tuple(const ct_entry_t *e, int dir);
sim_time_t nf_ct_expires(const ct_entry_t *e);          /* absolute time */
bool nf_ct_is_snat(const ct_entry_t *e);
bool nf_ct_is_dnat(const ct_entry_t *e);
bool nf_ct_seen_reply(const ct_entry_t *e);
bool nf_ct_assured(const ct_entry_t *e);
/* After nf_hook(), p->ct_state holds the packet's conntrack state (enum ct_state) and
 * p->ct its entry (NULL when INVALID or untracked), for the rest of that node's path. */

#endif
