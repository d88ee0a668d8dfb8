/* test_azure_lb.c -- the Azure internal Standard LB on a VNet fabric (1 ms per delivery)
 * with a client and three backend nodes: 5-tuple spreading and flow pinning, a backend
 * whose HTTP probe gets 404 taken out at the exact probe, all backends down -> SYNs
 * dropped with the probe's reason and the client's connect timing out after its SYN
 * retries while an established flow keeps working, what arrives at the node with and
 * without floating IP, probes from 168.63.129.16, idle timeout (silent or RST), the
 * initial state, fail open, rule and probe bookkeeping, cloud-provider-azure's probe. */
#include <check.h>
#include <string.h>
#include "azure_lb.h"
#include "http.h"
#include "tcp.h"
#include "util.h"

#define L (1 * SIM_MS)                  /* fabric latency per delivery */
#define NB 3
#define FRONTEND "10.1.2.100"
#define HZ_PORT 10256                   /* a TCP probe port with a bare listener */

typedef struct be {
    net_node_t *node;
    net_iface_t *ifc;
    http_server_t *http;
    int root_status;                    /* answer to "/" (the HTTP probe path) */
    int app_requests;
    uint32_t last_peer;                 /* peer of the last "/" request */
} be_t;

#define MAXREC 256
typedef struct fx {
    sim_t *sim;
    net_t *net;
    net_fabric_t *fab;
    net_node_t *client;
    be_t be[NB];
    azure_lb_t *lb;
    metrics_t *m;
    struct { sim_time_t t; char reason[40]; char detail[768]; pkt_t p; } drop[MAXREC];
    int ndrop;
    struct { sim_time_t t; char where[32]; pkt_t p; } cap[4096];
    int ncap;
    azure_lb_event_t ev[64];
    char ev_reason[64][96];
    int nev;
} fx_t;

static void obs_drop(void *data, const net_node_t *where, const pkt_t *p, const char *reason,
                     const char *detail)
{
    (void)where;
    fx_t *f = data;
    if (f->ndrop >= MAXREC) return;
    f->drop[f->ndrop].t = sim_now(f->sim);
    snprintf(f->drop[f->ndrop].reason, sizeof f->drop[0].reason, "%s", reason);
    snprintf(f->drop[f->ndrop].detail, sizeof f->drop[0].detail, "%s", detail ? detail : "");
    f->drop[f->ndrop].p = *p;
    f->drop[f->ndrop].p.msg = NULL;
    f->ndrop++;
}

static void obs_cap(void *data, sim_time_t t, const char *where, const pkt_t *p)
{
    fx_t *f = data;
    if (f->ncap >= 4096) return;
    f->cap[f->ncap].t = t;
    snprintf(f->cap[f->ncap].where, sizeof f->cap[0].where, "%s", where);
    f->cap[f->ncap].p = *p;
    f->cap[f->ncap].p.msg = NULL;
    f->ncap++;
}

static void on_event(azure_lb_t *lb, const azure_lb_event_t *ev, void *data)
{
    (void)lb;
    fx_t *f = data;
    if (f->nev >= 64) return;
    f->ev[f->nev] = *ev;
    f->ev[f->nev].probe = NULL;
    snprintf(f->ev_reason[f->nev], sizeof f->ev_reason[0], "%s", ev->probe->reason);
    f->nev++;
}

static void be_handler(http_exchange_t *ex, const http_msg_t *req, void *data)
{
    be_t *b = data;
    if (!strcmp(req->path, "/")) {
        b->last_peer = http_exchange_peer_addr(ex);
        http_respond(ex, http_response_new(b->root_status, NULL, 0));
        return;
    }
    b->app_requests++;
    http_respond(ex, http_response_new(200, b->node->name, 0));
}

static void accept_keep(tcp_conn_t *c, void *data)
{
    (void)c, (void)data;                /* the connection stays open, silent */
}

static void accept_close(tcp_conn_t *c, void *data)
{
    (void)data;
    tcp_close(c);
}

/* client 10.1.0.10, aks-0..2 10.1.1.4-6 (each also owning the frontend IP, as a floating-IP
 * backend must), an HTTP server on :80 and a TCP listener on :HZ_PORT on every node. */
static void fx_new(fx_t *f, uint64_t seed, const azure_lb_params_t *lp)
{
    memset(f, 0, sizeof *f);
    tu_fabric_new(seed, "vnet", L, &f->sim, &f->net, &f->fab);
    net_observer_t o = {.drop = obs_drop, .capture = obs_cap, .data = f};
    net_set_observer(f->net, &o);
    f->client = tu_fabric_host(f->net, f->fab, "client", "10.1.0.10", 16, true)->node;
    f->m = metrics_new(SIM_S, 300 * SIM_S);
    azure_lb_params_t p;
    if (lp) p = *lp;
    else azure_lb_params_default(&p);
    p.metrics = f->m;
    int rc = -99;
    f->lb = azure_lb_new(f->net, f->fab, "ilb", tu_ip(FRONTEND), &p, &rc);
    ck_assert_ptr_nonnull(f->lb);
    ck_assert_int_eq(rc, 0);
    azure_lb_set_event_cb(f->lb, on_event, f);
    for (int i = 0; i < NB; i++) {
        char name[24], ip[24];
        snprintf(name, sizeof name, "aks-%d", i);
        snprintf(ip, sizeof ip, "10.1.1.%d", 4 + i);
        be_t *b = &f->be[i];
        b->ifc = tu_fabric_host(f->net, f->fab, name, ip, 16, true);
        b->node = b->ifc->node;
        net_node_addr_add(b->node, tu_ip(FRONTEND));
        b->root_status = 200;
        b->http = http_server_new(b->node, 0, 80, NULL, be_handler, b, &rc);
        ck_assert_ptr_nonnull(b->http);
        ck_assert_int_eq(tcp_listen(b->node, 0, HZ_PORT, accept_close, NULL), 0);
        ck_assert_int_eq(azure_lb_add_backend(f->lb, b->ifc, NULL), i);
    }
}

