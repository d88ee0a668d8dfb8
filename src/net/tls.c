/* tls.c -- TLS on the simulated TCP (include/tls.h): certificates and their checks, the
 * client and server handshake state machines, and the records each flight is made of.
 *
 * Handshakes (one message per flight; "cpu" is the configured CPU time, a delay):
 *   TLS 1.2 (RFC 5246 7.3, full handshake with ECDHE):
 *     C: ClientHello ------------------------------------------------>  S: choose chain
 *     C: verify (cpu) <-- ServerHello Certificate ServerKeyExchange      (cpu)
 *                         ServerHelloDone ------------------------------
 *     C: ClientKeyExchange ChangeCipherSpec Finished ---------------->
 *     C: done, sends the request <-- ChangeCipherSpec Finished --------  S: done
 *   TLS 1.3 (RFC 8446 2, 1-RTT):
 *     C: ClientHello (key_share) ------------------------------------>  S: choose chain
 *     C: verify (cpu) <-- ServerHello ChangeCipherSpec {EncryptedExtensions Certificate
 *                         CertificateVerify Finished} -----------------  (cpu)
 *     C: done: {Finished} and the request right behind it ---------->  S: done
 * Client states: HELLO (waiting for TCP) -> WAIT_SERVER -> (1.2) WAIT_FINISHED -> DONE.
 * Server states: WAIT_HELLO -> WAIT_FINISHED -> DONE. Any -> FAILED (error callback once).
 * A server flight's certificate is checked as OpenSSL's verify with a host name does:
 * validity dates, a chain to a trusted root, then the name; the failure's alert goes out
 * before the close (ssl3_send_alert; X509_V_ERR_* -> alert as ssl_verify_alarm_type). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include "tls.h"

typedef LB_VEC(uint8_t) buf_t;

/* ---- certificates ------------------------------------------------------------------------ */
struct tls_cert {
    int refs;
    char *name, *subject;
    char *dns[TLS_MAX_NAMES];
    size_t n_dns;
    tls_cert_t *issuer;
    bool ca;
    int64_t not_before, not_after;
    buf_t der;                      /* the certificate's DER encoding (for the pcap) */
};

static void put8(buf_t *b, uint8_t x) { lb_vec_push(b, x); }
static void put16(buf_t *b, uint32_t x) { put8(b, (uint8_t)(x >> 8)); put8(b, (uint8_t)x); }
static void put24(buf_t *b, uint32_t x) { put8(b, (uint8_t)(x >> 16)); put16(b, x); }
static void putn(buf_t *b, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) put8(b, ((const uint8_t *)p)[i]);
}
static void putz(buf_t *b, size_t n) { for (size_t i = 0; i < n; i++) put8(b, 0); }
/* n bytes of a deterministic stream seeded by seed (randoms, keys, signatures) */
static void putr(buf_t *b, uint64_t seed, size_t n)
{
    for (size_t i = 0; i < n; i++) put8(b, (uint8_t)(lb_mix64(seed + i / 8) >> (8 * (i % 8))));
}
static void set16(buf_t *b, size_t at, uint32_t x) { b->v[at] = (uint8_t)(x >> 8); b->v[at + 1] = (uint8_t)x; }
static void set24(buf_t *b, size_t at, uint32_t x) { b->v[at] = (uint8_t)(x >> 16); set16(b, at + 1, x); }

/* DER: tag, definite length, content (X.690 8.1). */
static void der(buf_t *out, uint8_t tag, const uint8_t *p, size_t n)
{
    put8(out, tag);
    if (n < 0x80) put8(out, (uint8_t)n);
    else if (n < 0x100) { put8(out, 0x81); put8(out, (uint8_t)n); }
    else { put8(out, 0x82); put16(out, (uint32_t)n); }
    putn(out, p, n);
}
static void der_buf(buf_t *out, uint8_t tag, buf_t *in)
{
    der(out, tag, in->v, in->n);
    lb_vec_free(in);
}

