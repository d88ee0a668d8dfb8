/* lb.c -- the allocation wrapper, the error message table, string hashing, the hash
 * index and IPv4 helpers declared in lb.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lb.h"

static const char *const messages[LB_ERR_COUNT_] = {
    [0] = "success",
    [-LB_EINVAL] = "invalid argument",
    [-LB_ENOENT] = "no such object",
    [-LB_EEXIST] = "already exists",
    [-LB_ENOMEM] = "resource exhausted",
    [-LB_EADDRINUSE] = "address already in use",
    [-LB_EADDRNOTAVAIL] = "no free local port",
    [-LB_ECONNREFUSED] = "connection refused",
    [-LB_ETIMEDOUT] = "timed out",
    [-LB_ECONNRESET] = "connection reset",
    [-LB_EHOSTUNREACH] = "host unreachable",
    [-LB_ESTATE] = "invalid state",
    [-LB_EPARSE] = "parse error",
    [-LB_EIO] = "input/output error",
    [-LB_ECLOSED] = "connection closed by peer",
    [-LB_EINTR] = "interrupted",
    [-LB_ETLS] = "TLS handshake failed",
    [-LB_ENETUNREACH] = "network unreachable",
    [-LB_EACCES] = "permission denied",
};

const char *lb_strerror(int rc)
{
    if (rc > 0 || -rc >= LB_ERR_COUNT_ || !messages[-rc])
        return "unknown error";
    return messages[-rc];
}

static void oom(size_t n)
{
    fprintf(stderr, "lbchain: out of memory allocating %zu bytes\n", n);
    abort();
}

void *lb_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *lb_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *lb_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *lb_strdup(const char *s)
{
    return lb_strndup(s, strlen(s));
}

char *lb_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = lb_malloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

char *lb_sprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) oom(strlen(fmt));
    return s;
}

void lb_free(void *p)
{
    free(p);
}

void lb_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

uint64_t lb_hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;           /* FNV-1a 64 */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- the hash index: slots[i].pos is a position + 1 (0: empty); an entry sits at or
 * after its home slot (mix(hash) & mask) with no empty slot between. ---- */

static size_t index_home(const lb_index_t *ix, uint64_t hash)
{
    return (size_t)lb_mix64(hash) & (ix->cap - 1);
}

static void index_put(lb_index_t *ix, uint64_t hash, size_t pos)
{
    size_t i = index_home(ix, hash);
    while (ix->slots[i].pos) i = (i + 1) & (ix->cap - 1);
    ix->slots[i].hash = hash;
    ix->slots[i].pos = pos + 1;
    ix->n++;
}

void lb_index_add(lb_index_t *ix, uint64_t hash, size_t pos)
{
    if ((ix->n + 1) * 2 > ix->cap) {
        struct lb_index_slot *old = ix->slots;
        size_t ocap = ix->cap;
        ix->cap = ocap ? ocap * 2 : 16;
        ix->slots = lb_calloc(ix->cap, sizeof *ix->slots);
        ix->n = 0;
        for (size_t i = 0; i < ocap; i++)
            if (old[i].pos) index_put(ix, old[i].hash, old[i].pos - 1);
        lb_free(old);
    }
    index_put(ix, hash, pos);
}

void lb_index_remove(lb_index_t *ix, uint64_t hash, size_t pos)
{
    if (!ix->cap) return;
    size_t mask = ix->cap - 1, i = index_home(ix, hash);
    while (ix->slots[i].pos && !(ix->slots[i].hash == hash && ix->slots[i].pos == pos + 1))
        i = (i + 1) & mask;
    if (!ix->slots[i].pos) return;
    /* backward shift: move later entries of the run into the hole when their home allows */
    for (size_t j = (i + 1) & mask; ix->slots[j].pos; j = (j + 1) & mask) {
        size_t h = index_home(ix, ix->slots[j].hash);
        if (((j - h) & mask) >= ((j - i) & mask)) {
            ix->slots[i] = ix->slots[j];
            i = j;
        }
    }
    ix->slots[i].pos = 0;
    ix->n--;
}

size_t lb_index_next(const lb_index_t *ix, uint64_t hash, size_t *it)
{
    if (!ix->cap) return LB_INDEX_NONE;
    for (size_t i = *it; ix->slots[i].pos; i = (i + 1) & (ix->cap - 1))
        if (ix->slots[i].hash == hash) {
            *it = (i + 1) & (ix->cap - 1);
            return ix->slots[i].pos - 1;
        }
    return LB_INDEX_NONE;
}

size_t lb_index_first(const lb_index_t *ix, uint64_t hash, size_t *it)
{
    *it = ix->cap ? index_home(ix, hash) : 0;
    return lb_index_next(ix, hash, it);
}

void lb_index_clear(lb_index_t *ix)
{
    if (ix->cap) memset(ix->slots, 0, ix->cap * sizeof *ix->slots);
    ix->n = 0;
}

void lb_index_free(lb_index_t *ix)
{
    lb_free(ix->slots);
    ix->slots = NULL;
    ix->cap = ix->n = 0;
}

int lb_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s) return LB_EPARSE;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return LB_EPARSE;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return LB_EPARSE;     /* would overflow */
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int lb_ip_parse(const char *s, uint32_t *addr)
{
    unsigned a[4];
    int n = 0;
    char tail;
    if (sscanf(s, "%3u.%3u.%3u.%3u%n%c", &a[0], &a[1], &a[2], &a[3], &n, &tail) != 4 ||
        s[n] != '\0')
        return LB_EPARSE;
    for (int i = 0; i < 4; i++)
        if (a[i] > 255) return LB_EPARSE;
    *addr = (a[0] << 24) | (a[1] << 16) | (a[2] << 8) | a[3];
    return 0;
}

int lb_cidr_parse(const char *s, uint32_t *addr, int *plen)
{
    const char *slash = strchr(s, '/');
    char ip[32];
    if (!slash) {
        *plen = 32;
        return lb_ip_parse(s, addr);
    }
    size_t n = (size_t)(slash - s);
    if (n >= sizeof ip) return LB_EPARSE;
    memcpy(ip, s, n);
    ip[n] = '\0';
    char *end;
    long len = strtol(slash + 1, &end, 10);
    if (end == slash + 1 || *end || len < 0 || len > 32) return LB_EPARSE;
    if (lb_ip_parse(ip, addr)) return LB_EPARSE;
    *plen = (int)len;
    return 0;
}

const char *lb_ip_str(uint32_t a, char buf[16])
{
    snprintf(buf, 16, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
    return buf;
}
