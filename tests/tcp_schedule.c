/* tcp_schedule.c -- the simulator's side of tests/kernel-timers.sh: runs the TCP and
 * conntrack models (libsim, the code ./sim runs) on two hosts and prints the timers the
 * kernel test measures, for the same sysctls:
 *
 *   tcp_schedule syn KEY=V,...      SYNs into a black hole from a (kernel 5.15 defaults,
 *                                   then syn-retries=N, syn-linear-timeouts=N, kernel=X.Y):
 *                                     syn-sent-at 0.0,1.0,3.0
 *                                     connect-fails-at 7.00 ETIMEDOUT
 *   tcp_schedule data KEY=V,...     100 bytes on an established connection whose peer
 *                                   then drops everything (20 us links, like a veth;
 *                                   retries2=N, early-retrans=N):
 *                                     data-intervals 0.20,0.20,0.40,...   (gaps between
 *                                     transmissions, the tail loss probe's first, then
 *                                     the gap to the give-up)
 *                                     data-retransmissions N
 *                                     data-loss-probes N
 *                                     early-retrans 3   (the value used: kernel=X.Y's
 *                                                        default unless given)
 *   tcp_schedule keepalive KEY=V,...  an established connection with SO_KEEPALIVE and
 *                                   no per-socket times (keepalive-time=S,
 *                                   keepalive-intvl=S, keepalive-probes=N: a's sysctls)
 *                                   whose peer drops everything from 1 s on; times from
 *                                   the SYN:
 *                                     keepalive-probes-at 2.0,3.0,4.0
 *                                     keepalive-reset-at 5.0
 *                                     keepalive-fails-at 5.00 ETIMEDOUT
 *   tcp_schedule conntrack [kube-proxy]   the node's conntrack timeouts in seconds, the
 *                                   kernel's or after kube-proxy applied its settings:
 *                                     conntrack-established 432000
 *                                     conntrack-close-wait 60
 * Exit 2 on a bad argument. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kube_proxy.h"
#include "netfilter.h"
#include "tcp.h"

typedef struct rec {
    sim_t *sim;
    bool keepalive;                 /* record every TCP segment, its RST apart */
    int n;
    sim_time_t t[64];
    sim_time_t t_rst;
    int nfail;
    sim_time_t t_fail;
    int rc;
} rec_t;

static void obs_drop(void *d, const net_node_t *where, const pkt_t *p, const char *reason,
                     const char *detail)
{
    rec_t *r = d;
    (void)reason, (void)detail;
    bool syn = p->tcp_flags & TCP_SYN, data = p->len > 0;
    if (p->proto != NET_PROTO_TCP) return;
    sim_time_t now = sim_now(net_sim(where->net));
    if (r->keepalive && (p->tcp_flags & TCP_RST)) r->t_rst = now;
    else if ((r->keepalive || syn || data) && r->n < 64) r->t[r->n++] = now;
}

static void on_error(tcp_conn_t *c, int rc, void *data)
{
    rec_t *r = data;
    (void)c;
    r->nfail++;
    r->rc = rc;
    r->t_fail = sim_now(r->sim);
}
static void on_connected(tcp_conn_t *c, void *data) { (void)c, (void)data; }

static uint32_t ip(const char *s) { uint32_t a = 0; lb_ip_parse(s, &a); return a; }

static void pair(sim_t **sim, net_t **net, net_node_t **a, net_node_t **b, double loss)
{
    *sim = sim_new(1);
    *net = net_new(*sim);
    *a = net_node_add(*net, "a");
    *b = net_node_add(*net, "b");
    net_iface_t *ia = net_iface_add(*a, "eth0", ip("10.0.0.1"), 24);
    net_iface_t *ib = net_iface_add(*b, "eth0", ip("10.0.0.2"), 24);
    net_link_params_t lp = {.latency = 20 * SIM_US, .loss = loss};
    net_link_new(*net, ia, ib, &lp);
}

static void on_accept(tcp_conn_t *c, void *data) { (void)c, (void)data; }