static const uint8_t OID_CN[] = {0x55, 0x04, 0x03};
static const uint8_t OID_SHA256_RSA[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b};
static const uint8_t OID_RSA[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
static const uint8_t OID_SAN[] = {0x55, 0x1d, 0x11};
static const uint8_t OID_BASIC[] = {0x55, 0x1d, 0x13};

static void der_name(buf_t *out, const char *cn)
{
    buf_t atv = {0}, set = {0}, seq = {0};
    der(&atv, 0x06, OID_CN, sizeof OID_CN);
    der(&atv, 0x0c, (const uint8_t *)cn, strlen(cn));       /* UTF8String */
    der_buf(&set, 0x30, &atv);
    der_buf(&seq, 0x31, &set);
    der_buf(out, 0x30, &seq);
}

static void der_alg(buf_t *out, const uint8_t *oid, size_t n)
{
    buf_t a = {0};
    der(&a, 0x06, oid, n);
    der(&a, 0x05, NULL, 0);
    der_buf(out, 0x30, &a);
}

static void der_time(buf_t *out, int64_t t, bool end)
{
    char s[32];
    if (!t) {
        snprintf(s, sizeof s, "%s", end ? "99991231235959Z" : "19700101000000Z");
    } else {
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(s, sizeof s, "%Y%m%d%H%M%SZ", &tm);
    }
    der(out, 0x18, (const uint8_t *)s, strlen(s));          /* GeneralizedTime */
}

/* A minimal X.509 v3 certificate (RFC 5280 4.1) of real structure: names, validity,
 * an RSA-2048 key and signature of deterministic bytes, subjectAltName, basicConstraints. */
static void cert_der(tls_cert_t *c)
{
    uint64_t seed = lb_hash_str(c->subject) ^ lb_hash_str(c->name);
    buf_t tbs = {0}, v = {0}, t = {0};
    uint8_t ver[] = {0x02, 0x01, 0x02};
    der(&tbs, 0xa0, ver, sizeof ver);
    uint8_t serial[8];
    for (int i = 0; i < 8; i++) serial[i] = (uint8_t)(lb_mix64(seed + 7) >> (8 * i));
    serial[0] &= 0x7f;
    serial[0] |= 0x10;
    der(&tbs, 0x02, serial, sizeof serial);
    der_alg(&tbs, OID_SHA256_RSA, sizeof OID_SHA256_RSA);
    der_name(&tbs, c->issuer ? c->issuer->subject : c->subject);
    der_time(&v, c->not_before, false);
    der_time(&v, c->not_after, true);
    der_buf(&tbs, 0x30, &v);
    der_name(&tbs, c->subject);
    buf_t spki = {0}, key = {0}, rsa = {0}, mod = {0};
    der_alg(&spki, OID_RSA, sizeof OID_RSA);
    put8(&mod, 0x00);
    put8(&mod, 0xc1);
    putr(&mod, seed, 255);
    der_buf(&rsa, 0x02, &mod);
    uint8_t e[] = {0x01, 0x00, 0x01};
    der(&rsa, 0x02, e, sizeof e);
    put8(&key, 0x00);                                   /* BIT STRING: no unused bits */
    der_buf(&key, 0x30, &rsa);
    der_buf(&spki, 0x03, &key);
    der_buf(&tbs, 0x30, &spki);
    buf_t exts = {0};
    if (c->n_dns) {
        buf_t gn = {0}, seq = {0}, oct = {0}, ext = {0};
        for (size_t i = 0; i < c->n_dns; i++)
            der(&gn, 0x82, (const uint8_t *)c->dns[i], strlen(c->dns[i]));   /* dNSName */
        der_buf(&seq, 0x30, &gn);
        der(&ext, 0x06, OID_SAN, sizeof OID_SAN);
        der_buf(&oct, 0x04, &seq);
        putn(&ext, oct.v, oct.n);
        lb_vec_free(&oct);
        der_buf(&exts, 0x30, &ext);
    }
    if (c->ca) {
        buf_t ext = {0}, bc = {0}, oct = {0};
        uint8_t yes[] = {0xff};
        der(&ext, 0x06, OID_BASIC, sizeof OID_BASIC);
        der(&ext, 0x01, yes, 1);                       /* critical */
        der(&bc, 0x01, yes, 1);                        /* cA TRUE */
        der_buf(&oct, 0x30, &bc);
        der_buf(&ext, 0x04, &oct);
        der_buf(&exts, 0x30, &ext);
    }
    if (exts.n) {
        buf_t seq = {0};
        der_buf(&seq, 0x30, &exts);
        der_buf(&tbs, 0xa3, &seq);
    } else {
        lb_vec_free(&exts);
    }
    der_buf(&t, 0x30, &tbs);
    der_alg(&t, OID_SHA256_RSA, sizeof OID_SHA256_RSA);
    buf_t sig = {0};
    put8(&sig, 0x00);
    putr(&sig, seed ^ 0x5157, 256);
    der_buf(&t, 0x03, &sig);
    der_buf(&c->der, 0x30, &t);
}

tls_cert_t *tls_cert_new(const tls_cert_spec_t *s, char *err, size_t errlen)
{
    int depth = 0;
    for (const tls_cert_t *i = s->issuer; i; i = i->issuer) depth++;
    const char *e = NULL;
    if (!s->subject || !*s->subject) e = "a certificate needs a subject";
    else if (s->n_dns > TLS_MAX_NAMES) e = "too many DNS names (at most 8)";
    else if (depth >= TLS_MAX_CHAIN) e = "issuer chain too deep (at most 4 certificates)";
    else if (s->not_before && s->not_after && s->not_after < s->not_before)
        e = "not-after is before not-before";
    if (e) {
        snprintf(err, errlen, "%s", e);
        return NULL;
    }
    tls_cert_t *c = lb_calloc(1, sizeof *c);
    c->refs = 1;
    c->name = lb_strdup(s->name ? s->name : s->subject);
    c->subject = lb_strdup(s->subject);
    for (size_t i = 0; i < s->n_dns; i++) c->dns[i] = lb_strdup(s->dns_names[i]);
    c->n_dns = s->n_dns;
    c->issuer = s->issuer ? tls_cert_ref((tls_cert_t *)s->issuer) : NULL;
    c->ca = s->ca;
    c->not_before = s->not_before;
    c->not_after = s->not_after;
    cert_der(c);
    return c;
}

tls_cert_t *tls_cert_ref(tls_cert_t *c) { if (c) c->refs++; return c; }

void tls_cert_unref(tls_cert_t *c)
{
    if (!c || --c->refs > 0) return;
    tls_cert_unref(c->issuer);
    for (size_t i = 0; i < c->n_dns; i++) lb_free(c->dns[i]);
    lb_free(c->name);
    lb_free(c->subject);
    lb_vec_free(&c->der);
    lb_free(c);
}

const char *tls_cert_name(const tls_cert_t *c) { return c->name; }
const char *tls_cert_subject(const tls_cert_t *c) { return c->subject; }
const tls_cert_t *tls_cert_issuer(const tls_cert_t *c) { return c->issuer; }

bool tls_is_ip_literal(const char *h)
{
    uint32_t a;
    return h && lb_ip_parse(h, &a) == 0;
}

bool tls_name_match(const char *pattern, const char *host)
{
    if (!pattern || !host || !*pattern || !*host) return false;
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(host, '.');
        /* the wildcard is one whole label, never empty, never the only label left */
        if (!dot || dot == host || !strchr(pattern + 2, '.')) return false;
        return strcasecmp(dot + 1, pattern + 2) == 0;
    }
    return strcasecmp(pattern, host) == 0;
}

