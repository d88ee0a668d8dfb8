/* tcp_output.c -- what a connection puts on the wire: data segments cut at the MSS and at
 * message boundaries, SYN / SYN-ACK, pure ACKs and RSTs; the send loop limited by the
 * congestion window and the peer's window; the retransmission timer (SYN, SYN-ACK, data,
 * FIN) with Linux's give-up rules and its tail loss probe; the delayed-ACK timer; RFC 6298
 * RTT estimation with Linux's rto_min (net/ipv4/tcp_output.c, tcp_timer.c, tcp_input.c). */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "tcp_int.h"

static inline uint32_t u32min(uint32_t a, uint32_t b) { return a < b ? a : b; }

static pkt_t *seg_new(tcp_conn_t *c, uint8_t flags, uint32_t seq, uint32_t len)
{
    pkt_t *p = pkt_new(c->st->net);
    p->flow = c->flow;
    p->src = c->laddr;
    p->dst = c->raddr;
    p->sport = c->lport;
    p->dport = c->rport;
    p->proto = NET_PROTO_TCP;
    p->tcp_flags = flags;
    p->seq = seq;
    p->len = len;
    if (flags & TCP_ACK) p->ack = c->rcv_nxt;
    p->win = (flags & TCP_SYN) ? u32min(c->rcv_wnd, TCP_MAX_UNSCALED_WND) : c->rcv_wnd;
    return p;
}

/* Every segment of a connection leaves here: an ACK flag settles any pending ACK. */
static void seg_xmit(tcp_conn_t *c, pkt_t *p)
{
    tcp_stack_t *st = c->st;
    if (p->tcp_flags & TCP_ACK) {
        /* a pending D-SACK goes out once, on the next segment (tcp_established_options) */
        p->dsack = (c->flags & CF_DSACK) != 0;
        c->flags &= ~(CF_ACK_NOW | CF_ACK_PENDING | CF_DSACK);
        c->rcv_unacked = 0;
        c->rcv_wup = c->rcv_nxt;
        c->delack_deadline = SIM_TIME_MAX;
    }
    c->last_activity = sim_now(st->sim);
    st->stats.segs_out++;
    if (net_tracing(st->net, p->flow)) {
        char ps[160];
        net_tracef(st->net, st->node->name, p, "tcp send %s", pkt_str(p, ps, sizeof ps));
    }
    net_node_output(st->node, p);
}

void tcp_send_ack(tcp_conn_t *c)
{
    /* seq = the highest sequence sent (Linux tcp_acceptable_seq: its snd_nxt). */
    pkt_t *p = seg_new(c, TCP_ACK, c->snd_max, 0);
    c->st->stats.acks_out++;
    seg_xmit(c, p);
}

/* A keepalive probe, as Linux tcp_xmit_probe_skb(sk, 0): a bare ACK with seq snd_una - 1,
 * below what the peer expects, so the peer must answer with an ACK (or a RST if it no
 * longer knows the connection). */
void tcp_send_keepalive_probe(tcp_conn_t *c)
{
    pkt_t *p = seg_new(c, TCP_ACK, c->snd_una - 1, 0);
    c->st->stats.keepalive_probes++;
    seg_xmit(c, p);
}

void tcp_send_syn(tcp_conn_t *c)
{
    uint8_t fl = TCP_SYN | (c->state == TCP_SYN_RECV ? TCP_ACK : 0);
    pkt_t *p = seg_new(c, fl, c->iss, 0);
    p->mss = (uint16_t)(c->st->p.mss > 65535 ? 65535 : c->st->p.mss);
    seg_xmit(c, p);
}

void tcp_send_rst_conn(tcp_conn_t *c, const char *why)
{
    pkt_t *p = seg_new(c, TCP_RST | TCP_ACK, c->snd_max, 0);
    p->win = 0;
    c->st->stats.rst_sent++;
    TCP_TRACE(c, "RST sent: %s", why);
    seg_xmit(c, p);
}

/* Linux tcp_v4_send_reset(): never answer a RST; if the segment had an ACK, RST with
 * seq = its ack; otherwise RST|ACK acknowledging everything it occupied. */
