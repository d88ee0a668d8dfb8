/* tls.h -- TLS over the simulated TCP: certificates as data (subject, DNS names, issuer,
 * validity), name checks (RFC 6125), chain validation to trusted roots, and the handshake
 * of TLS 1.2 (two round trips) and TLS 1.3 (one) with SNI, server-side certificate choice
 * by SNI (Envoy's filter chains: server_names), alerts, and the handshake's CPU time.
 *
 * A tls_conn_t sits between an app and its tcp_conn_t: it takes the connection's callbacks
 * over and calls the app's own (tcp_cbs_t) with the TCP connection as argument:
 *   connected  once the handshake completed (client side),
 *   recv       with the decrypted message (the HTTP message the peer sent),
 *   eof        after the handshake; before it the handshake fails,
 *   error      LB_ETLS when the handshake failed (the reason: tls_conn_why), else TCP's
 *              code; the TCP connection is then gone (as after a TCP error callback).
 * The app sends with tls_send() instead of tcp_send() and still closes with tcp_close() /
 * tcp_abort(); it owns the tls_conn_t and frees it with tls_conn_free().
 *
 * On the wire every flight is one message whose bytes are real TLS records (record
 * headers, handshake headers, ClientHello with the server_name extension, ServerHello,
 * Certificate with DER certificates, ServerKeyExchange, Finished, Alert): tls_msg_bytes()
 * gives them to the pcap writer, so Wireshark dissects the handshake. Encrypted parts are
 * zeros of the right length -- nothing is encrypted. */
#ifndef TLS_H
#define TLS_H

#include "net.h"
#include "tcp.h"

#define NET_MSG_TLS 2           /* net_msg_t.kind of a TLS flight (net.h: RAW 0, HTTP 1) */

/* CPU time of one full handshake on the server: one RSA-2048 signature (ServerKeyExchange
 * or CertificateVerify) plus an X25519 key exchange. `openssl speed rsa2048` signs about
 * 1,500 times a second on one current x86 core (~0.7 ms) and X25519 costs ~0.05 ms: 1 ms
 * is the default, a parameter. The client verifies (RSA public operation, ~0.03 ms) and
 * does its X25519: 0.1 ms. */
#define TLS_SERVER_CPU_DEFAULT (1 * SIM_MS)
#define TLS_CLIENT_CPU_DEFAULT (100 * SIM_US)
/* UNIX time at simulated time 0 when a scenario gives none: 2026-01-01T00:00:00Z. */
#define TLS_EPOCH_DEFAULT 1767225600LL
#define TLS_MAX_NAMES 8
#define TLS_MAX_CHAIN 4

/* Alert descriptions (RFC 8446 6.2) the model sends. */
enum { TLS_ALERT_UNEXPECTED_MESSAGE = 10, TLS_ALERT_HANDSHAKE_FAILURE = 40, TLS_ALERT_BAD_CERTIFICATE = 42,
       TLS_ALERT_CERTIFICATE_EXPIRED = 45, TLS_ALERT_UNKNOWN_CA = 48,
       TLS_ALERT_PROTOCOL_VERSION = 70, TLS_ALERT_UNRECOGNIZED_NAME = 112 };
const char *tls_alert_name(int alert);

/* ---- certificates ------------------------------------------------------------------------ */
typedef struct tls_cert tls_cert_t;
typedef struct tls_cert_spec {
    const char *name;               /* what the scenario calls it */
    const char *subject;            /* subject CN */
    const char *const *dns_names;   /* subjectAltName dNSName entries (may be "*.x.y") */
    size_t n_dns;
    const tls_cert_t *issuer;       /* NULL: self-signed */
    bool ca;                        /* basicConstraints CA:TRUE */
    int64_t not_before, not_after;  /* UNIX seconds; 0: unbounded */
} tls_cert_spec_t;
/* A certificate (refs = 1; strings copied; takes a reference to its issuer). NULL with a
 * message in err for a spec without subject, more than TLS_MAX_NAMES names, a chain
 * deeper than TLS_MAX_CHAIN, or not_after before not_before. */
tls_cert_t *tls_cert_new(const tls_cert_spec_t *s, char *err, size_t errlen);
tls_cert_t *tls_cert_ref(tls_cert_t *c);
void tls_cert_unref(tls_cert_t *c);             /* NULL-safe */
const char *tls_cert_name(const tls_cert_t *c);
const char *tls_cert_subject(const tls_cert_t *c);
const tls_cert_t *tls_cert_issuer(const tls_cert_t *c);

/* RFC 6125 6.4: whether `pattern` (a DNS name, or "*.rest" with the wildcard as the whole
 * leftmost label) matches host; case-insensitive; "*" matches exactly one label. */
bool tls_name_match(const char *pattern, const char *host);
/* Whether c is valid for host: its dNSNames if it has any, else its subject CN (the
 * fallback OpenSSL's X509_check_host and App Gateway's CN check apply). */
bool tls_cert_matches(const tls_cert_t *c, const char *host);
/* Whether host is an IPv4 literal (RFC 6066 3: no IP literals in server_name). */
bool tls_is_ip_literal(const char *host);

