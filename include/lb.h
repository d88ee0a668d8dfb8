/* lb.h -- project-wide basics: the one allocation wrapper, error codes and their
 * message table, a growable array, and small hashing helpers. Every module includes it.
 * Convention (STYLE.md): functions return 0 or a negative LB_E* code; out-of-memory aborts. */
#ifndef LB_H
#define LB_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

/* lbchain's version: `sim --version`, and part of every run id (include/sweep.h). */
#define LB_VERSION "0.1.0"

/* Error codes. 0 is success; every failure is negative. Messages: lb_strerror(). */
enum {
    LB_OK = 0,
    LB_EINVAL = -1,       /* invalid argument */
    LB_ENOENT = -2,       /* no such object */
    LB_EEXIST = -3,       /* already exists */
    LB_ENOMEM = -4,       /* out of a bounded resource (never malloc: that aborts) */
    LB_EADDRINUSE = -5,   /* local address/port already bound */
    LB_EADDRNOTAVAIL = -6,/* no free ephemeral port */
    LB_ECONNREFUSED = -7, /* RST or ICMP port-unreachable answering a SYN */
    LB_ETIMEDOUT = -8,    /* SYN or data retransmissions exhausted, or an app timeout */
    LB_ECONNRESET = -9,   /* RST on an established connection */
    LB_EHOSTUNREACH = -10,/* no route / ICMP host unreachable */
    LB_ESTATE = -11,      /* operation not valid in the object's current state */
    LB_EPARSE = -12,      /* malformed text input */
    LB_EIO = -13,         /* file or process I/O failed */
    LB_ECLOSED = -14,     /* peer closed the connection (EOF) */
    LB_EINTR = -15,       /* stopped by a signal (SIGINT/SIGTERM) before finishing */
    LB_ETLS = -16,        /* TLS handshake failed (alert, reset, bad certificate) */
    LB_ENETUNREACH = -17, /* no route at all / ICMP net unreachable (Linux ENETUNREACH) */
    LB_EACCES = -18,      /* a `prohibit` route on the sender (Linux connect(): EACCES) */
    LB_ERR_COUNT_ = 19
};
const char *lb_strerror(int rc);      /* never NULL; "unknown error" for unknown codes */

/* Allocation: these never return NULL; on exhaustion they print and abort(). */
void *lb_malloc(size_t n);
void *lb_calloc(size_t n, size_t size);
void *lb_realloc(void *p, size_t n);
char *lb_strdup(const char *s);
char *lb_strndup(const char *s, size_t n);
char *lb_sprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2))); /* caller frees */
void lb_free(void *p);
/* Formats a message into err (size errlen) if err is non-NULL and errlen > 0. */
void lb_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Growable array of T: declare `LB_VEC(int) v = {0};`, then lb_vec_push(&v, 3).
 * Elements live in v.v[0..v.n). Freed with lb_vec_free(&v). */
#define LB_VEC(T) struct { T *v; size_t n, cap; }
#define lb_vec_reserve(vec, want) do { \
        if ((want) > (vec)->cap) { size_t c_ = (vec)->cap ? (vec)->cap * 2 : 8; \
            while (c_ < (want)) c_ *= 2; \
            (vec)->v = lb_realloc((vec)->v, c_ * sizeof(*(vec)->v)); (vec)->cap = c_; } \
    } while (0)
#define lb_vec_push(vec, x) do { lb_vec_reserve((vec), (vec)->n + 1); \
        (vec)->v[(vec)->n++] = (x); } while (0)
#define lb_vec_free(vec) do { lb_free((vec)->v); (vec)->v = NULL; (vec)->n = (vec)->cap = 0; } while (0)

/* Hashing: 64-bit mixers (splitmix64 finaliser) and FNV-1a for strings. Deterministic
 * across runs and machines; never seeded from time or addresses. */
static inline uint64_t lb_mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    x ^= x >> 31; return x;
}
uint64_t lb_hash_str(const char *s);

/* An index from 64-bit hashes to positions in an array the caller keeps (the keys stay
 * there): open addressing, linear probing, doubling when half full, removal by backward
 * shift. Lookups visit every position stored under a hash; the caller compares keys:
 *     for (size_t it, p = lb_index_first(&ix, h, &it); p != LB_INDEX_NONE;
 *          p = lb_index_next(&ix, h, &it))
 *         if (strcmp(items[p].name, name) == 0) return &items[p];
 * A zeroed lb_index_t is empty and valid. Lookups and insertions cost O(1) expected. */
#define LB_INDEX_NONE ((size_t)-1)
typedef struct lb_index {
    struct lb_index_slot { uint64_t hash; size_t pos; } *slots;     /* pos + 1; 0: empty */
    size_t cap, n;
} lb_index_t;
void lb_index_add(lb_index_t *ix, uint64_t hash, size_t pos);
/* Removes the entry (hash, pos); a no-op when it is not there. */
void lb_index_remove(lb_index_t *ix, uint64_t hash, size_t pos);
size_t lb_index_first(const lb_index_t *ix, uint64_t hash, size_t *it);
size_t lb_index_next(const lb_index_t *ix, uint64_t hash, size_t *it);
void lb_index_clear(lb_index_t *ix);                 /* empty, keeps its memory */
void lb_index_free(lb_index_t *ix);                  /* empty, memory released */

/* A decimal integer from 0 to 2^64-1 (digits only: no sign, no spaces, no base prefix);
 * LB_EPARSE for anything else, including values that do not fit. */
int lb_parse_u64(const char *s, uint64_t *out);

/* IPv4 helpers; addresses are host byte order uint32_t everywhere in the project. */
int lb_ip_parse(const char *s, uint32_t *addr);                 /* "10.0.0.1" */
int lb_cidr_parse(const char *s, uint32_t *addr, int *plen);    /* "10.0.0.0/24" or bare */
const char *lb_ip_str(uint32_t addr, char buf[16]);             /* returns buf */
static inline uint32_t lb_prefix_mask(int plen) {
    return plen <= 0 ? 0 : plen >= 32 ? 0xffffffffu : ~((1u << (32 - plen)) - 1);
}

#endif
