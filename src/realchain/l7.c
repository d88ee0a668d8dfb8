/* l7.c -- one reading of an L7 load balancer model (App Gateway, ALB) for everything the
 * real chain needs from it: the description (describe.c) and haproxy's configuration
 * (render.c) come from the same struct, so what is described is what is rendered. */
#include <string.h>
#include "appgw.h"
#include "aws_alb.h"
#include "realchain_int.h"

static const char *appgw_502_body =
    "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    "</h1></center><hr><center>" APPGW_SERVER_HEADER "</center></body></html>";

static void appgw_read(const char *name, appgw_t *g, realchain_l7_t *l)
{
    const appgw_params_t *p = appgw_params(g);
    *l = (realchain_l7_t){
        .name = name, .type = "azure-app-gateway", .kind = "App Gateway",
        .frontend = p->frontend, .port = p->listener_port,
        .members = p->members, .n_members = p->n_members, .member_port = p->backend_port,
        /* the backend settings' request timeout bounds the connection and the response */
        .connect_timeout = p->request_timeout, .response_timeout = p->request_timeout,
        .retries = APPGW_RETRIES, .fail_open = false,
        .no_healthy_status = 502, .no_healthy_body = appgw_502_body,
        .timeout_status = 504, .refused_status = 502, .server_header = APPGW_SERVER_HEADER,
        .probe_port = p->backend_port,
    };
    l->listen[l->n_listen++] = p->frontend;
    for (size_t i = 0; i < appgw_instance_count(g) && l->n_instances < REALCHAIN_L7_MAX; i++) {
        l->instance[l->n_instances] = appgw_instance_node(g, i);
        l->instance_addr[l->n_instances++] = appgw_instance_addr(g, i);
    }
    if (l->n_instances) l->probe = appgw_instance_health(g, 0);
}

static void alb_read(const char *name, aws_alb_t *alb, realchain_l7_t *l)
{
    const aws_alb_params_t *p = aws_alb_params(alb);
    *l = (realchain_l7_t){
        .name = name, .type = "aws-alb", .kind = "ALB",
        .frontend = p->frontend, .port = p->http_port,
        .members = p->targets, .n_members = p->n_targets, .member_port = p->target_port,
        .connect_timeout = AWS_ALB_CONNECT_TIMEOUT, .response_timeout = p->idle_timeout,
        .retries = 0, .fail_open = true,
        .no_healthy_status = 503, .no_healthy_body = "",
        .timeout_status = 504, .refused_status = 502, .server_header = AWS_ALB_SERVER,
        .probe_port = p->hc_port ? p->hc_port : p->target_port,
        .https_port = p->https_port,
        .http_action = p->http_action == AWS_ALB_HTTP_REDIRECT ? "redirect"
                       : p->http_action == AWS_ALB_HTTP_NONE ? "none" : "forward",
    };
    if (p->frontend) l->listen[l->n_listen++] = p->frontend;
    for (size_t i = 0; i < aws_alb_node_count(alb) && l->n_instances < REALCHAIN_L7_MAX; i++) {
        l->instance[l->n_instances] = aws_alb_node(alb, i);
        l->instance_addr[l->n_instances++] = aws_alb_node_addr(alb, i);
        if (l->n_listen < REALCHAIN_L7_MAX) l->listen[l->n_listen++] = aws_alb_node_addr(alb, i);
    }
    if (l->n_instances) l->probe = aws_alb_health(alb, 0);
}

bool realchain_l7_read(scn_run_t *r, const char *name, realchain_l7_t *l)
{
    void *obj;
    if ((obj = realchain_object(r, name, "appgw"))) appgw_read(name, obj, l);
    else if ((obj = realchain_object(r, name, "aws-alb"))) alb_read(name, obj, l);
    else return false;
    return true;
}
