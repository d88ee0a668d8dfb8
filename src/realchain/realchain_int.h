/* realchain_int.h -- declarations shared inside src/realchain (private to the module). */
#ifndef REALCHAIN_INT_H
#define REALCHAIN_INT_H

#include <cJSON.h>
#include "health.h"
#include "scenario.h"

/* A health checker's parameters as they are used (protocol, path, Host, statuses, interval,
 * timeout, thresholds, initial state) and its targets' labels. Caller owns the object. */
cJSON *realchain_health_json(const health_t *hc);
/* "200-399" / "200,202" from a matcher, into buf; returns buf. */
const char *realchain_matcher_str(const health_matcher_t *m, char *buf, size_t n);

/* The object element `name` shared under `kind` (scn_run_object), or NULL. */
void *realchain_object(scn_run_t *r, const char *name, const char *kind);

/* An L7 load balancer (App Gateway, ALB) as the real chain sees it, read once from its
 * model (l7.c) for the description and for haproxy. Pointers borrow from the model. */
#define REALCHAIN_L7_MAX 8
typedef struct realchain_l7 {
    const char *name;               /* element name */
    const char *type, *kind;        /* "azure-app-gateway" / "App Gateway", "aws-alb" / "ALB" */
    uint32_t frontend;              /* 0: none */
    uint32_t listen[REALCHAIN_L7_MAX];  /* addresses clients reach it on */
    size_t n_listen;
    uint16_t port;                  /* listener port (0: no HTTP listener) */
    net_node_t *instance[REALCHAIN_L7_MAX];     /* instances / zone nodes */
    uint32_t instance_addr[REALCHAIN_L7_MAX];
    size_t n_instances;
    const uint32_t *members;        /* backend pool / target group */
    size_t n_members;
    uint16_t member_port;
    sim_time_t connect_timeout, response_timeout;
    int retries;                    /* on another member after a timeout */
    bool fail_open;                 /* no healthy member: send to all */
    int no_healthy_status;          /* its own answer when it has no member to use */
    const char *no_healthy_body;
    int timeout_status, refused_status;     /* its answers to a connect timeout / refusal */
    const char *server_header;
    health_t *probe;                /* instance 0's checker (every instance probes alike) */
    uint16_t probe_port;
    uint16_t https_port;            /* ALB */
    const char *http_action;        /* ALB: forward, redirect, none */
} realchain_l7_t;
/* Fills *l when element `name` is an L7 load balancer; false otherwise. */
bool realchain_l7_read(scn_run_t *r, const char *name, realchain_l7_t *l);

#endif