bool tls_cert_matches(const tls_cert_t *c, const char *host)
{
    if (c->n_dns) {
        for (size_t i = 0; i < c->n_dns; i++)
            if (tls_name_match(c->dns[i], host)) return true;
        return false;
    }
    return tls_name_match(c->subject, host);
}

static bool in_time(const tls_cert_t *c, int64_t now)
{
    return !(c->not_before && now < c->not_before) && !(c->not_after && now > c->not_after);
}

int tls_cert_verify(const tls_cert_t *leaf, const tls_cert_t *const *roots, size_t n_roots,
                    const char *name, int64_t now, char *why, size_t whylen)
{
    bool trusted = false;
    for (const tls_cert_t *c = leaf; c && !trusted; c = c->issuer) {
        if (!in_time(c, now)) {
            snprintf(why, whylen, "certificate CN %s %s", c->subject,
                     c->not_before && now < c->not_before ? "not yet valid" : "expired");
            return TLS_ALERT_CERTIFICATE_EXPIRED;
        }
        for (size_t i = 0; i < n_roots; i++)
            if (roots[i] == c) trusted = true;
    }
    if (!trusted) {
        const tls_cert_t *top = leaf;
        while (top->issuer) top = top->issuer;
        snprintf(why, whylen, "root CN %s of CN %s not trusted", top->subject, leaf->subject);
        return TLS_ALERT_UNKNOWN_CA;
    }
    if (name && !tls_cert_matches(leaf, name)) {
        snprintf(why, whylen, "certificate CN %s does not match %s", leaf->subject, name);
        return TLS_ALERT_BAD_CERTIFICATE;
    }
    if (whylen) why[0] = '\0';
    return 0;
}

const char *tls_alert_name(int a)
{
    switch (a) {
    case TLS_ALERT_UNEXPECTED_MESSAGE: return "unexpected_message";
    case TLS_ALERT_HANDSHAKE_FAILURE: return "handshake_failure";
    case TLS_ALERT_BAD_CERTIFICATE: return "bad_certificate";
    case TLS_ALERT_CERTIFICATE_EXPIRED: return "certificate_expired";
    case TLS_ALERT_UNKNOWN_CA: return "unknown_ca";
    case TLS_ALERT_PROTOCOL_VERSION: return "protocol_version";
    case TLS_ALERT_UNRECOGNIZED_NAME: return "unrecognized_name";
    default: return "alert";
    }
}

/* ---- configurations ----------------------------------------------------------------------- */
void tls_client_cfg_default(tls_client_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->max_version = 13;
    c->cpu = TLS_CLIENT_CPU_DEFAULT;
    c->epoch = TLS_EPOCH_DEFAULT;
}

void tls_server_cfg_default(tls_server_cfg_t *c)
{
    memset(c, 0, sizeof *c);
    c->max_version = 13;
    c->no_match = TLS_NOMATCH_RESET;
    c->cpu = TLS_SERVER_CPU_DEFAULT;
}

const tls_chain_t *tls_server_select(const tls_server_cfg_t *c, const char *sni)
{
    const tls_chain_t *wild = NULL, *any = NULL;
    size_t wlen = 0;
    for (size_t i = 0; i < c->n_chains; i++) {
        const tls_chain_t *ch = &c->chains[i];
        if (!ch->n_names) {
            if (!any) any = ch;
            continue;
        }
        for (size_t k = 0; sni && *sni && k < ch->n_names; k++) {
            const char *n = ch->server_names[k];
            if (n[0] == '*') {
                size_t l = strlen(n);
                if (tls_name_match(n, sni) && l > wlen) { wild = ch; wlen = l; }
            } else if (strcasecmp(n, sni) == 0) {
                return ch;
            }
        }
    }
    return wild ? wild : any;
}

/* ---- messages ---------------------------------------------------------------------------- */
enum { F_CLIENT_HELLO, F_SERVER_HELLO, F_CLIENT_FINISHED, F_SERVER_FINISHED, F_ALERT, F_APP };

