/* util.c -- shared test helpers: small topologies through the public C API and a packet
 * capture through the network observer. */
#include <check.h>
#include <string.h>
#include "util.h"
#include "netfilter.h"
#include "nftables.h"

uint32_t tu_ip(const char *s)
{
    uint32_t a = 0;
    ck_assert_int_eq(lb_ip_parse(s, &a), 0);
    return a;
}

void tu_pair_new(tu_pair_t *t, uint64_t seed, sim_time_t latency, uint64_t bw, double loss)
{
    memset(t, 0, sizeof *t);
    t->sim = sim_new(seed);
    t->net = net_new(t->sim);
    t->a = net_node_add(t->net, "a");
    t->b = net_node_add(t->net, "b");
    net_iface_t *ia = net_iface_add(t->a, "eth0", tu_ip("10.0.0.1"), 24);
    net_iface_t *ib = net_iface_add(t->b, "eth0", tu_ip("10.0.0.2"), 24);
    net_link_params_t lp = {.latency = latency, .bandwidth_bps = bw, .loss = loss};
    t->link = net_link_new(t->net, ia, ib, &lp);
}

void tu_pair_free(tu_pair_t *t)
{
    net_free(t->net);
    sim_free(t->sim);
    memset(t, 0, sizeof *t);
}

static void cap_cb(void *data, sim_time_t t, const char *where, const pkt_t *p)
{
    tu_capture_t *c = data;
    if (c->n >= (int)(sizeof c->rec / sizeof c->rec[0])) return;
    c->rec[c->n].t = t;
    c->rec[c->n].p = *p;
    c->rec[c->n].p.msg = NULL;
    snprintf(c->rec[c->n].where, sizeof c->rec[c->n].where, "%s", where);
    c->n++;
}

void tu_capture_start(net_t *net, tu_capture_t *cap)
{
    cap->n = 0;
    net_observer_t o = {.capture = cap_cb, .data = cap};
    net_set_observer(net, &o);
}

void tu_fabric_new(uint64_t seed, const char *name, sim_time_t latency, sim_t **sim,
                   net_t **net, net_fabric_t **fab)
{
    *sim = sim_new(seed);
    *net = net_new(*sim);
    net_fabric_params_t fp = {.latency = latency};
    *fab = net_fabric_new(*net, name, &fp);
}

net_iface_t *tu_fabric_host(net_t *net, net_fabric_t *fab, const char *name, const char *ip,
                            int plen, bool default_route)
{
    net_node_t *n = net_node_add(net, name);
    net_iface_t *i = net_iface_add(n, "eth0", tu_ip(ip), plen);
    ck_assert_int_eq(net_fabric_attach(fab, i), 0);
    if (default_route) net_route_add(n, 0, 0, 0, i);
    return i;
}

pkt_t *tu_tcp_pkt(net_t *net, const char *src, uint16_t sport, const char *dst,
                  uint16_t dport, uint8_t flags)
{
    pkt_t *p = pkt_new(net);
    p->proto = NET_PROTO_TCP;
    p->src = tu_ip(src);
    p->sport = sport;
    p->dst = tu_ip(dst);
    p->dport = dport;
    p->tcp_flags = flags;
    return p;
}

static void copy_str(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "");
}

void tu_res_cb(const http_result_t *r, void *data)
{
    tu_res_t *s = data;
    int i = s->n++ % TU_RES_MAX;
    s->r[i] = *r;
    s->r[i].resp = NULL;
    const http_msg_t *m = r->resp;
    copy_str(s->body[i], sizeof s->body[i], m ? m->body : NULL);
    copy_str(s->server[i], sizeof s->server[i], m ? http_header_get(m, "Server") : NULL);
    copy_str(s->detail[i], sizeof s->detail[i], m ? m->detail : NULL);
    copy_str(s->location[i], sizeof s->location[i], m ? http_header_get(m, "Location") : NULL);
}

char *tu_explain_text(const explain_t *ex, size_t chains)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    ck_assert_int_eq(explain_print(ex, NULL, mem), chains);
    fclose(mem);
    return text;
}

static void obs_cap(void *d, sim_time_t t, const char *where, const pkt_t *p)
{
    tu_obs_t *o = d;
    cap_cb(&o->cap, t, where, p);
}

