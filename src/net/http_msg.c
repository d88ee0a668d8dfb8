/* http_msg.c -- HTTP/1.1 messages: construction, headers, and the wire size, computed
 * from the strings that the message would carry (the text itself is never built).
 * Content-Length is implied by body_size: requests carry it when they have a body,
 * responses always except 1xx/204/304 (RFC 9110 8.6, nginx ngx_http_header_filter). */
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "http_int.h"

#define HTTP_VERSION "HTTP/1.1"

static void msg_destroy(net_msg_t *base)
{
    http_msg_t *m = (http_msg_t *)(void *)base;
    lb_free(m->path);
    lb_free(m->host);
    lb_free(m->body);
    lb_free(m->detail);
    for (int i = 0; i < m->n_headers; i++) {
        lb_free(m->headers[i].name);
        lb_free(m->headers[i].value);
    }
    lb_free(m);
}

static http_msg_t *msg_alloc(void)
{
    http_msg_t *m = lb_calloc(1, sizeof(*m));
    m->base.refs = 1;
    m->base.kind = NET_MSG_HTTP;
    m->base.destroy = msg_destroy;
    return m;
}

static uint32_t digits(uint32_t v)
{
    uint32_t n = 1;
    while (v >= 10) { v /= 10; n++; }
    return n;
}

/* Responses that never carry a body nor Content-Length (RFC 9110 6.4.1). */
static bool status_bodyless(int status)
{
    return (status >= 100 && status < 200) || status == 204 || status == 304;
}

void http_msg_update(http_msg_t *m)
{
    size_t n;
    bool clen;
    if (m->is_request) {
        /* "GET /path HTTP/1.1\r\n" */
        n = strlen(m->method) + 1 + strlen(m->path ? m->path : "/") + 1 +
            (sizeof(HTTP_VERSION) - 1) + 2;
        if (m->host)
            n += 6 + strlen(m->host) + 2;           /* "Host: x\r\n" */
        clen = m->body_size > 0;
    } else {
        /* "HTTP/1.1 200 OK\r\n" */
        n = (sizeof(HTTP_VERSION) - 1) + 1 + 3 + 1 + strlen(http_reason_phrase(m->status)) + 2;
        clen = !status_bodyless(m->status);
    }
    for (int i = 0; i < m->n_headers; i++)          /* "Name: value\r\n" */
        n += strlen(m->headers[i].name) + 2 + strlen(m->headers[i].value) + 2;
    if (clen)
        n += 16 + digits(m->body_size) + 2;         /* "Content-Length: N\r\n" */
    n += 2;                                         /* blank line */
    n += m->body_size;
    assert(n <= UINT32_MAX);
    m->base.size = (uint32_t)n;
}

http_msg_t *http_request_new(const char *method, const char *host, const char *path,
                             uint32_t body_size)
{
    http_msg_t *m = msg_alloc();
    m->is_request = true;
    if (!method || !*method)
        method = "GET";
    size_t ml = strlen(method);
    if (ml >= sizeof(m->method))
        ml = sizeof(m->method) - 1;     /* longer methods are cut (none is in RFC 9110) */
    memcpy(m->method, method, ml);
    m->path = lb_strdup(path && *path ? path : "/");
    m->host = host && *host ? lb_strdup(host) : NULL;
    m->body_size = body_size;
    http_msg_update(m);
    return m;
}

http_msg_t *http_response_new(int status, const char *body_text, uint32_t body_size)
{
    http_msg_t *m = msg_alloc();
    m->status = status;
    if (body_text && *body_text) {
        size_t len = strlen(body_text);
        m->body = lb_strdup(body_text);
        if (body_size < len)
            body_size = (uint32_t)len;
    }
    m->body_size = status_bodyless(status) ? 0 : body_size;
    http_msg_update(m);
    return m;
}