static void fx_free(fx_t *f)
{
    azure_lb_free(f->lb);
    for (int i = 0; i < NB; i++) http_server_free(f->be[i].http);
    net_free(f->net);
    sim_free(f->sim);
    metrics_free(f->m);
}

static int add_tcp_rule(fx_t *f, uint16_t port, uint16_t probe_port)
{
    azure_lb_rule_t r;
    azure_lb_rule_init(&r, port);
    r.probe.port = probe_port;
    return azure_lb_add_rule(f->lb, &r);
}

static int add_http_rule(fx_t *f, uint16_t port)
{
    azure_lb_rule_t r;
    azure_lb_rule_init(&r, port);
    r.probe.protocol = AZURE_PROBE_HTTP;
    r.probe.port = 80;
    r.probe.path = "/";
    return azure_lb_add_rule(f->lb, &r);
}

/* fx_new (default LB parameters) with a TCP rule for port probing HZ_PORT (rule 0). */
static void fx_tcp(fx_t *f, uint64_t seed, uint16_t port)
{
    fx_new(f, seed, NULL);
    ck_assert_int_eq(add_tcp_rule(f, port, HZ_PORT), 0);
}

/* fx_new with an HTTP rule for port 80 (rule 0): GET / on port 80. */
static void fx_http(fx_t *f, uint64_t seed, const azure_lb_params_t *lp)
{
    fx_new(f, seed, lp);
    ck_assert_int_eq(add_http_rule(f, 80), 0);
}

/* Every backend node listens on TCP port (the connections staying open, silent). */
static void listen_all(fx_t *f, uint16_t port)
{
    for (int i = 0; i < NB; i++)
        ck_assert_int_eq(tcp_listen(f->be[i].node, 0, port, accept_keep, NULL), 0);
}

static azure_lb_stats_t lb_stats(const fx_t *f)
{
    azure_lb_stats_t st;
    azure_lb_stats(f->lb, &st);
    return st;
}

static int64_t counter(const fx_t *f, const char *name)
{
    return metrics_counter(f->m, name, (m_window_t){0, SIM_TIME_MAX});
}

static int drops(const fx_t *f, const char *reason)
{
    int n = 0;
    for (int i = 0; i < f->ndrop; i++) n += !strcmp(f->drop[i].reason, reason);
    return n;
}

/* The backend the LB's flow table holds for client connection c to the frontend's port. */
static int backend_of(const fx_t *f, tcp_conn_t *c, uint16_t port)
{
    return azure_lb_flow_backend(f->lb, tcp_conn_laddr(c), tcp_conn_lport(c),
                                 tu_ip(FRONTEND), port, NET_PROTO_TCP);
}

/* ---- a client connection that records its outcome --------------------------------------- */
typedef struct cconn { tcp_conn_t *c; int err; sim_time_t t_conn, t_err; } cconn_t;
static void cc_connected(tcp_conn_t *c, void *data)
{
    (void)c;
    cconn_t *k = data;
    k->t_conn = sim_now(net_sim(tcp_conn_node(c)->net));
}
static void cc_error(tcp_conn_t *c, int rc, void *data)
{
    cconn_t *k = data;
    k->err = rc;
    k->t_err = sim_now(net_sim(tcp_conn_node(c)->net));
    k->c = NULL;
}
static const tcp_cbs_t cc_cbs = {.connected = cc_connected, .error = cc_error};

static void cc_open(fx_t *f, cconn_t *k, uint16_t port)
{
    memset(k, 0, sizeof *k);
    k->t_conn = k->t_err = -1;
    int rc = 0;
    k->c = tcp_connect(f->client, tu_ip(FRONTEND), port, NULL, &cc_cbs, k, &rc);
    ck_assert_ptr_nonnull(k->c);
}

/* ---- tests ------------------------------------------------------------------------------ */

/* 60 new connections spread over the three healthy backends by the 5-tuple hash, each
 * pinned in the flow table; a backend whose probe starts failing keeps its established
 * flow and gets no new ones. */