void tcp_send_reset(tcp_stack_t *st, const pkt_t *in, const char *why)
{
    pkt_t *p = pkt_rst_reply(st->net, in);
    if (!p) return;
    st->stats.rst_sent++;
    st->stats.segs_out++;
    {
        char ps[160];
        net_notef(st->net, st->node->name, p->flow, "TCP RST sent (%s) in answer to %s", why,
                  pkt_str(in, ps, sizeof ps));
    }
    if (net_tracing(st->net, p->flow)) {
        char ps[160];
        net_tracef(st->net, st->node->name, p, "tcp RST sent (%s): %s", why,
                   pkt_str(p, ps, sizeof ps));
    }
    net_node_output(st->node, p);
}

/* ---- data segments ------------------------------------------------------------------ */

/* The send-queue entry holding sequence number s, searching forward from k. */
static uint64_t sq_find(const tcp_conn_t *c, uint32_t s, uint64_t k)
{
    if (k < c->sq_head) k = c->sq_head;
    while (k < c->sq_tail && !seq_after(c->sq[k & (c->sq_cap - 1)].end, s)) k++;
    return k;
}

/* Drops the messages the peer has acknowledged in full. */
void tcp_sq_trim(tcp_conn_t *c)
{
    while (c->sq_head < c->sq_tail) {
        tcp_sqent_t *e = &c->sq[c->sq_head & (c->sq_cap - 1)];
        if (seq_after(e->end, c->snd_una)) break;
        net_msg_unref(e->msg);
        e->msg = NULL;
        c->sq_head++;
    }
    if (c->sq_nxt < c->sq_head) c->sq_nxt = c->sq_head;
}

/* Sends the segment starting at sequence s: at most one MSS, never past the end of the
 * message it is in; the segment with a message's last byte carries the message; the
 * FIN rides on the last data segment. Returns the sequence space used (0: nothing). */
static uint32_t xmit_at(tcp_conn_t *c, uint32_t s, uint64_t *hint)
{
    tcp_stack_t *st = c->st;
    bool fin_q = (c->flags & CF_FIN_QUEUED) != 0;
    uint8_t fl = TCP_ACK;
    uint32_t len = 0;
    net_msg_t *m = NULL;
    if (s == c->write_seq) {
        if (!fin_q) return 0;
        fl |= TCP_FIN;
    } else {
        uint64_t k = sq_find(c, s, *hint);
        *hint = k;
        assert(k < c->sq_tail);
        const tcp_sqent_t *e = &c->sq[k & (c->sq_cap - 1)];
        len = u32min(e->end - s, c->mss);
        if (s + len == e->end) {
            fl |= TCP_PSH;
            m = e->msg;
            if (fin_q && e->end == c->write_seq) fl |= TCP_FIN;
        }
    }
    uint32_t used = len + !!(fl & TCP_FIN);
    pkt_t *p = seg_new(c, fl, s, len);
    p->msg = net_msg_ref(m);
    if (seq_before(s, c->snd_max)) {
        c->retransmits++;
        st->stats.retransmits++;
        c->flags &= ~CF_RTT;                /* Karn: no sample from a retransmission */
    } else if (!(c->flags & CF_RTT)) {
        c->flags |= CF_RTT;
        c->rtt_seq = s + used;
        c->rtt_time = sim_now(st->sim);
    }
    if (len) st->stats.data_segs_out++;
    seg_xmit(c, p);
    return used;
}

void tcp_retransmit_head(tcp_conn_t *c)
{
    if (c->snd_una == c->snd_max) return;
    uint64_t k = c->sq_head;
    xmit_at(c, c->snd_una, &k);
}

/* The end of what there is to send: the queued data, and the FIN once queued. */
static uint32_t send_end(const tcp_conn_t *c)
{
    return c->write_seq + ((c->flags & CF_FIN_QUEUED) ? 1 : 0);
}

/* The payload of the segment at snd_nxt (0: a bare FIN); moves sq_nxt to its entry. */
static uint32_t next_len(tcp_conn_t *c)
{
    if (c->snd_nxt == c->write_seq) return 0;
    c->sq_nxt = sq_find(c, c->snd_nxt, c->sq_nxt);
    assert(c->sq_nxt < c->sq_tail);
    return u32min(c->sq[c->sq_nxt & (c->sq_cap - 1)].end - c->snd_nxt, c->mss);
}