typedef struct tls_msg {
    net_msg_t base;
    int type, version, alert;
    char *sni;                      /* ClientHello: NULL for none */
    tls_cert_t *cert;               /* server flight: the leaf it carries (a reference) */
    buf_t bytes;                    /* handshake flights: every byte */
    net_msg_t *inner;               /* F_APP */
} tls_msg_t;

#define REC_MAX 16384               /* plaintext per record (RFC 8446 5.1) */
#define GCM_TAG 16
#define GCM_NONCE12 8               /* TLS 1.2 AES-GCM explicit nonce (RFC 5288 3) */

static void msg_destroy(net_msg_t *m)
{
    tls_msg_t *t = (tls_msg_t *)(void *)m;
    lb_free(t->sni);
    tls_cert_unref(t->cert);
    lb_vec_free(&t->bytes);
    net_msg_unref(t->inner);
    lb_free(t);
}

static tls_msg_t *msg_new(int type, int version)
{
    tls_msg_t *t = lb_calloc(1, sizeof *t);
    t->base.refs = 1;
    t->base.kind = NET_MSG_TLS;
    t->base.destroy = msg_destroy;
    t->type = type;
    t->version = version;
    return t;
}

static const tls_msg_t *msg_of(const net_msg_t *m)
{
    return m && m->kind == NET_MSG_TLS ? (const tls_msg_t *)(const void *)m : NULL;
}

static size_t rec_open(buf_t *b, uint8_t type, uint16_t ver)
{
    put8(b, type);
    put16(b, ver);
    size_t at = b->n;
    put16(b, 0);
    return at;
}
static void rec_close(buf_t *b, size_t at) { set16(b, at, (uint32_t)(b->n - at - 2)); }
static size_t hs_open(buf_t *b, uint8_t type)
{
    put8(b, type);
    size_t at = b->n;
    put24(b, 0);
    return at;
}
static void hs_close(buf_t *b, size_t at) { set24(b, at, (uint32_t)(b->n - at - 3)); }

static void ext_sni(buf_t *b, const char *sni)
{
    size_t n = strlen(sni);
    put16(b, 0x0000);
    put16(b, (uint32_t)n + 5);
    put16(b, (uint32_t)n + 3);
    put8(b, 0);                         /* host_name */
    put16(b, (uint32_t)n);
    putn(b, sni, n);
}

static void client_hello(tls_msg_t *m, uint64_t seed)
{
    buf_t *b = &m->bytes;
    size_t r = rec_open(b, 0x16, 0x0301), h = hs_open(b, 0x01);
    put16(b, 0x0303);
    putr(b, seed, 32);                                  /* random */
    bool v13 = m->version >= 13;
    put8(b, v13 ? 32 : 0);                              /* legacy_session_id */
    if (v13) putr(b, seed ^ 1, 32);
    static const uint16_t s13[] = {0x1301, 0x1302, 0x1303, 0xc02f, 0xc030};
    static const uint16_t s12[] = {0xc02f, 0xc030, 0xc02b, 0xc02c};
    const uint16_t *s = v13 ? s13 : s12;
    size_t ns = v13 ? 5 : 4;
    put16(b, (uint32_t)(2 * ns));
    for (size_t i = 0; i < ns; i++) put16(b, s[i]);
    put8(b, 1);
    put8(b, 0);                                         /* compression: null */
    size_t e = b->n;
    put16(b, 0);
    if (m->sni) ext_sni(b, m->sni);
    put16(b, 0x000a); put16(b, 6); put16(b, 4); put16(b, 0x001d); put16(b, 0x0017);
    put16(b, 0x000b); put16(b, 2); put8(b, 1); put8(b, 0);
    put16(b, 0x000d); put16(b, 10); put16(b, 8);
    put16(b, 0x0804); put16(b, 0x0401); put16(b, 0x0403); put16(b, 0x0501);
    if (v13) {
        put16(b, 0x002b); put16(b, 5); put8(b, 4); put16(b, 0x0304); put16(b, 0x0303);
        put16(b, 0x0033); put16(b, 38); put16(b, 36); put16(b, 0x001d); put16(b, 32);
        putr(b, seed ^ 2, 32);
    }
    set16(b, e, (uint32_t)(b->n - e - 2));
    hs_close(b, h);
    rec_close(b, r);
}

static void cert_list(buf_t *b, const tls_cert_t *leaf, bool v13)
{
    size_t l = b->n;
    put24(b, 0);
    for (const tls_cert_t *c = leaf; c; c = c->issuer) {
        if (c != leaf && !c->issuer) break;             /* the root stays home */
        put24(b, (uint32_t)c->der.n);
        putn(b, c->der.v, c->der.n);
        if (v13) put16(b, 0);                           /* no extensions */
    }
    set24(b, l, (uint32_t)(b->n - l - 3));
}

