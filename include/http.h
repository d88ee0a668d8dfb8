/* http.h -- HTTP/1.1 over the simulated TCP: messages (start line and the headers that
 * matter; bodies counted, small bodies kept as text), a server that parses requests off
 * accepted connections and sends responses in order (keep-alive or close), and a client
 * connection pool that sends requests with connect and response timeouts and reports each
 * outcome. L7 proxy models (ALB, App Gateway, Envoy) are built from these two halves. */
#ifndef HTTP_H
#define HTTP_H

#include "net.h"
#include "tcp.h"
#include "tls.h"

#define HTTP_MAX_HEADERS 16

typedef struct http_header { char *name, *value; } http_header_t;

typedef struct http_msg {
    net_msg_t base;             /* base.size = wire size, kept current by http_msg_update */
    bool is_request;
    char method[8];             /* request: "GET" */
    char *path;                 /* request: "/app1" */
    char *host;                 /* request: Host header, may be NULL */
    int status;                 /* response: 200 */
    char *body;                 /* small text body or NULL */
    uint32_t body_size;         /* bytes of body (>= strlen(body)) */
    int n_headers;
    http_header_t headers[HTTP_MAX_HEADERS];  /* others: Connection, User-Agent, X-... */
    uint64_t req_id;            /* the client request this message serves (tracing) */
    char *detail;               /* why (e.g. Envoy response flag "NR route_not_found"),
                                 * not on the wire; for explanations */
} http_msg_t;

/* New messages have refs = 1; release with net_msg_unref(&m->base). */
http_msg_t *http_request_new(const char *method, const char *host, const char *path,
                             uint32_t body_size);
http_msg_t *http_response_new(int status, const char *body_text, uint32_t body_size);
/* A deep copy with refs = 1 (a proxy forwards a copy it may change). */
http_msg_t *http_msg_copy(const http_msg_t *m);
/* Sets (replaces) a header; recomputes the wire size. */
void http_header_set(http_msg_t *m, const char *name, const char *value);
const char *http_header_get(const http_msg_t *m, const char *name);   /* case-insensitive */
void http_msg_set_detail(http_msg_t *m, const char *detail);
/* Recomputes base.size from start line, headers and body. */
void http_msg_update(http_msg_t *m);
/* Whether the connection persists after this message (HTTP/1.1: unless Connection: close). */
bool http_msg_keepalive(const http_msg_t *m);
static inline http_msg_t *http_msg_from(net_msg_t *m) {
    return (m && m->kind == NET_MSG_HTTP) ? (http_msg_t *)(void *)m : NULL;
}
const char *http_reason_phrase(int status);

/* ---- server ---------------------------------------------------------------------------- */
typedef struct http_server http_server_t;
typedef struct http_exchange http_exchange_t;
/* Called for each request; answer now or later with http_respond(). `req` stays valid
 * until the exchange ends. */
typedef void (*http_handler_cb)(http_exchange_t *ex, const http_msg_t *req, void *data);

/* nginx keepalive_timeout default (ngx_http_core_module: "keepalive_timeout 75s"). */
#define HTTP_KEEPALIVE_TIMEOUT_DEFAULT (75 * SIM_S)

typedef struct http_server_opts {
    sim_time_t keepalive_timeout;   /* idle keep-alive connection closed after this; 0: never
                                     * (opts NULL: HTTP_KEEPALIVE_TIMEOUT_DEFAULT) */
    int max_requests_per_conn;      /* 0: unlimited */
    const tls_server_cfg_t *tls;    /* HTTPS: each connection's handshake first (borrowed:
                                     * keep it alive while the server runs); NULL: HTTP */
    /* HTTPS: a connection whose handshake failed (why: tls_conn_why), with the data given
     * to http_server_new; may be NULL. */
    void (*tls_failed)(uint64_t flow, const char *why, void *data);
    /* SO_KEEPALIVE and TCP_KEEPIDLE/INTVL/CNT set on the listening socket: every accepted
     * connection inherits them (tcp_conn_set_keepalive). so_keepalive false: off. */
    bool so_keepalive;
    tcp_keepalive_t keepalive;
} http_server_opts_t;
/* Listens on node addr:port (addr 0: any). NULL with *rc on failure (LB_EADDRINUSE).
 * Requests on one connection are served one at a time, in order (nginx): the handler for
 * a pipelined request runs once the previous response was sent. Connection: close on the
 * request or the response makes the server close after the response (it then holds
 * TIME_WAIT); a message that is not an HTTP request gets 400 and close. */
http_server_t *http_server_new(net_node_t *node, uint32_t addr, uint16_t port,
                               const http_server_opts_t *opts, http_handler_cb cb,
                               void *data, int *rc);
/* Stops listening and aborts its connections. Exchanges still awaiting http_respond are
 * freed too: the owner must cancel its pending work first and not touch them after. */
void http_server_free(http_server_t *srv);
typedef struct http_server_stats {
    uint64_t conns_accepted, conns_open, conns_failed;  /* failed: RST / TCP error */
    uint64_t requests, responses, idle_closed;          /* idle_closed: keepalive timeout */
} http_server_stats_t;
void http_server_stats(const http_server_t *srv, http_server_stats_t *out);
/* Sends resp (ownership taken). If the connection died meanwhile, resp is just freed.
 * Ends the exchange: ex is invalid afterwards. */