/* Sends the segment at snd_nxt and moves snd_nxt (and snd_max) past it. Returns the
 * sequence space used (0: nothing to send). */
static uint32_t xmit_next(tcp_conn_t *c)
{
    uint32_t used = xmit_at(c, c->snd_nxt, &c->sq_nxt);
    c->snd_nxt += used;
    if (seq_after(c->snd_nxt, c->snd_max)) c->snd_max = c->snd_nxt;
    return used;
}

static bool tlp_schedule(tcp_conn_t *c, bool advancing);

/* The send loop. Nagle is off (the L7 proxies modelled set TCP_NODELAY). When nothing
 * is in flight one segment may go even if the window is smaller (no persist timer: the
 * receive window never closes since apps consume at once). A bare FIN is not held back
 * by the congestion window (tcp_cwnd_test). */
void tcp_output_locked(tcp_conn_t *c)
{
    c->flags &= ~CF_WANT_OUTPUT;
    switch (c->state) {
    case TCP_ESTABLISHED: case TCP_CLOSE_WAIT: case TCP_FIN_WAIT1: case TCP_CLOSING:
    case TCP_LAST_ACK:
        break;
    default:
        return;
    }
    uint32_t end = send_end(c);
    bool sent = false;
    while (seq_before(c->snd_nxt, end) && !(c->flags & CF_DEAD)) {
        if (c->snd_nxt != c->write_seq) {
            uint32_t len = next_len(c);
            uint32_t flight = c->snd_nxt - c->snd_una;
            uint32_t wnd = u32min(c->cwnd, c->snd_wnd);
            if (flight > 0 && flight + len > wnd) break;
        }
        if (!xmit_next(c)) break;
        sent = true;
    }
    if (sent && !(c->flags & CF_DEAD)) {
        /* tcp_event_new_data_sent(): the RTO starts with the first segment in flight;
         * tcp_write_xmit(): then the loss probe timer takes its place if it may */
        if (c->rtx_deadline == SIM_TIME_MAX) tcp_rearm_rto(c);
        tlp_schedule(c, false);
    }
}

void tcp_output(tcp_conn_t *c)
{
    if (c->flags & CF_DEAD) return;
    if (c->hold > 0) {
        c->flags |= CF_WANT_OUTPUT;         /* done when the holder releases c */
        return;
    }
    tcp_conn_hold(c);
    tcp_output_locked(c);
    tcp_conn_release(c);
}

/* End of an input: an ACK now (a second full segment unacknowledged, out-of-order data,
 * a duplicate, a filled hole) or the delayed-ACK timer. The timer keeps its first
 * deadline (tcp_send_delayed_ack never pushes it later). */
void tcp_ack_check(tcp_conn_t *c)
{
    if (c->flags & CF_DEAD) return;
    if (c->flags & CF_ACK_NOW) {
        tcp_send_ack(c);
        return;
    }
    if ((c->flags & CF_ACK_PENDING) && c->delack_deadline == SIM_TIME_MAX) {
        c->delack_deadline = sim_now(c->st->sim) + c->st->p.delack;
        tcp_timer_ensure(c, TT_DELACK, c->delack_deadline);
    }
}

void tcp_delack_timer(tcp_conn_t *c)
{
    if (!(c->flags & CF_ACK_PENDING)) return;
    if (c->state == TCP_SYN_SENT || c->state == TCP_SYN_RECV || c->state == TCP_CLOSED) return;
    TCP_TRACE(c, "delayed ACK timer: ACK %u", c->rcv_nxt);
    c->st->stats.delayed_acks++;
    tcp_send_ack(c);
}

/* ---- RTT and RTO ---------------------------------------------------------------------- */

/* RFC 6298 2.2-2.3; Linux keeps the variance term at least rto_min, so
 * RTO = srtt + max(4 * rttvar, rto_min), at most rto_max (tcp_rtt_estimator, tcp_set_rto).
 * A valid sample also ends any backoff (RFC 6298 5.7 / tcp_ack_update_rtt). */