static void server_hello(tls_msg_t *m, const tls_cert_t *cert, uint64_t seed)
{
    buf_t *b = &m->bytes;
    bool v13 = m->version >= 13;
    size_t r = rec_open(b, 0x16, 0x0303), h = hs_open(b, 0x02);
    put16(b, 0x0303);
    putr(b, seed ^ 3, 32);
    put8(b, v13 ? 32 : 0);
    if (v13) putr(b, seed ^ 1, 32);                     /* echoes the client's */
    put16(b, v13 ? 0x1301 : 0xc02f);
    put8(b, 0);
    size_t e = b->n;
    put16(b, 0);
    if (v13) {
        put16(b, 0x002b); put16(b, 2); put16(b, 0x0304);
        put16(b, 0x0033); put16(b, 36); put16(b, 0x001d); put16(b, 32); putr(b, seed ^ 4, 32);
    } else {
        put16(b, 0xff01); put16(b, 1); put8(b, 0);      /* renegotiation_info */
        put16(b, 0x000b); put16(b, 2); put8(b, 1); put8(b, 0);
    }
    set16(b, e, (uint32_t)(b->n - e - 2));
    hs_close(b, h);
    rec_close(b, r);
    if (v13) {
        /* ChangeCipherSpec (middlebox compatibility), then one encrypted record holding
         * EncryptedExtensions, Certificate, CertificateVerify and Finished */
        put8(b, 0x14); put16(b, 0x0303); put16(b, 1); put8(b, 1);
        buf_t in = {0};
        size_t x = hs_open(&in, 0x08); put16(&in, 0); hs_close(&in, x);
        x = hs_open(&in, 0x0b); put8(&in, 0); cert_list(&in, cert, true); hs_close(&in, x);
        x = hs_open(&in, 0x0f); put16(&in, 0x0804); put16(&in, 256); putz(&in, 256);
        hs_close(&in, x);
        x = hs_open(&in, 0x14); putz(&in, 32); hs_close(&in, x);
        put8(b, 0x17); put16(b, 0x0303); put16(b, (uint32_t)(in.n + 1 + GCM_TAG));
        putz(b, in.n + 1 + GCM_TAG);
        lb_vec_free(&in);
        return;
    }
    r = rec_open(b, 0x16, 0x0303);
    h = hs_open(b, 0x0b);
    cert_list(b, cert, false);
    hs_close(b, h);
    rec_close(b, r);
    r = rec_open(b, 0x16, 0x0303);
    h = hs_open(b, 0x0c);                               /* ServerKeyExchange, ECDHE */
    put8(b, 3); put16(b, 0x001d); put8(b, 32); putr(b, seed ^ 5, 32);
    put16(b, 0x0401); put16(b, 256); putr(b, seed ^ 6, 256);
    hs_close(b, h);
    rec_close(b, r);
    r = rec_open(b, 0x16, 0x0303);
    h = hs_open(b, 0x0e);                               /* ServerHelloDone */
    hs_close(b, h);
    rec_close(b, r);
}

static void finished(tls_msg_t *m, bool client, uint64_t seed)
{
    buf_t *b = &m->bytes;
    if (client && m->version < 13) {                    /* ClientKeyExchange */
        size_t r = rec_open(b, 0x16, 0x0303), h = hs_open(b, 0x10);
        put8(b, 32);
        putr(b, seed ^ 7, 32);
        hs_close(b, h);
        rec_close(b, r);
    }
    put8(b, 0x14); put16(b, 0x0303); put16(b, 1); put8(b, 1);      /* ChangeCipherSpec */
    if (m->version >= 13) {         /* {Finished}: 4 + 32 bytes + content type + tag */
        put8(b, 0x17); put16(b, 0x0303); put16(b, 4 + 32 + 1 + GCM_TAG);
        putz(b, 4 + 32 + 1 + GCM_TAG);
    } else {                        /* Finished (12-byte verify_data) under AES-GCM */
        put8(b, 0x16); put16(b, 0x0303); put16(b, GCM_NONCE12 + 16 + GCM_TAG);
        putz(b, GCM_NONCE12 + 16 + GCM_TAG);
    }
}

static void alert(tls_msg_t *m, bool encrypted)
{
    buf_t *b = &m->bytes;
    if (encrypted) {
        put8(b, 0x17); put16(b, 0x0303); put16(b, 2 + 1 + GCM_TAG); putz(b, 2 + 1 + GCM_TAG);
    } else {
        put8(b, 0x15); put16(b, 0x0303); put16(b, 2); put8(b, 2); put8(b, (uint8_t)m->alert);
    }
}

static void msg_seal(tls_msg_t *m) { m->base.size = (uint32_t)m->bytes.n; }

static uint32_t rec_overhead(int version)
{
    return version >= 13 ? 5 + 1 + GCM_TAG : 5 + GCM_NONCE12 + GCM_TAG;
}

static tls_msg_t *app_new(net_msg_t *inner, int version)
{
    tls_msg_t *m = msg_new(F_APP, version);
    m->inner = net_msg_ref(inner);
    uint32_t n = inner->size, recs = (n + REC_MAX - 1) / REC_MAX;
    if (!recs) recs = 1;
    m->base.size = n + recs * rec_overhead(version);
    return m;
}