START_TEST(distribution_and_pinning)
{
    fx_t f;
    fx_tcp(&f, 1, 80);
    sim_run(f.sim, 1 * SIM_S);
    ck_assert_uint_eq(azure_lb_rule_healthy_count(f.lb, 0), 3);
    static cconn_t k[90];
    for (int i = 0; i < 60; i++) cc_open(&f, &k[i], 80);
    sim_run(f.sim, 2 * SIM_S);
    int per[NB] = {0};
    for (int i = 0; i < 60; i++) {
        ck_assert_int_eq(k[i].t_conn, 1 * SIM_S + 3 * L);      /* via LB 2 L, back 1 L */
        int b = backend_of(&f, k[i].c, 80);
        ck_assert_int_ge(b, 0);
        per[b]++;
    }
    for (int b = 0; b < NB; b++) {
        http_server_stats_t ss;
        http_server_stats(f.be[b].http, &ss);
        ck_assert_uint_eq(ss.conns_accepted, (uint64_t)per[b]);  /* the flow table is truth */
        ck_assert_int_ge(per[b], 10);                           /* a fair spread */
    }
    azure_lb_stats_t st = lb_stats(&f);
    ck_assert_uint_eq(st.new_flows, 60);
    ck_assert_uint_eq(st.flows_now, 60);
    ck_assert_int_eq(f.nev, 4);                 /* 3 x BACKEND_UP and RULE_UP at 2 L */
    f.nev = 0;

    /* backend X of connection 0 stops answering its probe: RSTs at the 5 s and 10 s probes */
    int x = backend_of(&f, k[0].c, 80);
    ck_assert_int_eq(tcp_unlisten(f.be[x].node, 0, HZ_PORT), 0);
    sim_run(f.sim, 10 * SIM_S + 2 * L - 1);
    ck_assert(azure_lb_backend_healthy(f.lb, 0, x));
    sim_run(f.sim, 10 * SIM_S + 2 * L);
    ck_assert(!azure_lb_backend_healthy(f.lb, 0, x));
    ck_assert_int_eq(f.nev, 1);
    ck_assert_int_eq(f.ev[0].kind, AZURE_LB_EV_BACKEND_DOWN);
    ck_assert_int_eq(f.ev[0].t, 10 * SIM_S + 2 * L);
    ck_assert_uint_eq(f.ev[0].backend, (size_t)x);
    ck_assert_str_eq(f.ev_reason[0], "connection refused");

    /* the established flow still goes to X */
    int before = f.ncap;
    net_msg_t *m = net_msg_raw(100);
    ck_assert_int_eq(tcp_send(k[0].c, m), 0);
    net_msg_unref(m);
    sim_run(f.sim, 11 * SIM_S);
    bool seen = false;
    for (int i = before; i < f.ncap; i++)
        if (!strcmp(f.cap[i].where, f.be[x].node->name) && f.cap[i].p.len == 100 &&
            f.cap[i].p.sport == tcp_conn_lport(k[0].c))
            seen = true;
    ck_assert(seen);
    /* new flows avoid X */
    for (int i = 60; i < 90; i++) cc_open(&f, &k[i], 80);
    sim_run(f.sim, 12 * SIM_S);
    for (int i = 60; i < 90; i++) {
        ck_assert_int_eq(k[i].t_conn, 11 * SIM_S + 3 * L);
        int b = backend_of(&f, k[i].c, 80);
        ck_assert_int_ge(b, 0);
        ck_assert_int_ne(b, x);
    }
    fx_free(&f);
}
END_TEST

static void set_404(sim_t *sim, void *a, void *b)
{
    (void)sim, (void)b;
    ((be_t *)a)->root_status = 404;
}

/* The HTTP probe (GET / on :80, interval 5 s, threshold 2) of aks-1 gets 404 from t=12 s:
 * the 15 s and 20 s probes fail and aks-1 is out at 20 s + 4 L; the others stay. */
START_TEST(http_probe_404_takes_backend_out)
{
    fx_t f;
    fx_http(&f, 2, NULL);
    sim_schedule_at(f.sim, 12 * SIM_S, set_404, &f.be[1], NULL);
    sim_run(f.sim, 20 * SIM_S + 4 * L - 1);
    ck_assert(azure_lb_backend_healthy(f.lb, 0, 1));
    ck_assert_int_eq(f.nev, 4);                         /* 3 BACKEND_UP + RULE_UP at 4 L */
    ck_assert_int_eq(f.ev[0].kind, AZURE_LB_EV_BACKEND_UP);
    ck_assert_int_eq(f.ev[0].t, 4 * L);
    ck_assert_int_eq(f.ev[1].kind, AZURE_LB_EV_RULE_UP);
    sim_run(f.sim, 20 * SIM_S + 4 * L);
    ck_assert(!azure_lb_backend_healthy(f.lb, 0, 1));
    ck_assert(azure_lb_backend_healthy(f.lb, 0, 0));
    ck_assert(azure_lb_backend_healthy(f.lb, 0, 2));
    ck_assert_uint_eq(azure_lb_rule_healthy_count(f.lb, 0), 2);
    ck_assert_int_eq(azure_lb_rule_down_since(f.lb, 0), -1);
    char buf[256];
    ck_assert_ptr_null(azure_lb_rule_down_reason(f.lb, 0, buf, sizeof buf));
    ck_assert_int_eq(f.nev, 5);
    ck_assert_int_eq(f.ev[4].kind, AZURE_LB_EV_BACKEND_DOWN);
    ck_assert_int_eq(f.ev[4].t, 20 * SIM_S + 4 * L);
    ck_assert_int_eq(f.ev[4].from, HEALTH_UP);
    ck_assert_str_eq(f.ev_reason[4], "HTTP 404");
    /* the probes came from 168.63.129.16 and carried Azure's user agent */
    ck_assert_uint_eq(f.be[1].last_peer, tu_ip(AZURE_LB_PROBE_SRC));
    ck_assert_int_eq(counter(&f, "probe.ilb/http-80.fail"), 2);
    ck_assert_int_eq(counter(&f, "health.ilb/http-80.down"), 1);
    /* no new flow goes to aks-1 any more */
    static cconn_t k[30];
    for (int i = 0; i < 30; i++) cc_open(&f, &k[i], 80);
    sim_run(f.sim, 21 * SIM_S);
    for (int i = 0; i < 30; i++) {
        ck_assert_int_ge(k[i].t_conn, 0);
        ck_assert_int_ne(backend_of(&f, k[i].c, 80), 1);
    }
    fx_free(&f);
}
END_TEST