http_msg_t *http_msg_copy(const http_msg_t *m)
{
    http_msg_t *c = msg_alloc();
    c->is_request = m->is_request;
    memcpy(c->method, m->method, sizeof(c->method));
    c->path = m->path ? lb_strdup(m->path) : NULL;
    c->host = m->host ? lb_strdup(m->host) : NULL;
    c->status = m->status;
    c->body = m->body ? lb_strdup(m->body) : NULL;
    c->body_size = m->body_size;
    c->n_headers = m->n_headers;
    for (int i = 0; i < m->n_headers; i++) {
        c->headers[i].name = lb_strdup(m->headers[i].name);
        c->headers[i].value = lb_strdup(m->headers[i].value);
    }
    c->req_id = m->req_id;
    c->detail = m->detail ? lb_strdup(m->detail) : NULL;
    c->base.size = m->base.size;
    return c;
}

static int header_index(const http_msg_t *m, const char *name)
{
    for (int i = 0; i < m->n_headers; i++)
        if (strcasecmp(m->headers[i].name, name) == 0)
            return i;
    return -1;
}

/* Host lives in m->host and Content-Length is implied by body_size, so setting either
 * updates those fields instead of adding a header line. A header beyond
 * HTTP_MAX_HEADERS is ignored. */
void http_header_set(http_msg_t *m, const char *name, const char *value)
{
    if (!value)
        value = "";
    if (strcasecmp(name, "Host") == 0) {
        lb_free(m->host);
        m->host = lb_strdup(value);
    } else if (strcasecmp(name, "Content-Length") == 0) {
        m->body_size = (uint32_t)strtoul(value, NULL, 10);
    } else {
        int i = header_index(m, name);
        if (i >= 0) {
            lb_free(m->headers[i].value);
            m->headers[i].value = lb_strdup(value);
        } else if (m->n_headers < HTTP_MAX_HEADERS) {
            m->headers[m->n_headers].name = lb_strdup(name);
            m->headers[m->n_headers].value = lb_strdup(value);
            m->n_headers++;
        }
    }
    http_msg_update(m);
}

const char *http_header_get(const http_msg_t *m, const char *name)
{
    if (strcasecmp(name, "Host") == 0)
        return m->host;
    int i = header_index(m, name);
    return i >= 0 ? m->headers[i].value : NULL;
}

void http_msg_set_detail(http_msg_t *m, const char *detail)
{
    lb_free(m->detail);
    m->detail = detail ? lb_strdup(detail) : NULL;
}

/* HTTP/1.1 persists unless a Connection header lists the "close" token (RFC 9112 9.3). */
bool http_msg_keepalive(const http_msg_t *m)
{
    if (m->n_headers == 0)
        return true;
    int i = header_index(m, "Connection");
    const char *v = i >= 0 ? m->headers[i].value : NULL;
    if (!v)
        return true;
    const char *p = v;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ' && *e != '\t')
            e++;
        if (e - p == 5 && strncasecmp(p, "close", 5) == 0)
            return false;
        p = e;
    }
    return true;
}

/* Reason phrases as nginx sends them (src/http/ngx_http_header_filter_module.c). */
const char *http_reason_phrase(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Moved Temporarily";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Not Allowed";
    case 408: return "Request Time-out";
    case 413: return "Request Entity Too Large";
    case 429: return "Too Many Requests";
    case 460: return "Client Closed";
    case 499: return "Client Closed Request";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Temporarily Unavailable";
    case 504: return "Gateway Time-out";
    default:  return "Unknown";
    }
}

const char *http_outcome_name(int outcome)
{
    static const char *const names[HTTP_OUTCOME_COUNT] = {
        [HTTP_OK] = "ok",
        [HTTP_CONNECT_TIMEOUT] = "connect-timeout",
        [HTTP_CONNECT_REFUSED] = "connect-refused",
        [HTTP_RESET] = "reset",
        [HTTP_RESPONSE_TIMEOUT] = "response-timeout",
        [HTTP_CLOSED] = "closed",
        [HTTP_NO_PORT] = "no-port",
        [HTTP_UNREACHABLE] = "unreachable",
        [HTTP_DNS_ERROR] = "dns-error",
        [HTTP_TLS_ERROR] = "tls-error",
        [HTTP_BAD_RESPONSE] = "bad-response",
        [HTTP_OTHER_ERROR] = "other",
    };
    return outcome >= 0 && outcome < HTTP_OUTCOME_COUNT ? names[outcome] : "unknown";
}

void http_tracef(net_node_t *node, uint64_t flow, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    net_tracef_flow(node->net, node->name, flow, "%s", buf);
}