void tls_msg_bytes(const net_msg_t *msg, uint64_t off, uint8_t *out, uint32_t n)
{
    const tls_msg_t *m = msg_of(msg);
    if (!m) return;
    for (uint32_t j = 0; j < n; j++) {
        uint64_t i = off + j;
        if (i >= m->base.size) break;
        if (m->type != F_APP) {
            out[j] = m->bytes.v[i];
            continue;
        }
        /* application data: records of REC_MAX plaintext bytes, the last one shorter */
        uint32_t ov = rec_overhead(m->version), full = REC_MAX + ov;
        uint64_t r = i / full, k = i % full;
        uint32_t plain = m->inner->size - (uint32_t)r * REC_MAX;
        if (plain > REC_MAX) plain = REC_MAX;
        uint32_t len = plain + ov - 5;
        static const uint8_t hdr[3] = {0x17, 0x03, 0x03};
        if (k < 3) out[j] = hdr[k];
        else if (k == 3) out[j] = (uint8_t)(len >> 8);
        else if (k == 4) out[j] = (uint8_t)len;
        else out[j] = 0;
    }
}

net_msg_t *tls_msg_inner(const net_msg_t *msg)
{
    const tls_msg_t *m = msg_of(msg);
    return m && m->type == F_APP ? m->inner : NULL;
}

const char *tls_msg_desc(const net_msg_t *msg, char *buf, size_t n)
{
    const tls_msg_t *m = msg_of(msg);
    if (!m) snprintf(buf, n, "not TLS");
    else switch (m->type) {
    case F_CLIENT_HELLO:
        if (m->sni) snprintf(buf, n, "ClientHello (SNI %s)", m->sni);
        else snprintf(buf, n, "ClientHello (no SNI)");
        break;
    case F_SERVER_HELLO:
        snprintf(buf, n, m->version >= 13 ? "ServerHello, {Certificate, Finished}"
                                          : "ServerHello, Certificate, ServerHelloDone");
        break;
    case F_CLIENT_FINISHED: snprintf(buf, n, "client Finished"); break;
    case F_SERVER_FINISHED: snprintf(buf, n, "server Finished"); break;
    case F_ALERT: snprintf(buf, n, "Alert %s", tls_alert_name(m->alert)); break;
    default: snprintf(buf, n, "Application Data"); break;
    }
    return buf;
}

/* ---- connections ------------------------------------------------------------------------ */
enum { S_HELLO, S_WAIT_SERVER, S_WAIT_FINISHED, S_WAIT_HELLO, S_DONE, S_FAILED };

struct tls_conn {
    tcp_conn_t *tc;                 /* NULL once let go */
    net_t *net;
    sim_t *sim;
    const char *where;              /* node name */
    bool server;
    int state, version;
    tls_client_cfg_t cc;            /* client: strings owned */
    const tls_server_cfg_t *sc;     /* server: borrowed */
    const tls_chain_t *chain;
    const tls_cert_t *peer;         /* client: the server's leaf (held by the flight) */
    net_msg_t *flight;              /* the flight that arrived, kept over the CPU delay */
    tcp_cbs_t app;
    void *app_data;
    sim_handle_t cpu;
    char sni[256];
    char why[160];
};

static void on_tcp_connected(tcp_conn_t *c, void *data);
static void on_tcp_recv(tcp_conn_t *c, net_msg_t *msg, void *data);
static void on_tcp_eof(tcp_conn_t *c, void *data);
static void on_tcp_error(tcp_conn_t *c, int rc, void *data);
static const tcp_cbs_t tls_tcp_cbs = { on_tcp_connected, on_tcp_recv, on_tcp_eof, on_tcp_error };

#define TRACE(t, ...) do { \
        if (net_tracing((t)->net, tcp_conn_flow((t)->tc))) \
            net_tracef_flow((t)->net, (t)->where, tcp_conn_flow((t)->tc), __VA_ARGS__); \
    } while (0)

static tls_conn_t *conn_new(tcp_conn_t *c, const tcp_cbs_t *app, void *app_data)
{
    tls_conn_t *t = lb_calloc(1, sizeof *t);
    net_node_t *node = tcp_conn_node(c);
    t->tc = c;
    t->net = node->net;
    t->sim = net_sim(node->net);
    t->where = node->name;
    t->app = *app;
    t->app_data = app_data;
    tcp_conn_set_cbs(c, &tls_tcp_cbs, t);
    return t;
}

tls_conn_t *tls_client_new(tcp_conn_t *c, const tls_client_cfg_t *cfg, const tcp_cbs_t *app,
                           void *app_data)
{
    tls_conn_t *t = conn_new(c, app, app_data);
    t->cc = *cfg;
    t->cc.sni = cfg->sni && *cfg->sni && !tls_is_ip_literal(cfg->sni) ? lb_strdup(cfg->sni)
                                                                       : NULL;
    t->cc.verify_name = cfg->verify_name ? lb_strdup(cfg->verify_name) : NULL;
    t->version = 0;
    t->state = S_HELLO;
    if (tcp_conn_state(c) == TCP_ESTABLISHED) on_tcp_connected(c, t);
    return t;
}

tls_conn_t *tls_server_new(tcp_conn_t *c, const tls_server_cfg_t *cfg, const tcp_cbs_t *app,
                           void *app_data)
{
    tls_conn_t *t = conn_new(c, app, app_data);
    t->server = true;
    t->sc = cfg;
    t->state = S_WAIT_HELLO;
    return t;
}