static void all_404(sim_t *sim, void *a, void *b)
{
    (void)sim, (void)b;
    fx_t *f = a;
    for (int i = 0; i < NB; i++) f->be[i].root_status = 404;
}

static cconn_t late;
static void open_late(sim_t *sim, void *a, void *b)
{
    (void)sim, (void)b;
    cc_open(a, &late, 80);
}

static void req_app(sim_t *sim, void *a, void *b)
{
    (void)sim;
    http_pool_t *pool = a;
    http_pool_request(pool, tu_ip(FRONTEND), 80, http_request_new("GET", "app", "/app", 0),
                      tu_res_cb, b);
}

/* Every backend's probe gets 404 from t=2 s: all down at 10 s + 4 L. A new connection at
 * 11 s has all 7 SYNs dropped with the probe's reason and times out 127 s later (Linux
 * tcp_syn_retries 6); a keep-alive connection opened at 1 s still gets 200 at 12 s. */
START_TEST(all_down_drops_syns_established_continue)
{
    fx_t f;
    fx_http(&f, 3, NULL);
    http_pool_t *pool = http_pool_new(f.client, NULL);
    tu_res_t res = {0};
    sim_schedule_at(f.sim, 1 * SIM_S, req_app, pool, &res);
    sim_schedule_at(f.sim, 2 * SIM_S, all_404, &f, NULL);
    sim_schedule_at(f.sim, 11 * SIM_S, open_late, &f, NULL);
    sim_schedule_at(f.sim, 12 * SIM_S, req_app, pool, &res);
    sim_run(f.sim, 10 * SIM_S + 4 * L - 1);
    ck_assert_uint_eq(azure_lb_rule_healthy_count(f.lb, 0), 3);
    ck_assert_int_eq(res.n, 1);
    ck_assert_int_eq(res.r[0].status, 200);
    ck_assert_int_eq(res.r[0].t_done, 1 * SIM_S + 6 * L);
    sim_run(f.sim, 10 * SIM_S + 4 * L);
    ck_assert_uint_eq(azure_lb_rule_healthy_count(f.lb, 0), 0);
    ck_assert_int_eq(azure_lb_rule_down_since(f.lb, 0), 10 * SIM_S + 4 * L);
    ck_assert_int_eq(f.ev[f.nev - 1].kind, AZURE_LB_EV_RULE_DOWN);
    ck_assert_int_eq(f.ev[f.nev - 1].t, 10 * SIM_S + 4 * L);
    char why[768];
    ck_assert_ptr_nonnull(azure_lb_rule_down_reason(f.lb, 0, why, sizeof why));
    ck_assert_str_eq(why, "probe http-80 (HTTP GET / on port 80, 200 only, 2 in a row): "
                     "aks-0 down: HTTP 404; aks-1 down: HTTP 404; aks-2 down: HTTP 404");

    sim_run(f.sim, 140 * SIM_S);
    /* the late connection: SYNs at 11, 12, 14, 18, 26, 42, 74 s, all dropped at the LB */
    ck_assert_int_eq(late.err, LB_ETIMEDOUT);
    ck_assert_int_eq(late.t_err, 138 * SIM_S);
    ck_assert_int_eq(late.t_conn, -1);
    ck_assert_int_eq(drops(&f, "lb-no-healthy-backend"), 7);
    int first = -1;
    for (int i = 0; i < f.ndrop && first < 0; i++)
        if (!strcmp(f.drop[i].reason, "lb-no-healthy-backend")) first = i;
    ck_assert_int_eq(f.drop[first].t, 11 * SIM_S + L);
    ck_assert(f.drop[first].p.tcp_flags == TCP_SYN);
    ck_assert_uint_eq(f.drop[first].p.src, tu_ip("10.1.0.10"));
    ck_assert_str_eq(f.drop[first].detail, "ilb: rule tcp-80: no healthy backend for a new flow; "
                     "probe http-80 (HTTP GET / on port 80, 200 only, 2 in a row): aks-0 down: "
                     "HTTP 404; aks-1 down: HTTP 404; aks-2 down: HTTP 404");
    /* the established keep-alive flow kept working */
    ck_assert_int_eq(res.n, 2);
    ck_assert_int_eq(res.r[1].outcome, HTTP_OK);
    ck_assert_int_eq(res.r[1].status, 200);
    ck_assert(res.r[1].reused);
    ck_assert_str_eq(res.body[1], res.body[0]);
    ck_assert_int_eq(res.r[1].t_done, 12 * SIM_S + 3 * L);     /* via the LB 2 L, back 1 L */
    ck_assert_uint_eq(lb_stats(&f).drop_no_healthy, 7);
    http_pool_free(pool);
    fx_free(&f);
}
END_TEST

