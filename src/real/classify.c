/* classify.c -- a finished libcurl transfer in the simulator's terms. The simulated client
 * (src/net/http_client.c connect_outcome / established_outcome) and checker
 * (models/lb/health.c) decide from the TCP error a connection reported; libcurl reports a
 * CURLcode (libcurl-errors(3)) plus the errno of the failing socket call
 * (CURLINFO_OS_ERRNO). The table:
 *
 *   curl code                      errno / phase              outcome            LB_E*
 *   CURLE_OK                       -                          ok (the status)    0
 *   COULDNT_CONNECT (7)            ECONNREFUSED, ECONNRESET   connect-refused    ECONNREFUSED
 *                                  ETIMEDOUT                  connect-timeout    ETIMEDOUT
 *                                  EHOSTUNREACH, ENETUNREACH  unreachable        EHOSTUNREACH
 *                                  EACCES, EINVAL (the        unreachable        EACCES, EINVAL
 *                                  sender's prohibit or blackhole route)
 *                                  EADDRNOTAVAIL              no-port            EADDRNOTAVAIL
 *                                  other                      connect-refused    ECONNREFUSED
 *   OPERATION_TIMEDOUT (28)        not connected yet          connect-timeout    ETIMEDOUT
 *                                  connected                  response-timeout   ETIMEDOUT
 *   (our response deadline)        connected                  response-timeout   ETIMEDOUT
 *   GOT_NOTHING (52)               ECONNRESET                 reset              ECONNRESET
 *                                  (FIN, nothing received)    closed             ECLOSED
 *   PARTIAL_FILE (18)              (FIN inside the response)  closed             ECLOSED
 *   RECV_ERROR (56), SEND_ERROR    ECONNRESET, EPIPE, other   reset              ECONNRESET
 *     (55)                         ETIMEDOUT                  response-timeout   ETIMEDOUT
 *                                  EHOSTUNREACH               unreachable        EHOSTUNREACH
 *   COULDNT_RESOLVE_HOST (6)       -                          dns-error          EHOSTUNREACH
 *   SSL_* / PEER_FAILED_VERIF.     any (a RST or an alert     tls-error          ETLS
 *                                  during the handshake)
 *   WEIRD_SERVER_REPLY (8),        -                          bad-response       EPARSE
 *     UNSUPPORTED_PROTOCOL (1: HTTP/0.9), BAD_CONTENT_ENCODING (61)
 *   anything else                  -                          other              EIO
 *
 * A RST answering the SYN is "refused" (as Linux's connect() says ECONNREFUSED); a RST on
 * an established connection is "reset"; a FIN before the response is "closed" -- the
 * same three the simulated client tells apart. A RST (or FIN, or alert) before the TLS
 * handshake completed is "tls-error", as src/net/tls.c reports it: Envoy resetting a
 * ClientHello no filter chain matches (curl: "SSL_connect: Connection reset by peer",
 * code 35) is a TLS failure in both executors. The metrics class then follows from
 * m_class_of (a status outside 200-599 and the real-only outcomes are other_error). */
#include <errno.h>
#include "real_int.h"

void real_classify(CURLcode rc, long os_errno, long status, bool connected,
                   bool timed_out_by_us, real_outcome_t *o)
{
    o->status = 0;
    o->connected = connected;
    o->err = 0;
    if (timed_out_by_us) {
        o->outcome = connected ? HTTP_RESPONSE_TIMEOUT : HTTP_CONNECT_TIMEOUT;
        o->err = LB_ETIMEDOUT;
        return;
    }
    switch (rc) {
    case CURLE_OK:
        o->outcome = HTTP_OK;
        o->status = (int)status;
        o->connected = true;
        return;
    case CURLE_COULDNT_CONNECT:
        o->connected = false;
        switch (os_errno) {
        case ETIMEDOUT: o->outcome = HTTP_CONNECT_TIMEOUT; o->err = LB_ETIMEDOUT; return;
        case EHOSTUNREACH:
        case ENETUNREACH: o->outcome = HTTP_UNREACHABLE; o->err = LB_EHOSTUNREACH; return;
        case EACCES: o->outcome = HTTP_UNREACHABLE; o->err = LB_EACCES; return;
        case EINVAL: o->outcome = HTTP_UNREACHABLE; o->err = LB_EINVAL; return;
        case EADDRNOTAVAIL: o->outcome = HTTP_NO_PORT; o->err = LB_EADDRNOTAVAIL; return;
        default: o->outcome = HTTP_CONNECT_REFUSED; o->err = LB_ECONNREFUSED; return;
        }
    case CURLE_OPERATION_TIMEDOUT:
        o->outcome = connected ? HTTP_RESPONSE_TIMEOUT : HTTP_CONNECT_TIMEOUT;
        o->err = LB_ETIMEDOUT;
        return;
    case CURLE_GOT_NOTHING:
        if (os_errno == ECONNRESET) {
            o->outcome = HTTP_RESET;
            o->err = LB_ECONNRESET;
        } else {
            o->outcome = HTTP_CLOSED;
            o->err = LB_ECLOSED;
        }
        return;
    case CURLE_PARTIAL_FILE:
        o->outcome = HTTP_CLOSED;
        o->err = LB_ECLOSED;
        return;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        switch (os_errno) {
        case ETIMEDOUT: o->outcome = HTTP_RESPONSE_TIMEOUT; o->err = LB_ETIMEDOUT; return;
        case EHOSTUNREACH:
        case ENETUNREACH: o->outcome = HTTP_UNREACHABLE; o->err = LB_EHOSTUNREACH; return;
        default: o->outcome = HTTP_RESET; o->err = LB_ECONNRESET; return;
        }
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        o->outcome = HTTP_DNS_ERROR;
        o->err = LB_EHOSTUNREACH;
        o->connected = false;
        return;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        o->outcome = HTTP_TLS_ERROR;            /* reset, closed or alert in the handshake */
        o->err = LB_ETLS;
        o->connected = true;
        return;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_CONTENT_ENCODING:
        o->outcome = HTTP_BAD_RESPONSE;
        o->err = LB_EPARSE;
        return;
    default:
        o->outcome = HTTP_OTHER_ERROR;
        o->err = LB_EIO;
        return;
    }
}