void tcp_rtt_sample(tcp_conn_t *c, sim_time_t r)
{
    const tcp_params_t *p = &c->st->p;
    if (r < 0) r = 0;
    if (!(c->flags & CF_HAS_SRTT)) {
        c->srtt = r;
        c->rttvar = r / 2;
        c->flags |= CF_HAS_SRTT;
    } else {
        sim_time_t d = c->srtt > r ? c->srtt - r : r - c->srtt;
        c->rttvar = (3 * c->rttvar + d) / 4;
        c->srtt = (7 * c->srtt + r) / 8;
    }
    sim_time_t var = 4 * c->rttvar;
    if (var < p->rto_min) var = p->rto_min;
    c->rto = c->srtt + var;
    if (c->rto > p->rto_max) c->rto = p->rto_max;
    c->backoff = 0;
}

sim_time_t tcp_cur_rto(const tcp_conn_t *c)
{
    sim_time_t r = c->rto, max = c->st->p.rto_max;
    for (int i = 0; i < c->backoff && r < max; i++) r *= 2;
    return r < max ? r : max;
}

void tcp_rearm_rto(tcp_conn_t *c)
{
    bool probe = (c->flags & CF_TLP_PENDING) != 0;
    c->flags &= ~CF_TLP_PENDING;
    if (c->snd_una == c->snd_max) {
        c->rtx_deadline = SIM_TIME_MAX;
        return;
    }
    sim_time_t now = sim_now(c->st->sim);
    if (probe) {
        /* "Offset the time elapsed after installing regular RTO" (tcp_rto_delta_us) */
        sim_time_t d = c->rtx_start + tcp_cur_rto(c);
        c->rtx_deadline = d > now ? d : now;
    } else {
        c->rtx_start = now;
        c->rtx_deadline = now + tcp_cur_rto(c);
    }
    tcp_timer_ensure(c, TT_RTX, c->rtx_deadline);
}

/* tcp_set_xmit_timer(): the ACK restarts the RTO from now (the RTO a probe is clamped to
 * is the full one: advancing_rto). */
void tcp_rtx_restart(tcp_conn_t *c)
{
    c->rtx_start = sim_now(c->st->sim);
    if (!tlp_schedule(c, true)) tcp_rearm_rto(c);
}

/* ---- tail loss probe (RFC 8985 7; Linux tcp_schedule_loss_probe, tcp_send_loss_probe in
 * net/ipv4/tcp_output.c; the ACK that ends it, tcp_process_tlp_ack: tlp_ack in tcp_input.c) */

/* Linux TCP_TIMEOUT_MIN_US: what a probe timeout adds to 2 * SRTT when more than one
 * segment is in flight (timer slack; one segment adds rto_min for the peer's delayed ACK). */
#define TCP_TLP_SLACK (2 * SIM_MS)

/* Is what is unacknowledged one segment (tp->packets_out == 1)? Segments are cut at the
 * MSS from each message's start (xmit_at); a FIN counts with the data segment it follows. */
static bool one_segment_out(const tcp_conn_t *c)
{
    uint32_t hi = seq_before(c->write_seq, c->snd_max) ? c->write_seq : c->snd_max;
    if (!seq_after(hi, c->snd_una)) return true;            /* the FIN alone */
    const tcp_sqent_t *e = &c->sq[sq_find(c, c->snd_una, c->sq_head) & (c->sq_cap - 1)];
    uint32_t start = e->end - e->msg->size;
    uint32_t seg = start + (c->snd_una - start) / c->mss * c->mss;
    return !seq_after(hi, e->end) && hi - seg <= c->mss;
}