/* Floating IP on: the SYN reaches the node addressed to the frontend IP and port.
 * Off: to the node's own IP and the backend port. Probes come from 168.63.129.16. */
START_TEST(floating_ip_what_arrives)
{
    fx_t f;
    fx_tcp(&f, 4, 80);
    azure_lb_rule_t r;
    azure_lb_rule_init(&r, 8080);
    r.floating_ip = false;
    r.backend_port = 30080;
    r.probe.port = HZ_PORT;
    ck_assert_int_eq(azure_lb_add_rule(f.lb, &r), 1);
    listen_all(&f, 30080);
    sim_run(f.sim, 1 * SIM_S);
    /* one probe checker shared by both rules (same probe) */
    ck_assert_ptr_eq(azure_lb_rule_health(f.lb, 0), azure_lb_rule_health(f.lb, 1));
    net_node_t *pn = azure_lb_probe_node(f.lb);
    ck_assert_str_eq(pn->name, "azure-lb-probe@vnet");
    ck_assert_uint_eq(net_node_addr(pn), tu_ip(AZURE_LB_PROBE_SRC));
    int probe_syns = 0;
    for (int i = 0; i < f.ncap; i++)
        if (f.cap[i].p.dport == HZ_PORT && f.cap[i].p.tcp_flags == TCP_SYN) {
            probe_syns++;
            ck_assert_uint_eq(f.cap[i].p.src, tu_ip(AZURE_LB_PROBE_SRC));
        }
    ck_assert_int_eq(probe_syns, 3);

    cconn_t a, b;
    cc_open(&f, &a, 80);
    cc_open(&f, &b, 8080);
    int before = f.ncap;
    sim_run(f.sim, 1500 * SIM_MS);
    int seen_a = 0, seen_b = 0;
    for (int i = before; i < f.ncap; i++) {
        const pkt_t *p = &f.cap[i].p;
        if (p->tcp_flags != TCP_SYN || p->src != tu_ip("10.1.0.10")) continue;
        if (!strcmp(f.cap[i].where, "client") || !strncmp(f.cap[i].where, "azure", 5)) continue;
        int bi = f.cap[i].where[4] - '0';
        if (p->sport == tcp_conn_lport(a.c)) {
            seen_a++;
            ck_assert_uint_eq(p->dst, tu_ip(FRONTEND));
            ck_assert_uint_eq(p->dport, 80);
            ck_assert_int_eq(f.cap[i].t, 1 * SIM_S + 2 * L);
        } else if (p->sport == tcp_conn_lport(b.c)) {
            seen_b++;
            ck_assert_uint_eq(p->dst, f.be[bi].ifc->addr);
            ck_assert_uint_eq(p->dport, 30080);
        }
    }
    ck_assert_int_eq(seen_a, 1);
    ck_assert_int_eq(seen_b, 1);
    /* floating IP: the node answers from the frontend IP, straight to the client (DSR) */
    ck_assert_int_eq(a.t_conn, 1 * SIM_S + 3 * L);
    bool synack_direct = false;
    for (int i = before; i < f.ncap; i++)
        if (!strcmp(f.cap[i].where, "client") && f.cap[i].p.tcp_flags == (TCP_SYN | TCP_ACK) &&
            f.cap[i].p.dport == tcp_conn_lport(a.c)) {
            synack_direct = f.cap[i].p.src == tu_ip(FRONTEND) && f.cap[i].p.sport == 80;
        }
    ck_assert(synack_direct);
    /* a's SYN and handshake ACK, b's SYN: the nodes' answers bypass the LB */
    ck_assert_uint_eq(lb_stats(&f).packets, 3);
    fx_free(&f);
}
END_TEST

/* A connection idle for the rule's 4 minutes is forgotten at exactly last packet + 240 s:
 * silently (a later segment is dropped "lb-flow-expired"), or with TCP reset on, with a
 * RST that both ends accept. */