void http_respond(http_exchange_t *ex, http_msg_t *resp);
/* Resets the client connection instead of answering (ends the exchange). */
void http_exchange_reset(http_exchange_t *ex);
uint32_t http_exchange_peer_addr(const http_exchange_t *ex);
uint16_t http_exchange_peer_port(const http_exchange_t *ex);
uint32_t http_exchange_local_addr(const http_exchange_t *ex);
uint64_t http_exchange_flow(const http_exchange_t *ex);
net_node_t *http_exchange_node(const http_exchange_t *ex);
/* True once the client connection closed or reset (the answer would go nowhere). */
bool http_exchange_dead(const http_exchange_t *ex);

/* ---- client ---------------------------------------------------------------------------- */
typedef struct http_pool http_pool_t;

typedef struct http_client_opts {
    bool keepalive;                 /* reuse connections; false: Connection: close */
    sim_time_t connect_timeout;     /* 0: TCP's syn_retries decide (~127 s) */
    sim_time_t response_timeout;    /* from request sent to full response; 0: none */
    sim_time_t idle_timeout;        /* idle pooled connection closed after this; 0: never */
    int max_conns_per_dest;         /* 0: unlimited; beyond it requests wait */
    uint32_t src;                   /* source address, 0: route's */
    const tls_client_cfg_t *tls;    /* HTTPS: a handshake on each new connection (copied
                                     * per connection; roots borrowed); NULL: HTTP */
    bool tls_sni_from_host;         /* tls->sni NULL: send the first request's Host (not an
                                     * IP literal, without its port) as SNI */
} http_client_opts_t;

/* Outcome of one request. */
enum http_outcome {
    HTTP_OK = 0,                    /* a response arrived (any status) */
    HTTP_CONNECT_TIMEOUT,           /* SYNs unanswered until the connect timeout */
    HTTP_CONNECT_REFUSED,           /* RST or ICMP unreachable answering the SYN */
    HTTP_RESET,                     /* RST after the connection was established */
    HTTP_RESPONSE_TIMEOUT,          /* connected, no full response in time */
    HTTP_CLOSED,                    /* peer closed before the response */
    HTTP_NO_PORT,                   /* no free ephemeral port */
    HTTP_UNREACHABLE,               /* ICMP host/net unreachable, or the sender's own
                                     * route: none, unreachable, prohibit, blackhole */
    /* real mode only (src/real): what the simulation has no counterpart for */
    HTTP_DNS_ERROR,                 /* the target's name did not resolve */
    /* both executors: */
    HTTP_TLS_ERROR,                 /* TLS handshake failed: an alert, a reset or close
                                     * before it completed, certificate verification
                                     * (class other_error) */
    /* real mode only: */
    HTTP_BAD_RESPONSE,              /* bytes that are not an HTTP/1.x response */
    HTTP_OTHER_ERROR,               /* any other client-side failure */
    HTTP_OUTCOME_COUNT
};
const char *http_outcome_name(int outcome);   /* "ok", "connect-timeout", ... */

typedef struct http_result {
    int outcome;                    /* enum http_outcome */
    int status;                     /* response status when outcome == HTTP_OK, else 0 */
    const http_msg_t *resp;         /* borrowed for the callback; NULL unless HTTP_OK */
    sim_time_t t_start;             /* http_pool_request called */
    sim_time_t t_connected;         /* connection ready (== t_start when reused; the time
                                     * it was handed over when it waited); -1: never */
    sim_time_t t_sent;              /* request handed to TCP; -1: never */
    sim_time_t t_done;
    uint64_t flow;                  /* the TCP connection's trace id */
    bool reused;                    /* went over a kept-alive connection */
    uint32_t syn_retransmits;       /* SYNs retransmitted opening this connection (0 when
                                     * reused: this request did not wait for them) */
    const char *detail;             /* HTTP_TLS_ERROR: why (tls_conn_why); else NULL */
} http_result_t;
typedef void (*http_result_cb)(const http_result_t *r, void *data);

/* A pool of connections per destination (addr, port). A request takes the most recently
 * idle connection (LIFO, as Go net/http and nginx upstream keepalive do), else opens one
 * (up to max_conns_per_dest), else waits in the destination's FIFO queue; the response
 * timeout starts when the request is sent. On a response timeout the connection is
 * aborted (RST). A connection whose response (or request) said Connection: close is
 * closed after the server's FIN; an idle one the server closes is dropped on its FIN. No
 * silent retries: a request sent on a connection the server was closing ends in
 * HTTP_CLOSED or HTTP_RESET, as with real clients. opts NULL: keepalive, no timeouts. */
http_pool_t *http_pool_new(net_node_t *node, const http_client_opts_t *opts);
/* Aborts open connections; pending requests are dropped without callbacks. Must not be
 * called from a result callback of the same pool. */
void http_pool_free(http_pool_t *pool);
/* Sends req (ownership taken) to dst:port; cb runs exactly once with the outcome, never
 * from inside this call (a failure found here is reported from a zero-delay event).
 * Without opts.keepalive the request gets "Connection: close". */
void http_pool_request(http_pool_t *pool, uint32_t dst, uint16_t port, http_msg_t *req,
                       http_result_cb cb, void *data);
size_t http_pool_open_conns(const http_pool_t *pool);
/* Idle (reusable) connections to dst:port. */
size_t http_pool_idle_conns(const http_pool_t *pool, uint32_t dst, uint16_t port);
/* Requests in progress (waiting, connecting or sent) over the whole pool. */
size_t http_pool_pending(const http_pool_t *pool);

#endif
