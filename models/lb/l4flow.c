/* l4flow.c -- the 5-tuple flow index of the L4 load balancers (include/l4flow.h).
 *
 * Data structure: a power-of-two array of slots, each holding its key, the key's hash and
 * value + 1 (0: empty). A key lives in the first free slot at or after hash & mask
 * (linear probing). Invariant: between a key's home slot and its slot there is no empty
 * slot. Deletion keeps it by backward shift: the later members of the cluster whose home
 * does not lie cyclically in (hole, j] move into the hole. The table doubles before it
 * gets more than half full, so clusters stay short. */
#include <assert.h>
#include <string.h>
#include "l4flow.h"

#define L4FLOW_CAP_MIN 64

struct l4flow_slot {
    l4flow_key_t key;
    uint32_t value1;            /* value + 1; 0: empty */
    uint64_t hash;
};

uint64_t l4flow_key_hash(const l4flow_key_t *k, uint64_t seed)
{
    uint64_t a = (uint64_t)k->src << 32 | k->dst;
    uint64_t b = (uint64_t)k->sport << 32 | (uint64_t)k->dport << 16 |
                 (uint64_t)k->proto << 8 | k->tag;
    return lb_mix64(lb_mix64(a ^ seed) ^ b);
}

static bool key_eq(const l4flow_key_t *a, const l4flow_key_t *b)
{
    return a->src == b->src && a->dst == b->dst && a->sport == b->sport &&
           a->dport == b->dport && a->proto == b->proto && a->tag == b->tag;
}

void l4flow_index_init(l4flow_index_t *ix, uint64_t seed)
{
    memset(ix, 0, sizeof *ix);
    ix->seed = seed;
}

void l4flow_index_free(l4flow_index_t *ix)
{
    lb_free(ix->slots);
    ix->slots = NULL;
    ix->cap = ix->used = 0;
}

size_t l4flow_index_count(const l4flow_index_t *ix) { return ix->used; }

/* The slot holding k, or the empty slot where it would go. cap > 0. */
static size_t slot_find(const l4flow_index_t *ix, const l4flow_key_t *k, uint64_t h)
{
    size_t mask = ix->cap - 1, i = h & mask;
    while (ix->slots[i].value1) {
        if (ix->slots[i].hash == h && key_eq(&ix->slots[i].key, k)) return i;
        i = (i + 1) & mask;
    }
    return i;
}

static void grow(l4flow_index_t *ix)
{
    size_t ocap = ix->cap, ncap = ocap ? ocap * 2 : L4FLOW_CAP_MIN;
    l4flow_slot_t *old = ix->slots;
    ix->slots = lb_calloc(ncap, sizeof *ix->slots);
    ix->cap = ncap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].value1) continue;
        size_t j = old[i].hash & (ncap - 1);
        while (ix->slots[j].value1) j = (j + 1) & (ncap - 1);
        ix->slots[j] = old[i];
    }
    lb_free(old);
}

int64_t l4flow_index_get(const l4flow_index_t *ix, const l4flow_key_t *k)
{
    if (!ix->used) return -1;
    size_t i = slot_find(ix, k, l4flow_key_hash(k, ix->seed));
    return ix->slots[i].value1 ? (int64_t)ix->slots[i].value1 - 1 : -1;
}

int l4flow_index_put(l4flow_index_t *ix, const l4flow_key_t *k, uint32_t value)
{
    assert(value < UINT32_MAX);
    if ((ix->used + 1) * 2 > ix->cap) grow(ix);
    uint64_t h = l4flow_key_hash(k, ix->seed);
    size_t i = slot_find(ix, k, h);
    if (ix->slots[i].value1) return LB_EEXIST;
    ix->slots[i].key = *k;
    ix->slots[i].hash = h;
    ix->slots[i].value1 = value + 1;
    ix->used++;
    return 0;
}

int l4flow_index_del(l4flow_index_t *ix, const l4flow_key_t *k)
{
    if (!ix->used) return LB_ENOENT;
    size_t mask = ix->cap - 1;
    size_t i = slot_find(ix, k, l4flow_key_hash(k, ix->seed));
    if (!ix->slots[i].value1) return LB_ENOENT;
    ix->slots[i].value1 = 0;
    for (size_t j = (i + 1) & mask; ix->slots[j].value1; j = (j + 1) & mask) {
        size_t home = ix->slots[j].hash & mask;
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (stays) continue;
        ix->slots[i] = ix->slots[j];
        ix->slots[j].value1 = 0;
        i = j;
    }
    ix->used--;
    return 0;
}