static void obs_drop(void *d, const net_node_t *where, const pkt_t *p, const char *reason,
                     const char *detail)
{
    (void)p;
    tu_obs_t *o = d;
    if (o->ndrop >= (int)(sizeof o->drop / sizeof o->drop[0])) return;
    snprintf(o->drop[o->ndrop].where, sizeof o->drop[0].where, "%s", where ? where->name : "-");
    snprintf(o->drop[o->ndrop].reason, sizeof o->drop[0].reason, "%s", reason);
    snprintf(o->drop[o->ndrop].detail, sizeof o->drop[0].detail, "%s", detail ? detail : "");
    o->ndrop++;
}

static void obs_trace(void *d, sim_time_t t, uint64_t flow, const char *where, const char *text)
{
    (void)t;
    (void)flow;
    tu_obs_t *o = d;
    if (o->ntrace >= (int)(sizeof o->trace / sizeof o->trace[0])) return;
    snprintf(o->trace[o->ntrace++], sizeof o->trace[0], "%s: %s", where, text);
}

void tu_obs_start(net_t *net, tu_obs_t *o)
{
    memset(o, 0, sizeof *o);
    net_observer_t ob = {.drop = obs_drop, .trace = obs_trace, .capture = obs_cap, .data = o};
    net_set_observer(net, &ob);
}

const pkt_t *tu_obs_cap(const tu_obs_t *o, const char *where, int i)
{
    for (int k = 0; k < o->cap.n; k++)
        if (!strcmp(o->cap.rec[k].where, where) && i-- == 0) return &o->cap.rec[k].p;
    return NULL;
}

int tu_obs_cap_count(const tu_obs_t *o, const char *where)
{
    int n = 0;
    for (int k = 0; k < o->cap.n; k++) n += !strcmp(o->cap.rec[k].where, where);
    return n;
}

int tu_obs_drop_find(const tu_obs_t *o, const char *where, const char *reason)
{
    for (int k = 0; k < o->ndrop; k++)
        if (!strcmp(o->drop[k].where, where) && !strcmp(o->drop[k].reason, reason)) return k;
    return -1;
}

bool tu_obs_trace_has(const tu_obs_t *o, const char *needle)
{
    for (int k = 0; k < o->ntrace; k++)
        if (strstr(o->trace[k], needle)) return true;
    return false;
}

static void side_connected(tcp_conn_t *c, void *d)
{
    tu_side_t *s = d;
    (void)c;
    s->connected++;
    s->t_connected = sim_now(s->sim);
}

static void side_recv(tcp_conn_t *c, net_msg_t *m, void *d)
{
    tu_side_t *s = d;
    s->recvs++;
    s->bytes += m->size;
    s->last = m;
    s->t_recv = sim_now(s->sim);
    if (s->reply) {
        net_msg_t *r = net_msg_raw(s->reply);
        ck_assert_int_eq(tcp_send(c, r), 0);
        net_msg_unref(r);
        if (s->close_after_reply) {
            tcp_close(c);
            s->c = NULL;
        }
    } else if (s->close_on_recv) {
        tcp_close(c);
        s->c = NULL;
    }
}

static void side_eof(tcp_conn_t *c, void *d)
{
    tu_side_t *s = d;
    s->eofs++;
    s->t_eof = sim_now(s->sim);
    if (s->close_on_eof) {
        tcp_close(c);
        s->c = NULL;
    }
}

void tu_side_error(tcp_conn_t *c, int rc, void *d)
{
    tu_side_t *s = d;
    (void)c;
    s->errors++;
    s->rc = rc;
    s->t_error = sim_now(s->sim);
    s->c = NULL;
}

const tcp_cbs_t tu_side_cbs = {side_connected, side_recv, side_eof, tu_side_error};

void tu_side_accept(tcp_conn_t *c, void *d)
{
    tu_side_t *s = d;
    s->accepted++;
    s->t_accepted = sim_now(s->sim);
    s->peer = tcp_conn_raddr(c);
    s->peer_port = tcp_conn_rport(c);
    s->c = c;
    tcp_conn_set_cbs(c, &tu_side_cbs, s);
}

tcp_stats_t tu_tcp_stats(net_node_t *n)
{
    tcp_stats_t s;
    tcp_stack_stats(n, &s);
    return s;
}