/* tcp_schedule_loss_probe(): with tcp_early_retrans 3 or 4, data in flight and the
 * congestion state Open (no fast recovery, no RTO recovery, no duplicate ACKs: Linux's
 * Disorder), the retransmission timer becomes the probe timer: PTO = 2 * SRTT, plus
 * rto_min when one segment is out (tcp_rto_min_us: the peer may delay its ACK) or 2 ms
 * when more are; TCP_TIMEOUT_INIT (rto_initial) without an RTT sample; never later than
 * the RTO -- `advancing` (an ACK restarted it): the whole RTO, else what is left of it
 * (tcp_rto_delta_us; Linux counts from the oldest unacknowledged segment's send time, the
 * model from when it last armed the RTO). Linux does this only on a SACK connection
 * (tcp_is_sack); Linux peers always negotiate SACK (tcp_sack = 1), so the model, which
 * does not model SACK blocks, takes it as negotiated. Returns whether a probe is due. */
static bool tlp_schedule(tcp_conn_t *c, bool advancing)
{
    const tcp_params_t *p = &c->st->p;
    if ((p->early_retrans != 3 && p->early_retrans != 4) || c->snd_una == c->snd_max ||
        (c->flags & (CF_RECOVERY | CF_LOSS | CF_DEAD)) || c->dupacks > 0)
        return false;
    sim_time_t now = sim_now(c->st->sim), pto;
    if (c->flags & CF_HAS_SRTT)
        pto = 2 * c->srtt + (one_segment_out(c) ? p->rto_min : TCP_TLP_SLACK);
    else
        pto = p->rto_initial;
    sim_time_t rto_left = advancing ? tcp_cur_rto(c) : c->rtx_start + tcp_cur_rto(c) - now;
    if (rto_left > 0 && rto_left < pto) pto = rto_left;
    c->flags |= CF_TLP_PENDING;
    c->rtx_deadline = now + pto;
    tcp_timer_ensure(c, TT_RTX, c->rtx_deadline);
    return true;
}

/* Where the highest-sequence segment sent starts (skb_rb_last, cut to its last MSS by
 * tcp_fragment): the last MSS-sized piece of the last message sent, counted from the
 * message's start (or snd_una); the FIN when only the FIN is unacknowledged. */
static uint32_t last_seg_start(const tcp_conn_t *c)
{
    uint32_t hi = seq_before(c->write_seq, c->snd_max) ? c->write_seq : c->snd_max;
    if (!seq_after(hi, c->snd_una)) return c->write_seq;
    const tcp_sqent_t *e = &c->sq[sq_find(c, hi - 1, c->sq_head) & (c->sq_cap - 1)];
    uint32_t start = e->end - e->msg->size;
    if (seq_before(start, c->snd_una)) start = c->snd_una;
    return start + (hi - start - 1) / c->mss * c->mss;
}

/* tcp_send_loss_probe(), the probe timer fired. At most one probe is outstanding
 * (tlp_high_seq). The probe is the next new segment if the peer's window takes it,
 * whatever the congestion window says (tcp_write_xmit with push_one 2), else the
 * highest-sequence segment again. Then the RTO restarts from now (icsk_pending cleared
 * before tcp_rearm_rto); without a probe it stays due where it was. A probe is not an RTO
 * retransmission: __tcp_retransmit_skb leaves retrans_stamp and icsk_retransmits alone, so
 * tcp_retries2's clock starts at the first RTO retransmission after it. */
static void tlp_send(tcp_conn_t *c)
{
    tcp_stack_t *st = c->st;
    if (!(c->flags & CF_TLP_OUT)) {
        c->flags &= ~CF_TLP_RETRANS;
        uint32_t s = c->snd_nxt, used = 0;
        if (seq_before(c->snd_nxt, send_end(c))) {
            uint32_t len = next_len(c);             /* tcp_snd_wnd_test() */
            if (!seq_after(c->snd_nxt + (len ? len : 1), c->snd_una + c->snd_wnd))
                used = xmit_next(c);
        }
        if (!used) {
            uint64_t k = c->sq_head;
            s = last_seg_start(c);
            used = xmit_at(c, s, &k);
            c->flags |= CF_TLP_RETRANS;
        }
        c->tlp_high_seq = c->snd_nxt;
        c->flags = (c->flags | CF_TLP_OUT) & ~CF_TLP_PENDING;
        st->stats.tlp_probes++;
        char b[32];
        TCP_TRACE(c, "tail loss probe: %s seq %u (%u), RTO in %s",
                  (c->flags & CF_TLP_RETRANS) ? "retransmit of the last segment," : "new data,",
                  s, used, tcp_dur_str(tcp_cur_rto(c), b, sizeof b));
    }
    tcp_rearm_rto(c);
}