void tls_conn_free(tls_conn_t *t)
{
    if (!t) return;
    sim_cancel(t->sim, &t->cpu);
    net_msg_unref(t->flight);
    if (!t->server) {
        lb_free((char *)t->cc.sni);
        lb_free((char *)t->cc.verify_name);
    }
    lb_free(t);
}

bool tls_conn_done(const tls_conn_t *t) { return t->state == S_DONE; }
int tls_conn_version(const tls_conn_t *t) { return t->version; }
const char *tls_conn_why(const tls_conn_t *t) { return t->why; }
const char *tls_conn_sni(const tls_conn_t *t) { return t->sni; }
const tls_chain_t *tls_conn_chain(const tls_conn_t *t) { return t->chain; }

int tls_send(tls_conn_t *t, net_msg_t *msg)
{
    if (t->state != S_DONE || !t->tc) return LB_ESTATE;
    tls_msg_t *m = app_new(msg, t->version);
    int rc = tcp_send(t->tc, &m->base);
    net_msg_unref(&m->base);
    return rc;
}

static void send_flight(tls_conn_t *t, tls_msg_t *m)
{
    msg_seal(m);
    char d[96];
    TRACE(t, "tls: sends %s, %u bytes", tls_msg_desc(&m->base, d, sizeof d), m->base.size);
    tcp_send(t->tc, &m->base);
    net_msg_unref(&m->base);
}

/* The handshake failed: the connection is let go (alert first, then FIN; or a RST), and
 * the app hears LB_ETLS once. */
static void fail(tls_conn_t *t, int alert_code, bool reset, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(tls_conn_t *t, int alert_code, bool reset, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->why, sizeof t->why, fmt, ap);
    va_end(ap);
    TRACE(t, "tls: handshake failed: %s", t->why);
    sim_cancel(t->sim, &t->cpu);
    tcp_conn_t *c = t->tc;
    t->tc = NULL;
    t->state = S_FAILED;
    if (c) {
        if (alert_code) {
            tls_msg_t *m = msg_new(F_ALERT, t->version ? t->version : 12);
            m->alert = alert_code;
            alert(m, false);
            msg_seal(m);
            tcp_send(c, &m->base);
            net_msg_unref(&m->base);
        }
        tcp_conn_set_cbs(c, NULL, NULL);
        if (reset) tcp_abort(c);
        else tcp_close(c);
    }
    if (t->app.error) t->app.error(c, LB_ETLS, t->app_data);
}

static uint64_t seed_of(const tls_conn_t *t)
{
    return lb_mix64(tcp_conn_flow(t->tc) ^ 0x715);
}

/* client: the ClientHello once TCP is up */
static void on_tcp_connected(tcp_conn_t *c, void *data)
{
    (void)c;
    tls_conn_t *t = data;
    if (t->server || t->state != S_HELLO) return;
    tls_msg_t *m = msg_new(F_CLIENT_HELLO, t->cc.max_version);
    m->sni = t->cc.sni ? lb_strdup(t->cc.sni) : NULL;
    client_hello(m, seed_of(t));
    t->state = S_WAIT_SERVER;
    send_flight(t, m);
}

/* client: after the CPU time, check the server's certificate, then Finished */
static void client_cpu_cb(sim_t *sim, void *a, void *b)
{
    (void)sim; (void)b;
    tls_conn_t *t = a;
    t->cpu = (sim_handle_t){0};
    if (t->cc.verify) {
        char why[140];
        int64_t now = t->cc.epoch + sim_now(t->sim) / SIM_S;
        int al = tls_cert_verify(t->peer, t->cc.roots, t->cc.n_roots, t->cc.verify_name, now,
                                 why, sizeof why);
        if (al) {
            fail(t, al, false, "%s (%s)", why, tls_alert_name(al));
            return;
        }
    }
    tls_msg_t *m = msg_new(F_CLIENT_FINISHED, t->version);
    finished(m, true, seed_of(t));
    send_flight(t, m);
    if (t->version >= 13) {
        t->state = S_DONE;
        TRACE(t, "tls: TLS 1.3 handshake done (1 round trip)");
        if (t->app.connected) t->app.connected(t->tc, t->app_data);
    } else {
        t->state = S_WAIT_FINISHED;
    }
}

/* server: after the CPU time, the server's flight */
static void server_cpu_cb(sim_t *sim, void *a, void *b)
{
    (void)sim; (void)b;
    tls_conn_t *t = a;
    t->cpu = (sim_handle_t){0};
    tls_msg_t *m = msg_new(F_SERVER_HELLO, t->version);
    server_hello(m, t->chain->cert, seed_of(t));
    m->cert = tls_cert_ref((tls_cert_t *)t->chain->cert);  /* the client reads it */
    t->state = S_WAIT_FINISHED;
    send_flight(t, m);
}