START_TEST(idle_timeout_silent_and_reset)
{
    fx_t f;
    fx_tcp(&f, 5, 82);          /* silent; nginx on :80 would close idle connections */
    azure_lb_rule_t r;
    azure_lb_rule_init(&r, 81);
    r.tcp_reset = true;
    r.probe.port = HZ_PORT;
    ck_assert_int_eq(azure_lb_add_rule(f.lb, &r), 1);
    listen_all(&f, 81);
    listen_all(&f, 82);
    sim_run(f.sim, 1 * SIM_S);
    cconn_t a, b;
    cc_open(&f, &a, 82);
    cc_open(&f, &b, 81);
    /* last client segment: the handshake's ACK, at the LB at 1 s + 3 L (+ L fabric) */
    sim_time_t last = 1 * SIM_S + 4 * L;
    sim_time_t exp = last + AZURE_LB_IDLE_TIMEOUT_DEFAULT;
    sim_run(f.sim, exp - 1);
    azure_lb_stats_t st = lb_stats(&f);
    ck_assert_uint_eq(st.idle_expired, 0);
    ck_assert_int_ge(backend_of(&f, a.c, 82), 0);
    sim_run(f.sim, exp);
    st = lb_stats(&f);
    ck_assert_uint_eq(st.idle_expired, 2);
    ck_assert_int_eq(backend_of(&f, a.c, 82), -1);
    ck_assert_uint_eq(st.resets_sent, 2);
    sim_run(f.sim, exp + 2 * L);
    ck_assert_int_eq(b.err, LB_ECONNRESET);     /* RST from the LB, one fabric hop */
    ck_assert_int_eq(b.t_err, exp + L);
    ck_assert_int_eq(a.err, 0);
    /* the backend's side of b was reset too: nothing established on :81 any more */
    tcp_stats_t ts;
    int resets = 0;
    for (int i = 0; i < NB; i++) {
        tcp_stack_stats(f.be[i].node, &ts);
        resets += (int)ts.rst_recv;
    }
    ck_assert_int_eq(resets, 1);
    /* a silent expiry: the client's next segment (and its retransmissions) die at the LB */
    sim_time_t t_send = exp + 1 * SIM_S;
    sim_run(f.sim, t_send);
    net_msg_t *m = net_msg_raw(10);
    ck_assert_int_eq(tcp_send(a.c, m), 0);
    net_msg_unref(m);
    sim_run(f.sim, t_send + 100 * SIM_MS);
    ck_assert_int_eq(drops(&f, "lb-flow-expired"), 1);
    int i = f.ndrop - 1;
    ck_assert_str_eq(f.drop[i].reason, "lb-flow-expired");
    ck_assert_int_eq(f.drop[i].t, t_send + L);
    ck_assert_uint_eq(f.drop[i].p.len, 10);
    ck_assert_msg(strstr(f.drop[i].detail, "flow idle-timed out at 241.004000000s (idle timeout 240s); silent drop") != NULL, "%s", f.drop[i].detail);
    ck_assert_int_eq(a.err, 0);                 /* the client does not know yet */
    fx_free(&f);
}
END_TEST

/* Backends start INITIAL: a SYN that arrives before the first probe passes is dropped
 * ("no probe answered yet"); its retransmission 1 s later goes through. */
START_TEST(initial_state_until_first_probe)
{
    fx_t f;
    fx_tcp(&f, 6, 80);
    ck_assert_int_eq(azure_lb_rule_down_since(f.lb, 0), 0);
    cconn_t a;
    cc_open(&f, &a, 80);
    sim_run(f.sim, 3 * SIM_S);
    ck_assert_int_eq(drops(&f, "lb-no-healthy-backend"), 1);
    ck_assert_int_eq(f.drop[0].t, L);
    ck_assert(strstr(f.drop[0].detail, "aks-0 initial: no probe answered yet") != NULL);
    ck_assert_int_eq(a.t_conn, 1 * SIM_S + 3 * L);
    ck_assert_int_eq(f.ev[0].kind, AZURE_LB_EV_BACKEND_UP);
    ck_assert_int_eq(f.ev[0].t, 2 * L);
    ck_assert_int_eq(f.ev[1].kind, AZURE_LB_EV_RULE_UP);    /* right after aks-0 came up */
    ck_assert_int_eq(f.ev[1].t, 2 * L);
    fx_free(&f);
}
END_TEST

/* noHealthyBackendsBehavior AllProbedUp: with every backend down, new flows still spread. */
START_TEST(fail_open_when_all_down)
{
    azure_lb_params_t p;
    azure_lb_params_default(&p);
    p.fail_open = true;
    fx_t f;
    fx_http(&f, 7, &p);
    for (int i = 0; i < NB; i++) f.be[i].root_status = 404;
    sim_run(f.sim, 6 * SIM_S);
    ck_assert_uint_eq(azure_lb_rule_healthy_count(f.lb, 0), 0);
    cconn_t a;
    cc_open(&f, &a, 80);
    sim_run(f.sim, 7 * SIM_S);
    ck_assert_int_eq(a.t_conn, 6 * SIM_S + 3 * L);
    ck_assert_int_eq(drops(&f, "lb-no-healthy-backend"), 0);
    fx_free(&f);
}
END_TEST

/* A port without a rule; a mid-flow segment the LB never saw a SYN for. */
START_TEST(no_rule_and_no_flow)
{
    fx_t f;
    fx_tcp(&f, 8, 80);
    sim_run(f.sim, 1 * SIM_S);
    cconn_t a;
    cc_open(&f, &a, 9999);
    net_fabric_send(f.fab, tu_tcp_pkt(f.net, "10.1.0.10", 5555, FRONTEND, 80, TCP_ACK));
    sim_run(f.sim, 1 * SIM_S + 10 * L);
    ck_assert_int_eq(drops(&f, "lb-no-rule"), 1);
    ck_assert_int_eq(drops(&f, "lb-no-flow"), 1);
    for (int i = 0; i < f.ndrop; i++)
        if (!strcmp(f.drop[i].reason, "lb-no-rule"))
            ck_assert_str_eq(f.drop[i].detail, "ilb: no load-balancing rule for TCP port 9999");
    fx_free(&f);
}
END_TEST

