/* l4flow.h -- the flow index shared by the cloud L4 load balancers (Azure LB, AWS NLB): a
 * hash map from a connection's 5-tuple, plus a small tag so that one table can hold
 * several keys per flow (the client's tuple and the NAT'd reply tuple), to the index of
 * the caller's flow record.
 *
 * Open addressing with linear probing and backward-shift deletion, so lookups never meet
 * tombstones; it doubles when half full. The hash is lb_mix64 over the tuple and a seed
 * (deterministic: never addresses or time). The caller owns its flow records and their
 * lifetime; the index only maps keys to uint32_t values. */
#ifndef L4FLOW_H
#define L4FLOW_H

#include "lb.h"

typedef struct l4flow_key {
    uint32_t src, dst;
    uint16_t sport, dport;
    uint8_t proto;
    uint8_t tag;                /* the caller's key space (e.g. 0 forward, 1 reply) */
} l4flow_key_t;

static inline l4flow_key_t l4flow_key(uint32_t src, uint16_t sport, uint32_t dst,
                                      uint16_t dport, uint8_t proto, uint8_t tag)
{
    l4flow_key_t k = {.src = src, .dst = dst, .sport = sport, .dport = dport,
                      .proto = proto, .tag = tag};
    return k;
}

typedef struct l4flow_slot l4flow_slot_t;   /* private */

/* Zero-initialise, or l4flow_index_init(); free with l4flow_index_free(). */
typedef struct l4flow_index {
    l4flow_slot_t *slots;
    size_t cap, used;
    uint64_t seed;
} l4flow_index_t;

void l4flow_index_init(l4flow_index_t *ix, uint64_t seed);
void l4flow_index_free(l4flow_index_t *ix);
/* The value stored for k, or -1. */
int64_t l4flow_index_get(const l4flow_index_t *ix, const l4flow_key_t *k);
/* Maps k to value. LB_EEXIST (nothing changed) when k is already present. */
int l4flow_index_put(l4flow_index_t *ix, const l4flow_key_t *k, uint32_t value);
/* Removes k. LB_ENOENT when absent. */
int l4flow_index_del(l4flow_index_t *ix, const l4flow_key_t *k);
size_t l4flow_index_count(const l4flow_index_t *ix);
/* The index's hash of a key (stable for a given seed). */
uint64_t l4flow_key_hash(const l4flow_key_t *k, uint64_t seed);

#endif