static void client_recv(tls_conn_t *t, net_msg_t *msg)
{
    const tls_msg_t *m = msg_of(msg);
    if (!m) {
        /* a plain HTTP answer ("400 The plain HTTP request was sent to HTTPS port" is
         * nginx's; any non-TLS bytes): OpenSSL's "wrong version number" */
        fail(t, 0, false, "the server answered without TLS (wrong version number)");
        return;
    }
    if (m->type == F_ALERT) {
        fail(t, 0, false, "the server sent alert %s", tls_alert_name(m->alert));
        return;
    }
    if (t->state == S_WAIT_SERVER && m->type == F_SERVER_HELLO) {
        t->version = m->version;
        t->peer = m->cert;        /* held by t->flight */
        net_msg_unref(t->flight);
        t->flight = net_msg_ref(msg);
        t->cpu = sim_schedule(t->sim, t->cc.cpu, client_cpu_cb, t, NULL);
        return;
    }
    if (t->state == S_WAIT_FINISHED && m->type == F_SERVER_FINISHED) {
        t->state = S_DONE;
        TRACE(t, "tls: TLS 1.2 handshake done (2 round trips)");
        if (t->app.connected) t->app.connected(t->tc, t->app_data);
        return;
    }
    if (t->state == S_DONE && m->type == F_APP) {
        if (t->app.recv) t->app.recv(t->tc, m->inner, t->app_data);
        return;
    }
    fail(t, TLS_ALERT_UNEXPECTED_MESSAGE, false, "unexpected TLS message");
}

static void server_recv(tls_conn_t *t, net_msg_t *msg)
{
    const tls_msg_t *m = msg_of(msg);
    if (t->state == S_WAIT_HELLO) {
        if (!m || m->type != F_CLIENT_HELLO) {
            /* Envoy's tls_inspector finds no TLS: no filter chain for raw bytes */
            fail(t, 0, true, "not a TLS ClientHello: connection reset");
            return;
        }
        snprintf(t->sni, sizeof t->sni, "%s", m->sni ? m->sni : "");
        t->version = m->version < t->sc->max_version ? m->version : t->sc->max_version;
        t->chain = tls_server_select(t->sc, m->sni);
        if (!t->chain && t->sc->no_match == TLS_NOMATCH_FIRST && t->sc->n_chains)
            t->chain = &t->sc->chains[0];
        if (!t->chain) {
            fail(t, 0, true, "no filter chain matches %s%s%s: connection reset "
                 "(NR filter_chain_not_found)", m->sni ? "SNI " : "",
                 m->sni ? m->sni : "a ClientHello without SNI", "");
            return;
        }
        TRACE(t, "tls: ClientHello %s%s -> chain %s", m->sni ? "SNI " : "(no SNI)",
              m->sni ? m->sni : "", t->chain->name ? t->chain->name : "?");
        t->cpu = sim_schedule(t->sim, t->sc->cpu, server_cpu_cb, t, NULL);
        return;
    }
    if (!m) {
        fail(t, 0, true, "not TLS after the handshake");
        return;
    }
    if (m->type == F_ALERT) {
        fail(t, 0, false, "the client sent alert %s", tls_alert_name(m->alert));
        return;
    }
    if (t->state == S_WAIT_FINISHED && m->type == F_CLIENT_FINISHED) {
        if (t->version < 13) {
            tls_msg_t *f = msg_new(F_SERVER_FINISHED, t->version);
            finished(f, false, seed_of(t));
            send_flight(t, f);
        }
        t->state = S_DONE;
        return;
    }
    if (t->state == S_DONE && m->type == F_APP) {
        if (t->app.recv) t->app.recv(t->tc, m->inner, t->app_data);
        return;
    }
    fail(t, TLS_ALERT_UNEXPECTED_MESSAGE, false, "unexpected TLS message");
}

static void on_tcp_recv(tcp_conn_t *c, net_msg_t *msg, void *data)
{
    (void)c;
    tls_conn_t *t = data;
    if (t->state == S_FAILED) return;
    if (t->server) server_recv(t, msg);
    else client_recv(t, msg);
}

static void on_tcp_eof(tcp_conn_t *c, void *data)
{
    (void)c;
    tls_conn_t *t = data;
    if (t->state == S_DONE) {
        if (t->app.eof) t->app.eof(t->tc, t->app_data);
        return;
    }
    fail(t, 0, false, "the peer closed the connection during the handshake");
}

static void on_tcp_error(tcp_conn_t *c, int rc, void *data)
{
    tls_conn_t *t = data;
    sim_cancel(t->sim, &t->cpu);
    bool during = t->state != S_DONE && !(!t->server && t->state == S_HELLO);
    t->tc = NULL;                       /* the stack frees c after this callback */
    if (!during) {
        t->state = S_FAILED;
        if (t->app.error) t->app.error(c, rc, t->app_data);
        return;
    }
    bool hello_sent = !t->server && t->state == S_WAIT_SERVER;
    t->state = S_FAILED;
    if (hello_sent && rc == LB_ECONNRESET)
        snprintf(t->why, sizeof t->why, "reset after ClientHello %s%s",
                 t->cc.sni ? "SNI " : "without SNI", t->cc.sni ? t->cc.sni : "");
    else
        snprintf(t->why, sizeof t->why, "%s during the handshake", lb_strerror(rc));
    if (t->app.error) t->app.error(c, rc == LB_ETIMEDOUT ? rc : LB_ETLS, t->app_data);
}
