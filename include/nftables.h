/* nftables.h -- a node's nftables ruleset (family ip): tables, base chains at their hooks
 * and priorities, regular chains, named sets and verdict maps, and the rule expressions
 * kube-proxy's nftables mode writes (pkg/proxy/nftables/proxier.go). Rulesets are loaded
 * as `nft -f` transaction text and printed back as `nft list ruleset` does. The rules run
 * inside the node's netfilter (netfilter.h): filter chains at their priority among the
 * iptables tables, nat chains through conntrack's NAT bindings exactly as the iptables nat
 * table does, and every rule evaluated counts in the node's rules per new connection.
 * Supported syntax: see the comment at the top of src/net/nftables.c. */
#ifndef NFTABLES_H
#define NFTABLES_H

#include <stdio.h>
#include "net.h"
#include "netfilter.h"

/* Applies an `nft -f` transaction to the node's ruleset, all or nothing: on error the
 * ruleset is unchanged and err holds "line N: message". Returns 0, LB_EPARSE (syntax,
 * unsupported expression or family), LB_ENOENT (no such table, chain, set or map) or
 * LB_EEXIST (a chain or set added twice with different properties). */
int nft_apply(nf_t *nf, const char *text, char *err, size_t errlen);

/* Rulesets shared between nodes. kube-proxy writes the same tables on every node of a
 * cluster; a cache remembers the ruleset a standalone transaction text (one that builds
 * its tables from nothing) produces, under the caller's 128-bit key for that text, and
 * every node that applies the same key uses the same immutable ruleset: the verdicts are
 * those of a private copy. A later nft_apply on such a node that only changes set
 * elements (`flush set`, `add element`, `delete element`) gives the node its own copy of
 * those sets; anything else gives it a private copy of the ruleset first. The cache is
 * owned by the caller; free it after every node that used it (nf_free). */
typedef struct nft_cache nft_cache_t;
nft_cache_t *nft_cache_new(void);
void nft_cache_free(nft_cache_t *c);                    /* NULL-safe */
/* Replaces the node's whole ruleset with the result of text applied to an empty one,
 * taken from the cache when it has key (the text is then not read), else built, stored
 * and used. Returns as nft_apply; on error nothing changes. */
int nft_apply_shared(nf_t *nf, nft_cache_t *c, const uint64_t key[2], const char *text,
                     char *err, size_t errlen);
/* True when the cache has a ruleset for key (nft_apply_shared will not read the text: it
 * may be NULL). */
bool nft_cache_has(const nft_cache_t *c, const uint64_t key[2]);

/* Removes every table (nft flush ruleset). */
void nft_flush_ruleset(nf_t *nf);
/* True when the node has at least one nftables table. */
bool nft_active(const nf_t *nf);
/* Prints the ruleset as `nft list ruleset` does (tables in creation order; in a table its
 * sets and maps, then its chains, each in creation order; a set's elements sorted by key;
 * priorities by their standard names where nft uses them). Nothing for no tables. */
void nft_list(const nf_t *nf, FILE *out);
/* Number of rules over all tables and chains. Tests. */
size_t nft_rule_count(const nf_t *nf);
/* Elements in set or map `name` of table `table` as the node sees it; -1 if absent. */
long nft_set_size(const nf_t *nf, const char *table, const char *name);

#endif