int main(int argc, char **argv)
{
    if (argc < 2) goto usage;
    if (!strcmp(argv[1], "conntrack")) {
        sim_t *sim = sim_new(1);
        net_t *net = net_new(sim);
        net_node_t *n = net_node_add(net, "n");
        if (argc > 2 && !strcmp(argv[2], "kube-proxy")) {
            kp_config_t kc;
            kp_config_default(&kc);
            kp_free(kp_new(n, &kc));
        }
        const nf_params_t *p = nf_params(nf_get(n));
        printf("conntrack-established %lld\nconntrack-close-wait %lld\nconntrack-max %d\n",
               (long long)(p->to_established / SIM_S), (long long)(p->to_close_wait / SIM_S),
               p->ct_max);
        net_free(net);
        sim_free(sim);
        return 0;
    }
    if (argc != 3) goto usage;
    tcp_params_t tp;
    tcp_params_default(&tp);
    char *spec = strdup(argv[2]);
    for (char *kv = strtok(spec, ","); kv; kv = strtok(NULL, ",")) {
        char *eq = strchr(kv, '=');
        if (!eq) goto usage;
        *eq = '\0';
        int v = atoi(eq + 1);
        if (!strcmp(kv, "kernel")) {
            if (tcp_params_kernel(&tp, eq + 1) < 0) goto usage;
        } else if (!strcmp(kv, "syn-retries")) tp.syn_retries = v;
        else if (!strcmp(kv, "syn-linear-timeouts")) tp.syn_linear_timeouts = v;
        else if (!strcmp(kv, "retries2")) tp.retries2 = v;
        else if (!strcmp(kv, "early-retrans")) tp.early_retrans = v;
        else if (!strcmp(kv, "keepalive-time")) tp.keepalive_time = v * SIM_S;
        else if (!strcmp(kv, "keepalive-intvl")) tp.keepalive_intvl = v * SIM_S;
        else if (!strcmp(kv, "keepalive-probes")) tp.keepalive_probes = v;
        else goto usage;
    }
    free(spec);
    bool syn = !strcmp(argv[1], "syn"), ka = !strcmp(argv[1], "keepalive");
    if (!syn && !ka && strcmp(argv[1], "data")) goto usage;
    sim_t *sim;
    net_t *net;
    net_node_t *a, *b;
    pair(&sim, &net, &a, &b, syn ? 1.0 : 0.0);
    rec_t r = {.sim = sim, .keepalive = ka, .t_rst = -1};
    net_observer_t obs = {.drop = obs_drop, .data = &r};
    net_set_observer(net, &obs);
    tcp_stack_set_params(a, &tp);
    tcp_cbs_t cbs = {.connected = on_connected, .error = on_error};
    tcp_connect_opts_t o = {0};
    int rc = 0;
    if (syn) {
        tcp_conn_t *c = tcp_connect(a, ip("10.0.0.2"), 80, &o, &cbs, &r, &rc);
        if (!c) return 1;
        sim_run(sim, 1000 * SIM_S);
        printf("syn-sent-at ");
        for (int i = 0; i < r.n; i++)
            printf("%s%.1f", i ? "," : "", (double)(r.t[i] - r.t[0]) / SIM_S);
        printf("\nconnect-fails-at %.2f %s\n", r.nfail ? (double)(r.t_fail - r.t[0]) / SIM_S : -1.0,
               r.rc == LB_ETIMEDOUT ? "ETIMEDOUT" : "other");
    } else if (ka) {
        tcp_listen(b, 0, 80, on_accept, NULL);
        tcp_conn_t *c = tcp_connect(a, ip("10.0.0.2"), 80, &o, &cbs, &r, &rc);
        if (!c) return 1;
        tcp_keepalive_t k = {0};                /* SO_KEEPALIVE alone: the sysctls */
        if (tcp_conn_set_keepalive(c, &k)) return 1;
        sim_run(sim, SIM_S);
        char err[128];
        nf_exec(nf_get(b), "-A INPUT -p tcp -j DROP", err, sizeof err);
        sim_run(sim, 100000 * SIM_S);
        printf("keepalive-probes-at ");
        for (int i = 0; i < r.n; i++) printf("%s%.1f", i ? "," : "", (double)r.t[i] / SIM_S);
        printf("\nkeepalive-reset-at %.1f\n", r.t_rst >= 0 ? (double)r.t_rst / SIM_S : -1.0);
        printf("keepalive-fails-at %.2f %s\n", r.nfail ? (double)r.t_fail / SIM_S : -1.0,
               r.rc == LB_ETIMEDOUT ? "ETIMEDOUT" : "other");
    } else {
        tcp_listen(b, 0, 80, on_accept, NULL);
        tcp_conn_t *c = tcp_connect(a, ip("10.0.0.2"), 80, &o, &cbs, &r, &rc);
        if (!c) return 1;
        sim_run(sim, SIM_S);
        char err[128];
        nf_exec(nf_get(b), "-A INPUT -p tcp -j DROP", err, sizeof err);
        net_msg_t *m = net_msg_raw(100);
        tcp_send(c, m);
        net_msg_unref(m);
        sim_run(sim, 2000 * SIM_S);
        printf("data-intervals ");
        for (int i = 1; i < r.n; i++)
            printf("%s%.2f", i > 1 ? "," : "", (double)(r.t[i] - r.t[i - 1]) / SIM_S);
        if (r.nfail)
            printf("%s%.2f", r.n > 1 ? "," : "", (double)(r.t_fail - r.t[r.n - 1]) / SIM_S);
        tcp_stats_t st;
        tcp_stack_stats(a, &st);
        printf("\ndata-retransmissions %d\ndata-loss-probes %llu\nearly-retrans %d\n",
               r.n - 1, (unsigned long long)st.tlp_probes, tp.early_retrans);
    }
    net_free(net);
    sim_free(sim);
    return 0;
usage:
    fprintf(stderr, "usage: tcp_schedule syn|data|keepalive KEY=V,... | conntrack [kube-proxy]\n");
    return 2;
}
