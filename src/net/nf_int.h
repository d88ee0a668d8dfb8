/* nf_int.h -- private to netfilter.c and conntrack.c: the tables, chains and rules of a
 * node's netfilter, the conntrack entry and hash, and the calls between the rule engine
 * and conntrack/NAT. Nothing outside src/net/netfilter.c and conntrack.c includes it.
 *
 * Data structure: nf_t owns four tables (filter, nat, mangle, raw) by pointer, so that an
 * iptables-restore can build a new table aside and swap it in at COMMIT. A table owns its
 * chains (builtins first, in hook order); a chain owns a contiguous vector of rules. A
 * jump stores the target chain's pointer; a chain is only deleted when no rule jumps to it,
 * so the pointer stays valid. Conntrack entries live in a hash keyed by both tuples. */
#ifndef NF_INT_H
#define NF_INT_H

#include <gsl/gsl_rng.h>
#include "netfilter.h"

/* ---- tables, chains, rules ---------------------------------------------------------- */
enum nf_table_id { NF_TBL_FILTER, NF_TBL_NAT, NF_TBL_MANGLE, NF_TBL_RAW, NF_TBL_COUNT };

enum nf_target {
    NFT_NONE = 0,       /* no -j: count only */
    NFT_ACCEPT, NFT_DROP, NFT_RETURN, NFT_REJECT,
    NFT_DNAT, NFT_SNAT, NFT_MASQ, NFT_MARK,
    NFT_JUMP, NFT_GOTO
};

/* Match flags: which parts of a rule are present (nf_rule.m) and negated (nf_rule.inv). */
enum {
    NFM_SRC = 1u << 0, NFM_DST = 1u << 1, NFM_PROTO = 1u << 2, NFM_IN = 1u << 3,
    NFM_OUT = 1u << 4, NFM_SPORT = 1u << 5, NFM_DPORT = 1u << 6, NFM_MARK = 1u << 7,
    NFM_SRCTYPE = 1u << 8, NFM_DSTTYPE = 1u << 9, NFM_STAT = 1u << 10,
    NFM_CTSTATE = 1u << 11, NFM_STATE = 1u << 12, NFM_RECENT = 1u << 13,
    NFM_ICMPTYPE = 1u << 14
};

/* Match modules (-m NAME), kept in the order given so that evaluation and iptables-save
 * follow it, as xtables does. */
enum nf_mod {
    NF_MOD_TCP = 1, NF_MOD_UDP, NF_MOD_ICMP, NF_MOD_COMMENT, NF_MOD_MARK, NF_MOD_ADDRTYPE,
    NF_MOD_STATISTIC, NF_MOD_CONNTRACK, NF_MOD_STATE, NF_MOD_RECENT, NF_MOD_NFACCT
};
#define NF_MAX_MODS 12

/* xt_conntrack state bits (matching); the print order follows libxt_conntrack. */
enum {
    NF_CTS_INVALID = 1u << 0, NF_CTS_NEW = 1u << 1, NF_CTS_RELATED = 1u << 2,
    NF_CTS_ESTABLISHED = 1u << 3, NF_CTS_UNTRACKED = 1u << 4, NF_CTS_SNAT = 1u << 5,
    NF_CTS_DNAT = 1u << 6
};

/* addrtype bits (subset of RTN_* the model knows). */
enum { NF_AT_UNICAST = 1u << 0, NF_AT_LOCAL = 1u << 1, NF_AT_BROADCAST = 1u << 2,
       NF_AT_MULTICAST = 1u << 3 };

/* REJECT --reject-with. Values below 256 are ICMP codes of type 3. */
#define NF_REJECT_TCP_RESET 256

/* xt_recent commands. */
enum { NF_RECENT_SET = 1, NF_RECENT_RCHECK, NF_RECENT_UPDATE, NF_RECENT_REMOVE };

/* NAT target flags. */
enum { NF_NAT_HAS_PORT = 1u << 0, NF_NAT_RANDOM = 1u << 1, NF_NAT_RANDOM_FULLY = 1u << 2,
       NF_NAT_PERSISTENT = 1u << 3 };

