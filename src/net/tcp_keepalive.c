/* tcp_keepalive.c -- TCP keepalive as Linux does it: SO_KEEPALIVE with per-socket
 * TCP_KEEPIDLE / TCP_KEEPINTVL / TCP_KEEPCNT, falling back to the stack's
 * net.ipv4.tcp_keepalive_{time,intvl,probes} (include/tcp.h). One lazy timer per
 * connection (TT_KEEPALIVE). Followed: net/ipv4/tcp_timer.c tcp_keepalive_timer(),
 * include/net/tcp.h keepalive_time_elapsed(), net/ipv4/tcp.c tcp_sock_set_keepidle_locked()
 * and tcp_set_keepalive(), net/ipv4/tcp_input.c tcp_ack() (rcv_tstamp, icsk_probes_out = 0),
 * net/ipv4/tcp_output.c tcp_xmit_probe_skb(). Not modelled: TCP_USER_TIMEOUT (the count of
 * probes alone decides), the FIN_WAIT2 use of this timer (tcp.c has its own). */
#include "tcp_int.h"

static sim_time_t ka_idle(const tcp_conn_t *c)
{
    return c->ka_idle ? c->ka_idle : c->st->p.keepalive_time;
}

static sim_time_t ka_intvl(const tcp_conn_t *c)
{
    return c->ka_intvl ? c->ka_intvl : c->st->p.keepalive_intvl;
}

static int ka_cnt(const tcp_conn_t *c)
{
    return c->ka_cnt ? c->ka_cnt : c->st->p.keepalive_probes;
}

static void ka_arm(tcp_conn_t *c, sim_time_t when)
{
    c->ka_deadline = when;
    tcp_timer_ensure(c, TT_KEEPALIVE, when);
}

static bool ka_state(const tcp_conn_t *c)
{
    /* Linux skips TCPF_CLOSE | TCPF_SYN_SENT (and LISTEN sockets have no timer); a
     * SYN_RECV child is armed when it is created established. */
    return c->state != TCP_CLOSED && c->state != TCP_SYN_SENT && c->state != TCP_SYN_RECV &&
           c->state != TCP_LISTEN && c->state != TCP_TIME_WAIT;
}

static bool valid_secs(sim_time_t t)
{
    return t == 0 || (t >= SIM_S && t <= (sim_time_t)TCP_KEEPALIVE_MAX_S * SIM_S &&
                      t % SIM_S == 0);
}

int tcp_keepalive_check(const tcp_keepalive_t *ka)
{
    if (!ka) return 0;
    if (!valid_secs(ka->idle) || !valid_secs(ka->intvl)) return LB_EINVAL;
    if (ka->cnt < 0 || ka->cnt > TCP_KEEPALIVE_MAX_CNT) return LB_EINVAL;
    return 0;
}

int tcp_conn_set_keepalive(tcp_conn_t *c, const tcp_keepalive_t *ka)
{
    if (!c) return LB_EINVAL;
    if (c->flags & (CF_DEAD | CF_ORPHAN)) return LB_ESTATE;
    int rc = tcp_keepalive_check(ka);
    if (rc) return rc;
    if (!ka) {
        c->ka_on = false;
        c->ka_deadline = SIM_TIME_MAX;      /* the queued event, if any, finds nothing */
        return 0;
    }
    c->ka_on = true;
    c->ka_idle = ka->idle;
    c->ka_intvl = ka->intvl;
    c->ka_cnt = ka->cnt;
    /* tcp_sock_set_keepidle_locked(): re-arm for what is left of the new idle time. */
    if (ka_state(c)) {
        sim_time_t now = sim_now(c->st->sim), at = c->ka_rcv + ka_idle(c);
        ka_arm(c, at > now ? at : now);
    }
    return 0;
}

void tcp_keepalive_established(tcp_conn_t *c)
{
    sim_time_t now = sim_now(c->st->sim);
    c->ka_rcv = now;
    c->ka_probes = 0;
    /* tcp_finish_connect() / tcp_create_openreq_child(): keepalive_time_when(tp). */
    if (c->ka_on) ka_arm(c, now + ka_idle(c));
}

void tcp_keepalive_timer(tcp_conn_t *c)
{
    if (!c->ka_on || !ka_state(c) || (c->flags & CF_DEAD)) return;
    tcp_stack_t *st = c->st;
    sim_time_t now = sim_now(st->sim);
    /* "It is alive without keepalive": data in flight or queued -- the retransmission
     * timer watches the peer. */
    if (c->snd_max != c->snd_una || c->write_seq != c->snd_una) {
        ka_arm(c, now + ka_idle(c));
        return;
    }
    sim_time_t elapsed = now - c->ka_rcv;
    if (elapsed < ka_idle(c)) {
        ka_arm(c, now + ka_idle(c) - elapsed);
        return;
    }
    char b[32];
    if (c->ka_probes >= ka_cnt(c)) {
        TCP_TRACE(c, "keepalive: %d probes unanswered, nothing from the peer for %s: reset",
                  c->ka_probes, tcp_dur_str(elapsed, b, sizeof b));
        st->stats.keepalive_timeouts++;
        st->stats.timeouts++;
        tcp_send_rst_conn(c, "keepalive timeout");    /* tcp_send_active_reset */
        tcp_conn_fail(c, LB_ETIMEDOUT);                /* tcp_write_err */
        return;
    }
    c->ka_probes++;
    TCP_TRACE(c, "keepalive probe %d (idle %s)", c->ka_probes,
              tcp_dur_str(elapsed, b, sizeof b));
    tcp_send_keepalive_probe(c);
    ka_arm(c, now + ka_intvl(c));
}
