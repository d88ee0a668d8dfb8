/* icmp_schedule.c -- the simulator's side of tests/kernel-icmp.sh: a client sends UDP
 * datagrams on a schedule through a router (libsim's node and ICMP rate limits, the code
 * ./sim runs) and this prints what the router's ICMP rate limits let through:
 *
 *   icmp_schedule port T:N,... [SYSCTLS]     N datagrams at T ms to a closed UDP port of
 *                                            the router
 *   icmp_schedule noroute T:N,... [SYSCTLS]  N datagrams at T ms to a prefix the router
 *                                            has no route for
 * SYSCTLS: the router's, as tests/kernel-icmp.sh writes them into its namespace, like
 * icmp_ratelimit=250,icmp_ratemask=6160 (icmp_ratelimit in ms; icmp_msgs_per_sec,
 * icmp_msgs_burst); the kernel's defaults otherwise. Prints
 *   sent S ratelimit-host H ip-error E ratelimit-global G
 * (S: the router's ICMP destination unreachables, as its Icmp OutDestUnreachs counts them;
 * H: refused by the per-destination limit, as OutRateLimitHost; E: refused by ip_error();
 * G: refused by the global limit, as OutRateLimitGlobal). Exit 2 on a bad argument. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "net.h"

typedef struct shot { net_node_t *c; uint32_t dst; int n; } shot_t;

static void fire(sim_t *sim, void *a, void *b)
{
    (void)sim;
    (void)b;
    shot_t *s = a;
    for (int i = 0; i < s->n; i++) {
        pkt_t *p = pkt_new(s->c->net);
        p->proto = NET_PROTO_UDP;
        p->dst = s->dst;
        p->sport = 40000;
        p->dport = 9;
        p->len = 1;
        net_node_output(s->c, p);
    }
}

static uint32_t ip(const char *s)
{
    uint32_t a = 0;
    if (lb_ip_parse(s, &a) != 0) abort();
    return a;
}

/* "KEY=V,..." onto r's ICMP sysctls; -1 on a bad one. */
static int set_sysctls(net_node_t *r, const char *spec)
{
    char *list = strdup(spec), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(list, ",", &save); tok && !rc; tok = strtok_r(NULL, ",", &save)) {
        char key[32], *end;
        const char *eq = strchr(tok, '=');
        if (!eq || eq == tok || (size_t)(eq - tok) >= sizeof key) { rc = -1; break; }
        memcpy(key, tok, (size_t)(eq - tok));
        key[eq - tok] = '\0';
        long long v = strtoll(eq + 1, &end, 0);
        if (!eq[1] || *end || v < 0 || v > 0x7fffffff) rc = -1;
        else if (!strcmp(key, "icmp_ratelimit")) r->icmp.ratelimit = v * SIM_MS;
        else if (!strcmp(key, "icmp_ratemask")) r->icmp.ratemask = (uint32_t)v;
        else if (!strcmp(key, "icmp_msgs_per_sec")) r->icmp.msgs_per_sec = (int)v;
        else if (!strcmp(key, "icmp_msgs_burst")) r->icmp.msgs_burst = (int)v;
        else rc = -1;
    }
    free(list);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (strcmp(argv[1], "port") && strcmp(argv[1], "noroute"))) {
        fprintf(stderr, "usage: icmp_schedule port|noroute T:N,... [SYSCTL=V,...]\n");
        return 2;
    }
    sim_t *sim = sim_new(1);
    net_t *net = net_new(sim);
    net_node_t *c = net_node_add(net, "c"), *r = net_node_add(net, "r");
    net_iface_t *c0 = net_iface_add(c, "v0", ip("198.18.1.1"), 24);
    net_iface_t *r0 = net_iface_add(r, "v0", ip("198.18.1.2"), 24);
    net_link_params_t lp = {.latency = 20 * SIM_US};
    net_link_new(net, c0, r0, &lp);
    net_route_add(c, 0, 0, ip("198.18.1.2"), c0);
    r->forwarding = true;
    if (argc == 4 && set_sysctls(r, argv[3]) < 0) {
        fprintf(stderr, "icmp_schedule: bad sysctls '%s' (icmp_ratelimit=MS, icmp_ratemask=M, "
                "icmp_msgs_per_sec=N, icmp_msgs_burst=N)\n", argv[3]);
        return 2;
    }
    uint32_t dst = strcmp(argv[1], "port") == 0 ? ip("198.18.1.2") : ip("198.51.100.1");
    shot_t shots[256];
    int ns = 0;
    char *save = NULL, *list = strdup(argv[2]);
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long t, n;
        char end;
        if (ns == 256 || sscanf(tok, "%ld:%ld%c", &t, &n, &end) != 2 || t < 0 || t > 600000 ||
            n < 1 || n > 1000) {
            fprintf(stderr, "icmp_schedule: bad shot '%s' (T:N, T ms, N datagrams)\n", tok);
            return 2;
        }
        shots[ns] = (shot_t){c, dst, (int)n};
        sim_schedule(sim, (sim_time_t)t * SIM_MS, fire, &shots[ns], NULL);
        ns++;
    }
    sim_run(sim, SIM_TIME_MAX);
    net_icmp_stats_t st = net_node_icmp_stats(r);
    printf("sent %llu ratelimit-host %llu ip-error %llu ratelimit-global %llu\n",
           (unsigned long long)st.sent, (unsigned long long)st.ratelimit_host,
           (unsigned long long)st.ip_error, (unsigned long long)st.ratelimit_global);
    free(list);
    net_free(net);
    sim_free(sim);
    return 0;
}