typedef struct nf_chain nf_chain_t;
typedef struct nf_recent nf_recent_t;

typedef struct nf_rule {
    uint32_t m, inv;                /* NFM_* present / negated */
    uint32_t src, smask, dst, dmask;
    uint16_t sport[2], dport[2];    /* inclusive ranges */
    uint8_t proto;
    uint8_t src_type, dst_type;     /* NF_AT_* */
    uint8_t icmp_type;
    uint16_t ctstates;              /* NF_CTS_*: -m conntrack --ctstate */
    uint16_t states;                /* NF_CTS_*: -m state --state */
    uint32_t mark, mark_mask;
    uint32_t stat_prob;             /* probability * 2^31, as xt_statistic stores it */
    char in_if[16], out_if[16];     /* "+" suffix: prefix match */
    uint8_t mods[NF_MAX_MODS], nmods;
    /* recent */
    nf_recent_t *recent;
    uint8_t recent_cmd;
    bool recent_reap, recent_rdest;
    uint32_t recent_secs, recent_mask;
    char *comment;
    char *nfacct;
    /* target */
    uint8_t target;
    uint8_t nat_flags;
    uint16_t reject_with;
    nf_chain_t *jump;               /* NFT_JUMP / NFT_GOTO */
    uint32_t nat_addr;
    uint16_t nat_port[2];
    uint32_t xmark, xmask;          /* MARK: mark = (mark & ~xmask) ^ xmark */
    /* counters and the canonical text (iptables-save form without "-A CHAIN ") */
    uint64_t pkts, bytes;           /* a private table's; a shared one's are per node */
    char *text;
    uint32_t origin;                /* scratch (table_clone): position in the source
                                     * table's rule order, NF_NO_ORIGIN for a new rule */
} nf_rule_t;
#define NF_NO_ORIGIN UINT32_MAX

/* A chain's dispatch index (netfilter.c chain_index_build): for a chain of many rules,
 * the positions of the rules that match one exact (destination, protocol, destination
 * port) or one (protocol, destination port) with any destination -- kube-proxy's
 * KUBE-SERVICES, KUBE-NODEPORTS -- grouped by that key, and the positions of every other
 * rule. A packet can only match a rule listed under its own keys or among the others, so
 * the walk jumps between those candidates in rule order; the rules it jumps over are
 * counted as traversed, because the kernel evaluates (and rejects) each of them.
 * Invariant: rebuilt whenever nf->rules_gen moved since it was built (any rule change). */
typedef struct nf_cidx {
    struct nf_ckey { uint64_t key; uint32_t pos; } *ent;   /* sorted by (key, pos) */
    size_t nent;
    uint32_t *other;                /* positions of unclassified rules, ascending */
    size_t nother;
    lb_index_t ix;                  /* hash of key -> first ent of its run */
} nf_cidx_t;

struct nf_chain {
    char *name;
    int hook;                       /* builtin: enum nf_hook; user chain: -1 */
    uint8_t policy;                 /* NFT_ACCEPT or NFT_DROP (builtins) */
    uint64_t pkts, bytes;           /* policy counters */
    LB_VEC(nf_rule_t) rules;
    int mark_;                      /* scratch for graph walks */
    uint32_t hooks_;                /* scratch: hooks that reach this chain */
    uint32_t ord;                   /* shared tables: position of the first rule in the
                                     * table's rule order (nf->ctr index) */
    nf_cidx_t *idx;                 /* dispatch index, NULL: none (few rules) or stale */
    uint64_t idx_gen;               /* nf->rules_gen when idx was built; 0: never */
};