static void syn_batch(sim_t *sim, void *a, void *b)
{
    (void)sim;
    fx_t *f = a;
    int base = (int)(intptr_t)b;
    for (int i = 0; i < 300; i++) {
        pkt_t *p = tu_tcp_pkt(f->net, "10.1.0.10", (uint16_t)(base + i), FRONTEND, 82, TCP_SYN);
        p->seq = 1000;
        net_fabric_send(f->fab, p);
    }
}

static int batch_backend(fx_t *f, int base, int i)
{
    return azure_lb_flow_backend(f->lb, tu_ip("10.1.0.10"), (uint16_t)(base + i),
                                 tu_ip(FRONTEND), 82, NET_PROTO_TCP);
}

/* Flow-table churn: 300 flows at 1 s, 300 at 300 s; the first batch idles out at 241 s
 * and is reaped one idle period later, in the middle of the live second batch, which must
 * keep resolving to the same backends (open addressing with backward-shift deletion). */
START_TEST(flow_table_churn)
{
    fx_t f;
    fx_tcp(&f, 10, 82);
    sim_schedule_at(f.sim, 1 * SIM_S, syn_batch, &f, (void *)(intptr_t)10000);
    sim_schedule_at(f.sim, 300 * SIM_S, syn_batch, &f, (void *)(intptr_t)20000);
    sim_run(f.sim, 301 * SIM_S);
    azure_lb_stats_t st = lb_stats(&f);
    ck_assert_uint_eq(st.new_flows, 600);
    ck_assert_uint_eq(st.flows_now, 600);       /* batch A expired but not yet reaped */
    ck_assert_uint_eq(st.idle_expired, 300);
    static int before[300];
    int per[NB] = {0};
    for (int i = 0; i < 300; i++) {
        ck_assert_int_eq(batch_backend(&f, 10000, i), -1);
        before[i] = batch_backend(&f, 20000, i);
        ck_assert_int_ge(before[i], 0);
        per[before[i]]++;
    }
    for (int b = 0; b < NB; b++) ck_assert_int_ge(per[b], 70);
    sim_run(f.sim, 1 * SIM_S + L + 480 * SIM_S);
    st = lb_stats(&f);
    ck_assert_uint_eq(st.flows_now, 300);
    for (int i = 0; i < 300; i++) ck_assert_int_eq(batch_backend(&f, 20000, i), before[i]);
    /* the reaped tuples start new flows, which hash to the same backends as before the
     * health of the pool changed -- it did not: all three are still up */
    sim_schedule_at(f.sim, 490 * SIM_S, syn_batch, &f, (void *)(intptr_t)10000);
    sim_run(f.sim, 491 * SIM_S);
    st = lb_stats(&f);
    ck_assert_uint_eq(st.flows_now, 600);
    for (int i = 0; i < 300; i++) ck_assert_int_ge(batch_backend(&f, 10000, i), 0);
    sim_run(f.sim, 1100 * SIM_S);
    st = lb_stats(&f);
    ck_assert_uint_eq(st.flows_now, 0);
    fx_free(&f);
}
END_TEST