pkt_t *tu_tcp_seg(net_t *net, const char *src, uint16_t sport, const char *dst,
                  uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack)
{
    pkt_t *p = tu_tcp_pkt(net, src, sport, dst, dport, flags);
    p->seq = seq;
    p->ack = ack;
    p->win = 65535;
    return p;
}

void tu_assert_svc_port(const k8s_service_port_t *p, const char *name, int port,
                        const char *app_protocol)
{
    ck_assert_str_eq(p->name, name);
    ck_assert_int_eq(p->port, port);
    ck_assert_str_eq(p->app_protocol, app_protocol);
}

int tu_line_at(const char *text, const char *l)
{
    size_t n = strlen(l);
    int i = 0;
    for (const char *p = text; *p; i++) {
        const char *e = strchr(p, '\n');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && !memcmp(p, l, n)) return i;
        if (!e) break;
        p = e + 1;
    }
    return -1;
}

void tu_assert_text_eq(const char *got, const char *want)
{
    int ln = 1;
    const char *g = got, *w = want;
    while (*g && *g == *w) {
        if (*g == '\n') ln++;
        g++, w++;
    }
    if (!*g && !*w) return;
    while (g > got && g[-1] != '\n') g--;
    while (w > want && w[-1] != '\n') w--;
    ck_abort_msg("line %d differs:\n got: %.*s\nwant: %.*s", ln, (int)strcspn(g, "\n"), g,
                 (int)strcspn(w, "\n"), w);
}

static void kp_link(net_t *net, net_iface_t *a, net_iface_t *b)
{
    net_link_params_t lp = { .latency = 100 * SIM_US };
    net_link_new(net, a, b, &lp);
}

void tu_kp_net_new(tu_kp_net_t *k, bool n1_default)
{
    memset(k, 0, sizeof *k);
    k->sim = sim_new(7);
    k->net = net_new(k->sim);
    k->client = net_node_add(k->net, "client");
    k->n1 = net_node_add(k->net, "n1");
    k->n2 = net_node_add(k->net, "n2");
    k->pa = net_node_add(k->net, "pod-a");
    k->pb = net_node_add(k->net, "pod-b");
    k->n1->forwarding = k->n2->forwarding = true;
    net_iface_t *c0 = net_iface_add(k->client, "eth0", tu_ip("203.0.113.2"), 24);
    net_iface_t *n1e1 = net_iface_add(k->n1, "eth1", tu_ip("203.0.113.1"), 24);
    net_iface_t *n1e0 = net_iface_add(k->n1, "eth0", tu_ip("10.240.0.4"), 24);
    net_iface_t *n1c = net_iface_add(k->n1, "cbr0", tu_ip("10.244.0.1"), 24);
    net_iface_t *n2e0 = net_iface_add(k->n2, "eth0", tu_ip("10.240.0.5"), 24);
    net_iface_t *n2c = net_iface_add(k->n2, "cbr0", tu_ip("10.244.1.1"), 24);
    net_iface_t *pa0 = net_iface_add(k->pa, "eth0", tu_ip("10.244.0.10"), 24);
    net_iface_t *pb0 = net_iface_add(k->pb, "eth0", tu_ip("10.244.1.10"), 24);
    kp_link(k->net, c0, n1e1);
    kp_link(k->net, n1e0, n2e0);
    kp_link(k->net, n1c, pa0);
    kp_link(k->net, n2c, pb0);
    net_route_add(k->client, 0, 0, tu_ip("203.0.113.1"), c0);
    net_route_add(k->n1, tu_ip("10.244.1.0"), 24, tu_ip("10.240.0.5"), n1e0);
    if (n1_default) net_route_add(k->n1, 0, 0, tu_ip("10.240.0.5"), n1e0);
    net_route_add(k->n2, 0, 0, tu_ip("10.240.0.4"), n2e0);
    net_route_add(k->pa, 0, 0, tu_ip("10.244.0.1"), pa0);
    net_route_add(k->pb, 0, 0, tu_ip("10.244.1.1"), pb0);
    k->obs = lb_calloc(1, sizeof *k->obs);
    tu_obs_start(k->net, k->obs);
}

char *tu_nft_list(net_node_t *node)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    nft_list(nf_get(node), f);
    fclose(f);
    return buf;
}