typedef struct nf_table {
    int id;
    bool touched;                   /* named by a command: iptables-save prints it */
    LB_VEC(nf_chain_t *) chains;    /* builtins first, then user chains in creation order */
    nf_chain_t *builtin[NF_HOOK_COUNT];
    nf_chain_t **slots;             /* open-addressing name index */
    size_t nslots;
    /* Sharing (netfilter.c "shared tables"): an interned table is immutable, used by
     * every node whose table has the same content, refs of them; counters live in each
     * node's nf->ctr. */
    bool interned;
    int refs;
    uint64_t chash;                 /* content hash (interned tables) */
    uint32_t nrules;                /* rules in table order (interned tables) */
} nf_table_t;

/* xt_recent table: a bounded list of addresses with their last-seen time. */
struct nf_recent {
    char *name;
    size_t n, cap;                  /* cap: params.recent_list_tot when created */
    struct { uint32_t addr; sim_time_t last; } *ent;   /* params.recent_list_tot slots */
};

/* ---- conntrack ----------------------------------------------------------------------- */
enum ct_dir { CT_DIR_ORIGINAL = 0, CT_DIR_REPLY = 1 };

/* Entry status bits (IPS_* in include/uapi/linux/netfilter/nf_conntrack_common.h). */
enum {
    CTS_CONFIRMED = 1u << 0, CTS_SEEN_REPLY = 1u << 1, CTS_ASSURED = 1u << 2,
    CTS_SRC_NAT = 1u << 3, CTS_DST_NAT = 1u << 4, CTS_SRC_NAT_DONE = 1u << 5,
    CTS_DST_NAT_DONE = 1u << 6, CTS_DYING = 1u << 7,
    CTS_PICKUP = 1u << 8            /* created by a mid-stream TCP segment (tcp_loose) */
};
enum nf_manip { NF_MANIP_SRC = 0, NF_MANIP_DST = 1 };

struct ct_hn {                      /* hash chain link, one per direction */
    struct ct_hn *next;
    uint8_t dir;
};

struct ct_entry {
    struct ct_hn hn[2];
    nf_tuple_t t[2];                /* [CT_DIR_ORIGINAL], [CT_DIR_REPLY] */
    ct_entry_t *prev, *next;        /* confirmed list (creation order) or limbo list */
    sim_time_t created, expires;
    uint64_t flow;
    uint64_t owner_pkt;             /* id of the packet that created it (unconfirmed) */
    uint32_t status;                /* CTS_* */
    uint8_t tcp_state;              /* enum nf_ct_tcp_state */
    uint8_t retrans, last_dir, last_index;
    uint8_t unack[2], end_valid[2];
    uint32_t end[2];                /* highest seq+len (+SYN/FIN) sent per direction */
    uint32_t last_seq, last_ack, last_end, last_win;
    bool on_limbo;
};

struct nf {
    net_node_t *node;
    net_t *net;
    sim_t *sim;
    nf_params_t params;
    nf_table_t *tables[NF_TBL_COUNT];
    bool ct_on;                     /* conntrack loaded (latched, like the module) */
    bool active;                    /* anything to do at all (fast path when false) */
    uint8_t hook_tables[NF_HOOK_COUNT];  /* bit per table with a non-trivial chain there */
    gsl_rng *rng;                   /* "nf:<node>": statistic, random-fully */
    LB_VEC(nf_recent_t *) recents;
    /* conntrack */
    struct ct_hn **buckets;
    size_t nbuckets, nconfirmed;
    ct_entry_t *head, *tail;        /* confirmed entries, oldest first */
    ct_entry_t *limbo;              /* unconfirmed or dying: not in the hash */
    ct_entry_t *pool;               /* free entries */
    LB_VEC(ct_entry_t *) chunks;
    sim_handle_t sweep;
    bool sweep_armed;
    uint64_t rules_gen;             /* bumped by every rule change (indexes go stale) */
    /* per-node counters of shared tables: ctr[t][2k], ctr[t][2k+1] are packets and bytes
     * of rule k in table order; pol[t][hook] the built-in chains' policy counters.
     * ctr[t] is NULL while tables[t] is private (its rules hold their counters). */
    uint64_t *ctr[NF_TBL_COUNT];
    uint64_t pol[NF_TBL_COUNT][NF_HOOK_COUNT][2];
    /* rules traversed by the packet that creates a connection (nf_walk_*) */
    uint64_t walk_pkt;              /* id of the packet being walked at this node */
    uint64_t walk_rules;            /* rules it has been evaluated against so far */
    uint64_t walk_conns, walk_sum;  /* connections sampled, their rules summed */
    uint64_t walk_max;
    uint64_t *walk_hist;            /* NF_WALK_BUCKETS counts, NULL until the first */
    struct nft_state *nft;          /* nftables.c: the node's nftables ruleset, NULL: none */
    /* nf_ct_attach emulation for the RST that REJECT sends */
    uint64_t attach_pkt;
    ct_entry_t *attach_ct;
    uint8_t attach_dir;
};