/* Linux tcp_model_timeout(): how long `boundary` retransmissions with exponential backoff
 * from rto_base (capped at rto_max) take. retransmits_timed_out() gives up once that much
 * time has passed since the first retransmission of the stalled segment. */
static sim_time_t model_timeout(int boundary, sim_time_t base, sim_time_t rto_max)
{
    int thresh = 0;
    while (base > 0 && (base << (thresh + 1)) <= rto_max) thresh++;   /* ilog2(max/base) */
    if (boundary <= thresh) return ((2LL << boundary) - 1) * base;
    return ((2LL << thresh) - 1) * base + (sim_time_t)(boundary - thresh) * rto_max;
}

static void syn_timer(tcp_conn_t *c)
{
    tcp_stack_t *st = c->st;
    sim_time_t now = sim_now(st->sim);
    char b[32];
    bool active = c->state == TCP_SYN_SENT;
    if (active && !(c->flags & CF_SYN_SENT)) {      /* first SYN of tcp_connect() */
        c->flags |= CF_SYN_SENT | CF_RTT;
        c->rtt_seq = c->iss + 1;
        c->rtt_time = now;
        c->retrans_stamp = now;
        tcp_send_syn(c);
        c->rtx_deadline = now + tcp_cur_rto(c);
        tcp_timer_ensure(c, TT_RTX, c->rtx_deadline);
        return;
    }
    /* SYN: tcp_write_timeout() (Linux >= 6.5, commit ccce324dabfe) gives up when
     * tcp_syn_retries + tcp_syn_linear_timeouts retransmissions are done, or once
     * tcp_model_timeout(tcp_syn_retries, TCP_TIMEOUT_INIT) has passed since the first SYN
     * (retransmits_timed_out), whichever comes first: 0, 1, 3, ... 63 s and ETIMEDOUT at
     * 127 s without linear timeouts, 0, 1, 2, 3, 4, 5, 7, ... 67 s and 131 s with 4.
     * Before 6.5 the time rule alone decided; with 0 linear timeouts both agree.
     * SYN-ACK: the request sock expires after tcp_synack_retries (reqsk_timer_handler). */
    int limit = active ? st->p.syn_retries + st->p.syn_linear_timeouts : st->p.synack_retries;
    bool expired = c->rtx_count >= limit;
    if (active && !expired && c->rtx_count > 0)
        expired = now - c->retrans_stamp >=
                  model_timeout(st->p.syn_retries, st->p.rto_initial, st->p.rto_max);
    if (expired) {
        if (active) {
            net_notef(st->net, st->node->name, c->flow, "TCP connect failed: %d SYN "
                      "retransmissions unanswered", c->rtx_count);
            TCP_TRACE(c, "SYN retransmissions exhausted (%d) after %s: connect failed",
                      c->rtx_count, tcp_dur_str(now - c->retrans_stamp, b, sizeof b));
            st->stats.timeouts++;
            tcp_conn_fail(c, c->soft_err ? c->soft_err : LB_ETIMEDOUT);
        } else {
            TCP_TRACE(c, "SYN-ACK retransmissions exhausted (%d): request dropped",
                      c->rtx_count);
            tcp_conn_kill(c);
        }
        return;
    }
    TCP_TRACE(c, "%s retransmit #%d, rto=%s", active ? "SYN" : "SYN-ACK", c->rtx_count + 1,
              tcp_dur_str(tcp_cur_rto(c), b, sizeof b));
    if (active && c->rtx_count == 0)
        net_notef(st->net, st->node->name, c->flow, "SYN unanswered for %s: retransmitting "
                  "(Linux backoff %s)", tcp_dur_str(tcp_cur_rto(c), b, sizeof b),
                  st->p.syn_linear_timeouts ? "1 s for the first tcp_syn_linear_timeouts, "
                  "then 2, 4 ... s" : "1, 2, 4 ... s");
    c->rtx_count++;
    /* tcp_retransmit_timer(): in SYN_SENT the RTO stays at its initial value while
     * total_rto <= tcp_syn_linear_timeouts, then doubles */
    if (!active || c->rtx_count > st->p.syn_linear_timeouts) c->backoff++;
    c->retransmits++;
    st->stats.retransmits++;
    st->stats.syn_retransmits++;
    c->flags &= ~CF_RTT;
    tcp_send_syn(c);
    c->rtx_deadline = now + tcp_cur_rto(c);
    tcp_timer_ensure(c, TT_RTX, c->rtx_deadline);
}

