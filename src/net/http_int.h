/* http_int.h -- declarations shared by the HTTP files (http_msg.c, http_server.c,
 * http_client.c) and private to them. */
#ifndef HTTP_INT_H
#define HTTP_INT_H

#include "http.h"

/* Emits "text" as a trace line of `flow` at `node`. Call through HTTP_TRACE so that the
 * formatting costs nothing unless the flow is traced. */
void http_tracef(net_node_t *node, uint64_t flow, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#define HTTP_TRACE(node, flow, ...) do { \
        if (net_tracing((node)->net, (flow))) http_tracef((node), (flow), __VA_ARGS__); \
    } while (0)

#endif