/* Validation as a client does it: every certificate from leaf up within its validity at
 * `now` (UNIX seconds), the chain reaching one of roots (by identity: the same
 * certificate), and, when name is not NULL, the leaf valid for name. 0, or the alert the
 * client sends (TLS_ALERT_CERTIFICATE_EXPIRED, _UNKNOWN_CA, _BAD_CERTIFICATE) with the
 * reason in why. */
int tls_cert_verify(const tls_cert_t *leaf, const tls_cert_t *const *roots, size_t n_roots,
                    const char *name, int64_t now, char *why, size_t whylen);

/* ---- configurations ------------------------------------------------------------------------ */
typedef struct tls_client_cfg {
    int max_version;                /* 12 or 13 (TLS 1.2 / 1.3) */
    const char *sni;                /* server_name to send; NULL, "" or an IP literal: none */
    bool verify;                    /* validate the chain against roots */
    const char *verify_name;        /* when verifying: the name the leaf must carry; NULL:
                                     * no name check */
    const tls_cert_t *const *roots; /* trusted roots (borrowed: keep them alive) */
    size_t n_roots;
    sim_time_t cpu;                 /* client CPU per handshake */
    int64_t epoch;                  /* UNIX time at simulated time 0 */
} tls_client_cfg_t;
void tls_client_cfg_default(tls_client_cfg_t *c);   /* 1.3, no SNI, no verification */

/* A server certificate choice: Envoy's filter chain with filter_chain_match.server_names.
 * No names: matches any SNI, and a ClientHello without SNI. */
typedef struct tls_chain {
    const char *name;               /* for explanations ("https: gw.example.com") */
    const char *const *server_names;    /* exact or "*.suffix" */
    size_t n_names;
    const tls_cert_t *cert;         /* the leaf; its issuers are sent along */
} tls_chain_t;

/* What a server does with a ClientHello no chain matches. */
typedef enum {
    TLS_NOMATCH_RESET,      /* Envoy: "closing connection: no matching filter chain
                             * found", socket closed with the ClientHello unread -> RST
                             * (source/common/listener_manager/active_stream_listener_base.cc;
                             * access log "NR filter_chain_not_found") */
    TLS_NOMATCH_FIRST       /* nginx, App Gateway v2: the default (first) certificate */
} tls_nomatch_t;

typedef struct tls_server_cfg {
    int max_version;                /* 12 or 13 */
    const tls_chain_t *chains;      /* borrowed: keep them alive while the server runs */
    size_t n_chains;
    tls_nomatch_t no_match;
    sim_time_t cpu;                 /* server CPU per handshake */
} tls_server_cfg_t;
void tls_server_cfg_default(tls_server_cfg_t *c);   /* 1.3, reset on no match */
/* The chain a ClientHello with sni (NULL: none) gets, Envoy's precedence: an exact
 * server name, then the longest wildcard suffix, then a chain without names; NULL when
 * none matches (the caller applies no_match). */
const tls_chain_t *tls_server_select(const tls_server_cfg_t *c, const char *sni);

/* ---- connections --------------------------------------------------------------------------- */
typedef struct tls_conn tls_conn_t;
/* Client side on c (any state from SYN_SENT: the ClientHello leaves once TCP connected).
 * cfg is copied (strings too; roots borrowed). */
tls_conn_t *tls_client_new(tcp_conn_t *c, const tls_client_cfg_t *cfg, const tcp_cbs_t *app,
                           void *app_data);
/* Server side on an accepted connection; cfg borrowed (the listener keeps it alive). */
tls_conn_t *tls_server_new(tcp_conn_t *c, const tls_server_cfg_t *cfg, const tcp_cbs_t *app,
                           void *app_data);
/* Sends msg (a reference is taken) as application data. LB_ESTATE before the handshake
 * completed or after it failed, else tcp_send's result. */
int tls_send(tls_conn_t *t, net_msg_t *msg);
/* Frees t (not its TCP connection). NULL-safe; cancels its pending CPU work. */
void tls_conn_free(tls_conn_t *t);
bool tls_conn_done(const tls_conn_t *t);        /* handshake completed */
int tls_conn_version(const tls_conn_t *t);      /* 12 / 13 once negotiated, else 0 */
/* Why the handshake failed ("" while it has not): "reset by the server after the
 * ClientHello (no SNI sent)", "certificate for gw.example.com does not match ...". */
const char *tls_conn_why(const tls_conn_t *t);
/* Server side: the SNI the client sent ("" for none) and the chain chosen (NULL). */
const char *tls_conn_sni(const tls_conn_t *t);
const tls_chain_t *tls_conn_chain(const tls_conn_t *t);

/* ---- messages on the wire ---------------------------------------------------------------- */
/* Copies bytes [off, off + n) of a TLS message (m->kind == NET_MSG_TLS) into out; bytes
 * beyond the message are left alone. For application data the records' headers are real
 * and their contents zeros. */
void tls_msg_bytes(const net_msg_t *m, uint64_t off, uint8_t *out, uint32_t n);
/* A name for traces: "ClientHello (SNI gw.example.com)", "Alert bad_certificate". */
const char *tls_msg_desc(const net_msg_t *m, char *buf, size_t n);
/* The message an application-data message carries (NULL for handshake flights). */
net_msg_t *tls_msg_inner(const net_msg_t *m);

#endif