/* ---- shared between netfilter.c and conntrack.c ---------------------------------------- */
/* conntrack.c */
void ct_init(nf_t *nf);
void ct_fini(nf_t *nf);
/* Conntrack at PREROUTING/OUTPUT: sets p->ct, ct_dir, ct_state. Never drops. */
void ct_in(nf_t *nf, pkt_t *p, enum nf_hook h);
/* Confirms p's unconfirmed entry (INPUT/POSTROUTING). NF_STOLEN if it clashed and the
 * packet was dropped. */
int ct_confirm(nf_t *nf, pkt_t *p);
/* Frees e if it is still unconfirmed and was created by packet pkt_id, which is being
 * dropped (a dropped packet must not leave an entry behind). */
void ct_release_unconfirmed(nf_t *nf, ct_entry_t *e, uint64_t pkt_id);
/* NAT binding for a rule target (DNAT/SNAT/MASQUERADE) reached by p at hook h. Returns 0
 * or -1 when the binding cannot be made (MASQUERADE without an address). */
int ct_nat_setup(nf_t *nf, pkt_t *p, const nf_rule_t *r, enum nf_hook h,
                 const net_iface_t *out);
/* After the nat table ran (or did not): null binding if none, then translate p. */
void ct_nat_finish(nf_t *nf, pkt_t *p, enum nf_hook h);
/* Applies the hook's manip to an established/related packet without running the table. */
void ct_nat_packet(nf_t *nf, pkt_t *p, enum nf_hook h);
bool ct_nat_done(const ct_entry_t *e, enum nf_hook h);
/* The xt_conntrack state bits of p. */
uint16_t ct_state_bits(const pkt_t *p);

/* netfilter.c */
const char *nf_hook_name(enum nf_hook h);
/* For nftables.c: drops p as a rule's DROP does (reason "nf-drop", detail naming the
 * rule), or rejects it as REJECT does (with: an ICMP code of type 3, or
 * NF_REJECT_TCP_RESET). Both return NF_STOLEN. */
int nf_drop_(nf_t *nf, pkt_t *p, const char *reason, const char *detail);
int nf_reject_(nf_t *nf, pkt_t *p, uint16_t with, const char *detail);
/* nftables.c: frees a node's nftables state (NULL-safe). */
struct nft_state;
void nft_state_free_(struct nft_state *st);
/* Runs the node's nftables filter base chains of hook h whose priority is in [lo, hi),
 * in priority order. NF_ACCEPT, or NF_STOLEN when one dropped or rejected p. */
int nft_filter_(nf_t *nf, enum nf_hook h, int lo, int hi, pkt_t *p, net_iface_t *in,
                net_iface_t *out);
/* Runs the nat base chains of hook h for a connection's first packet; *bound tells that a
 * dnat/masquerade statement made the binding (ct_nat_setup). NF_ACCEPT or NF_STOLEN. */
int nft_nat_(nf_t *nf, enum nf_hook h, pkt_t *p, net_iface_t *in, net_iface_t *out,
             bool *bound);
static inline enum nf_manip nf_hook_manip(enum nf_hook h)
{
    return (h == NF_PREROUTING || h == NF_OUTPUT) ? NF_MANIP_DST : NF_MANIP_SRC;
}

#endif