/* Rules, probes and their validation; cloud-provider-azure's probe as an LB probe. */
START_TEST(rules_probes_and_cpa)
{
    fx_t f;
    fx_new(&f, 9, NULL);
    azure_lb_rule_t r;
    azure_lb_rule_init(&r, 80);
    ck_assert(r.floating_ip);
    ck_assert_int_eq(r.idle_timeout, 240 * SIM_S);
    ck_assert(!r.tcp_reset);
    ck_assert_int_eq(r.probe.interval, 5 * SIM_S);
    ck_assert_int_eq(r.probe.threshold, 2);
    r.backend_port = 30080;
    ck_assert_int_eq(azure_lb_add_rule(f.lb, &r), LB_EINVAL);     /* floating IP needs = */
    r.backend_port = 80;
    ck_assert_int_eq(azure_lb_add_rule(f.lb, &r), 0);
    ck_assert_int_eq(azure_lb_add_rule(f.lb, &r), LB_EEXIST);
    ck_assert_str_eq(azure_lb_rule(f.lb, 0)->name, "tcp-80");
    ck_assert_str_eq(azure_lb_rule(f.lb, 0)->probe.name, "tcp-80");
    ck_assert_str_eq(health_name(azure_lb_rule_health(f.lb, 0)), "ilb/tcp-80");
    ck_assert_uint_eq(health_target_count(azure_lb_rule_health(f.lb, 0)), 3);

    /* cloud-provider-azure: ETP Cluster + appProtocol http -> HTTP / on the nodePort */
    cpa_probe_t cp = {.lb_rule = true, .protocol = CPA_PROBE_HTTP, .port = 30080,
                      .interval_s = 5, .threshold = 2};
    snprintf(cp.path, sizeof cp.path, "/");
    azure_lb_probe_t pr;
    ck_assert_int_eq(azure_lb_probe_from_cpa(&cp, &pr), 0);
    ck_assert_int_eq(pr.protocol, AZURE_PROBE_HTTP);
    ck_assert_int_eq(pr.port, 30080);
    ck_assert_str_eq(pr.path, "/");
    ck_assert_int_eq(pr.interval, 5 * SIM_S);
    ck_assert_int_eq(pr.threshold, 2);
    azure_lb_rule_init(&r, 443);
    r.probe = pr;
    ck_assert_int_eq(azure_lb_add_rule(f.lb, &r), 1);
    health_t *hc = azure_lb_rule_health(f.lb, 1);
    ck_assert_str_eq(health_name(hc), "ilb/http-30080");
    ck_assert_int_eq(health_params(hc)->proto, HEALTH_HTTP);
    ck_assert_int_eq(health_params(hc)->timeout, 5 * SIM_S);
    ck_assert_str_eq(health_params(hc)->path, "/");
    ck_assert(health_matcher_match(&health_params(hc)->matcher, 200));
    ck_assert(!health_matcher_match(&health_params(hc)->matcher, 404));
    ck_assert_uint_eq(health_params(hc)->src, tu_ip(AZURE_LB_PROBE_SRC));
    /* same port, other path: a separate probe with a distinct name */
    azure_lb_rule_init(&r, 8443);
    r.probe = pr;
    r.probe.path = "/healthz";
    ck_assert_int_eq(azure_lb_add_rule(f.lb, &r), 2);
    ck_assert_str_eq(health_name(azure_lb_rule_health(f.lb, 2)), "ilb/http-30080-2");
    /* a named probe redefined differently */
    azure_lb_rule_init(&r, 9000);
    r.probe.name = "http-30080";
    ck_assert_int_eq(azure_lb_add_rule(f.lb, &r), LB_EEXIST);
    /* a rule without a probe: every backend counts */
    azure_lb_rule_init(&r, 9001);
    r.probe.protocol = AZURE_PROBE_NONE;
    ck_assert_int_eq(azure_lb_add_rule(f.lb, &r), 3);
    ck_assert_ptr_null(azure_lb_rule_health(f.lb, 3));
    ck_assert_uint_eq(azure_lb_rule_healthy_count(f.lb, 3), 3);
    ck_assert_int_eq(azure_lb_rule_find(f.lb, NET_PROTO_TCP, 9001), 3);
    ck_assert_int_eq(azure_lb_rule_find(f.lb, NET_PROTO_UDP, 9001), -1);
    /* a backend added later is probed by every probe */
    net_node_t *n = net_node_add(f.net, "aks-3");
    net_iface_t *ifc = net_iface_add(n, "eth0", tu_ip("10.1.1.7"), 16);
    ck_assert_int_eq(azure_lb_add_backend(f.lb, ifc, NULL), LB_EINVAL);  /* not in the fabric */
    ck_assert_int_eq(net_fabric_attach(f.fab, ifc), 0);
    ck_assert_int_eq(azure_lb_add_backend(f.lb, ifc, "node-3"), 3);
    ck_assert_int_eq(azure_lb_add_backend(f.lb, ifc, NULL), LB_EEXIST);
    ck_assert_uint_eq(health_target_count(hc), 4);
    ck_assert_str_eq(health_target_label(hc, 3), "node-3");
    cp.lb_rule = false;
    ck_assert_int_eq(azure_lb_probe_from_cpa(&cp, &pr), LB_ENOENT);

    /* a second LB in the same VNet shares the probe node; the same frontend is refused */
    int rc = 0;
    ck_assert_ptr_null(azure_lb_new(f.net, f.fab, "ilb2", tu_ip(FRONTEND), NULL, &rc));
    ck_assert_int_eq(rc, LB_EEXIST);
    azure_lb_t *lb2 = azure_lb_new(f.net, f.fab, "ilb2", tu_ip("10.1.2.101"), NULL, &rc);
    ck_assert_ptr_nonnull(lb2);
    ck_assert_ptr_eq(azure_lb_probe_node(lb2), azure_lb_probe_node(f.lb));
    azure_lb_free(lb2);
    fx_free(&f);
}
END_TEST

Suite *suite_azure_lb(void)
{
    Suite *s = suite_create("azure_lb");
    TCase *tc = tcase_create("lb");
    tcase_add_test(tc, distribution_and_pinning);
    tcase_add_test(tc, http_probe_404_takes_backend_out);
    tcase_add_test(tc, all_down_drops_syns_established_continue);
    tcase_add_test(tc, floating_ip_what_arrives);
    tcase_add_test(tc, idle_timeout_silent_and_reset);
    tcase_add_test(tc, initial_state_until_first_probe);
    tcase_add_test(tc, fail_open_when_all_down);
    tcase_add_test(tc, no_rule_and_no_flow);
    tcase_add_test(tc, rules_probes_and_cpa);
    tcase_add_test(tc, flow_table_churn);
    suite_add_tcase(s, tc);
    return s;
}