/* Data / FIN retransmission timeout (tcp_retransmit_timer + tcp_enter_loss, Reno):
 * ssthresh = FlightSize / 2, cwnd = 1 segment, go back to snd_una, back off the RTO.
 * Give-up is Linux's time-based tcp_retries2 rule (tcp_orphan_retries = 8 for orphans),
 * measured from retrans_stamp: tcp_retransmit_skb() sets it to the skb's timestamp after
 * the first retransmission, i.e. the time of that retransmission (measured: 6.18 with
 * tcp_retries2 3 gives up at the expiry after the 4th RTO retransmission, 3.0 s after the
 * first one; tests/kernel-timers.sh). The same timer is the tail loss probe's while one is
 * pending (tcp_write_timer_handler, ICSK_TIME_LOSS_PROBE: tlp_send): with one segment
 * unanswered on a short path the probe goes when the RTO would have (PTO = 2 * SRTT +
 * rto_min, clamped to the RTO), and the RTO retransmissions follow one RTO after it --
 * measured on 6.18: data at 0, probe at 0.21 s, RTOs at 0.41, 0.84, 1.67, 3.34 s. */
void tcp_rtx_timer(tcp_conn_t *c)
{
    tcp_stack_t *st = c->st;
    if (c->state == TCP_SYN_SENT || c->state == TCP_SYN_RECV) {
        syn_timer(c);
        return;
    }
    if (c->snd_una == c->snd_max) {
        c->flags &= ~CF_TLP_PENDING;
        return;
    }
    if (c->flags & CF_TLP_PENDING) {
        tlp_send(c);
        return;
    }
    sim_time_t now = sim_now(st->sim);
    char b[32];
    int boundary = (c->flags & CF_ORPHAN) ? TCP_ORPHAN_RETRIES : st->p.retries2;
    if (c->rtx_count > 0 &&
        now - c->retrans_stamp >= model_timeout(boundary, st->p.rto_min, st->p.rto_max)) {
        TCP_TRACE(c, "retransmissions exhausted (%d in %s, tcp_retries2=%d): giving up",
                  c->rtx_count, tcp_dur_str(now - c->retrans_stamp, b, sizeof b), boundary);
        st->stats.timeouts++;
        tcp_conn_fail(c, c->soft_err ? c->soft_err : LB_ETIMEDOUT);
        return;
    }
    if (c->rtx_count == 0) {
        c->retrans_stamp = now;
        uint32_t flight = c->snd_max - c->snd_una;
        c->ssthresh = flight / 2 > 2 * c->mss ? flight / 2 : 2 * c->mss;
    }
    TCP_TRACE(c, "RTO #%d (rto=%s): retransmit from seq %u, cwnd 1 segment", c->rtx_count + 1,
              tcp_dur_str(tcp_cur_rto(c), b, sizeof b), c->snd_una);
    st->stats.rto_expiries++;
    c->cwnd = c->mss;
    c->cwnd_cnt = 0;
    /* tcp_enter_loss(): TCP_CA_Loss until `recover` is acknowledged; no loss probe
     * outstanding any more (tlp_high_seq = 0) */
    c->flags = (c->flags & ~(CF_RECOVERY | CF_RTT | CF_TLP_OUT)) | CF_LOSS;
    c->recover = c->snd_max;
    c->dupacks = 0;
    c->snd_nxt = c->snd_una;
    c->sq_nxt = c->sq_head;
    c->rtx_count++;
    c->backoff++;
    c->rtx_start = now;
    c->rtx_deadline = now + tcp_cur_rto(c);
    tcp_timer_ensure(c, TT_RTX, c->rtx_deadline);
    tcp_output_locked(c);
}
