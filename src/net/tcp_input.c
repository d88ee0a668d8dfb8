/* tcp_input.c -- segment arrival, after Linux tcp_v4_rcv / tcp_rcv_state_process: socket
 * lookup (connection, TIME_WAIT, listener, else RST), the SYN_SENT and SYN_RECV handshake
 * steps, RFC 793 acceptability with RFC 5961 RST/SYN challenge ACKs, cumulative ACK
 * processing with Reno/NewReno congestion control, in-order delivery of messages with an
 * out-of-order queue, FIN handling and the closing states; and ICMP errors.
 *
 *   state machine (who moves it):
 *     CLOSED --tcp_connect--> SYN_SENT --SYN-ACK (synsent_input)--> ESTABLISHED
 *     LISTEN --SYN (listen_input)--> SYN_RECV --ACK (synrecv_input)--> ESTABLISHED
 *     ESTABLISHED --tcp_close--> FIN_WAIT1 --ACK of FIN (est_input)--> FIN_WAIT2
 *     FIN_WAIT1 --FIN (fin_received)--> CLOSING --ACK of FIN--> TIME_WAIT (tcp_tw_enter)
 *     FIN_WAIT2 --FIN (fin_received)--> TIME_WAIT --60 s (tcp_timewait.c)--> gone
 *     ESTABLISHED --FIN (fin_received)--> CLOSE_WAIT --tcp_close--> LAST_ACK --ACK--> gone */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "tcp_int.h"

/* Linux TCP_FASTRETRANS_THRESH: duplicate ACKs that trigger a fast retransmit. */
#define TCP_DUPACK_THRESH 3
/* Linux TCP_TIMEOUT_FALLBACK (RFC 6298 5.7): the RTO when the handshake gave no RTT. */
#define TCP_RTO_FALLBACK (3 * SIM_S)
/* Bound on cwnd growth (bytes): far above any window modelled, keeps uint32 sane. */
#define TCP_CWND_CLAMP (1u << 30)

static inline uint32_t u32max(uint32_t a, uint32_t b) { return a > b ? a : b; }
static inline uint32_t u32min(uint32_t a, uint32_t b) { return a < b ? a : b; }

static uint32_t seg_end(const pkt_t *p)
{
    return p->seq + p->len + !!(p->tcp_flags & TCP_SYN) + !!(p->tcp_flags & TCP_FIN);
}

/* The MSS both sides can take: min of ours and the peer's SYN option (536 without one),
 * less the 12 bytes of timestamps every segment carries (tcp_current_mss). */
static void set_mss(tcp_conn_t *c, uint16_t peer)
{
    uint32_t m = u32min(c->st->p.mss, peer ? peer : TCP_MSS_DEFAULT);
    c->mss = m > 2 * NET_TCP_OPTS ? m - NET_TCP_OPTS : m;
    c->cwnd = c->st->p.init_cwnd * c->mss;
}

static void handshake_done(tcp_conn_t *c)
{
    c->backoff = 0;
    c->rtx_count = 0;
    c->rtx_deadline = SIM_TIME_MAX;
    c->connect_deadline = SIM_TIME_MAX;
    if (!(c->flags & CF_HAS_SRTT)) c->rto = TCP_RTO_FALLBACK;
    tcp_set_state(c, TCP_ESTABLISHED);
    c->st->stats.conn_established++;
}

/* ---- handshake ------------------------------------------------------------------------ */

/* tcp_rcv_synsent_state_process(). */
static void synsent_input(tcp_conn_t *c, pkt_t *p)
{
    tcp_stack_t *st = c->st;
    uint8_t f = p->tcp_flags;
    if (f & TCP_ACK) {
        if (!(c->flags & CF_SYN_SENT) || p->ack != c->iss + 1) {
            if (!(f & TCP_RST)) tcp_send_reset(st, p, "unacceptable ACK in SYN_SENT");
            return;
        }
    }
    if (f & TCP_RST) {
        if (f & TCP_ACK) {
            st->stats.rst_recv++;
            TCP_TRACE(c, "RST received in answer to our SYN: connection refused");
            tcp_conn_fail(c, LB_ECONNREFUSED);
        }
        return;
    }
    if (!(f & TCP_SYN) || !(f & TCP_ACK)) return;  /* simultaneous open: not modelled */
    c->irs = p->seq;
    c->rcv_nxt = p->seq + 1;
    c->snd_una = p->ack;
    c->snd_wnd = p->win;
    c->snd_wl1 = p->seq;
    c->snd_wl2 = p->ack;
    set_mss(c, p->mss);
    if (c->flags & CF_RTT) {
        c->flags &= ~CF_RTT;
        tcp_rtt_sample(c, sim_now(st->sim) - c->rtt_time);
    }
    handshake_done(c);
    tcp_send_ack(c);
    if (!(c->flags & CF_ORPHAN) && c->cbs.connected) c->cbs.connected(c, c->data);
}

/* Linux tcp_in_window(): does [seq, end) touch the window [s, e]? */
static bool in_window(uint32_t seq, uint32_t end, uint32_t s, uint32_t e)
{
    if (seq == s) return true;
    if (seq_after(end, s) && seq_before(seq, e)) return true;
    return seq == e && seq == end;
}

/* tcp_check_req(): the final ACK of the passive handshake. Returns true when the
 * connection is now ESTABLISHED and the segment should be processed further. */
static bool synrecv_input(tcp_conn_t *c, pkt_t *p)
{
    tcp_stack_t *st = c->st;
    uint8_t f = p->tcp_flags;
    if ((f & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN)) == TCP_SYN && p->seq == c->irs) {
        TCP_TRACE(c, "retransmitted SYN: SYN-ACK again");
        c->retransmits++;
        st->stats.retransmits++;
        st->stats.syn_retransmits++;
        c->flags &= ~CF_RTT;
        tcp_send_syn(c);
        return false;
    }
    if ((f & TCP_ACK) && p->ack != c->iss + 1) {
        tcp_send_reset(st, p, "ACK does not match our SYN-ACK");
        return false;
    }
    if (!in_window(p->seq, seg_end(p), c->rcv_nxt, c->rcv_nxt + c->rcv_wnd)) {
        if (!(f & TCP_RST)) tcp_send_ack(c);
        return false;
    }
    if (f & (TCP_RST | TCP_SYN)) {
        if (f & TCP_RST) {
            st->stats.rst_recv++;
            TCP_TRACE(c, "RST received in SYN_RECV: request dropped");
        } else {
            tcp_send_reset(st, p, "SYN in the window of SYN_RECV");
        }
        tcp_conn_kill(c);
        return false;
    }
    if (!(f & TCP_ACK)) return false;
    tcp_listener_t *l = c->lst;
    assert(l);
    l->synq--;
    c->lst = NULL;
    c->snd_una = p->ack;
    c->snd_wnd = p->win;
    c->snd_wl1 = p->seq;
    c->snd_wl2 = p->ack;
    if (c->flags & CF_RTT) {
        c->flags &= ~CF_RTT;
        tcp_rtt_sample(c, sim_now(st->sim) - c->rtt_time);
    }
    handshake_done(c);
    st->stats.passive_opens++;
    l->cb(c, l->data);
    return !(c->flags & CF_DEAD);
}

/* A SYN for a listener (tcp_conn_request): SYN_RECV and a SYN-ACK, unless the SYN queue
 * is full (dropped silently: tcp_abort_on_overflow = 0, syncookies not modelled). */
static void listen_input(tcp_stack_t *st, tcp_listener_t *l, pkt_t *p, bool have_isn,
                         uint32_t isn)
{
    uint8_t f = p->tcp_flags;
    if (f & TCP_RST) {
        pkt_free(st->net, p);
        return;
    }
    if (f & TCP_ACK) {
        tcp_send_reset(st, p, "ACK for no connection (listener)");
        pkt_free(st->net, p);
        return;
    }
    if (!(f & TCP_SYN)) {
        pkt_free(st->net, p);
        return;
    }
    if (l->synq >= st->p.backlog) {
        st->stats.listen_drops++;
        net_drop(st->net, st->node, p, "tcp-backlog-full",
                 "listener port %u: SYN queue full (%d, somaxconn)", l->port, st->p.backlog);
        return;
    }
    uint64_t flow = p->flow ? p->flow : net_flow_new(st->net);
    tcp_conn_t *c = tcp_conn_new(st, p->dst, p->dport, p->src, p->sport, flow);
    c->lst = l;
    l->synq++;
    c->irs = p->seq;
    c->rcv_nxt = p->seq + 1;
    c->iss = have_isn ? isn : tcp_isn(st, p->dst, p->dport, p->src, p->sport);
    c->snd_una = c->iss;
    c->snd_nxt = c->snd_max = c->write_seq = c->iss + 1;
    c->recover = c->iss + 1;
    c->snd_wnd = p->win;
    c->snd_wl1 = p->seq;
    set_mss(c, p->mss);
    c->state = TCP_SYN_RECV;
    TCP_TRACE(c, "SYN on listener: LISTEN -> SYN_RECV, iss=%u%s", c->iss,
              have_isn ? " (reopening a TIME_WAIT tuple)" : "");
    sim_time_t now = sim_now(st->sim);
    c->flags |= CF_RTT;
    c->rtt_seq = c->iss + 1;
    c->rtt_time = now;
    tcp_send_syn(c);
    c->rtx_deadline = now + tcp_cur_rto(c);
    tcp_timer_ensure(c, TT_RTX, c->rtx_deadline);
    pkt_free(st->net, p);
}

/* ---- ACK processing ------------------------------------------------------------------- */

/* tcp_process_tlp_ack(): an ACK at or beyond tlp_high_seq ends a loss probe episode. A
 * probe of new data ends it once acknowledged. After a retransmitted probe: a D-SACK
 * (FLAG_DSACK_TLP: the receiver had the segment already; the model's D-SACK carries no
 * range, and with a probe out in the Open state the probe is the only retransmission it
 * can be about) or a pure duplicate ACK (no advance, no data, no window change) means the
 * original and the probe both arrived: no loss. An ACK beyond tlp_high_seq means the
 * probe repaired a loss: cwnd reduction (tcp_init_cwnd_reduction, CWR,
 * tcp_end_cwnd_reduction: ssthresh = Reno's max(cwnd / 2, 2 segments) (tcp_reno_ssthresh),
 * cwnd = ssthresh; tcp_try_keep_open: Open again). An ACK of exactly tlp_high_seq without
 * a D-SACK keeps the episode open: it may be the original's ACK with the probe's D-SACK
 * still to come. */
static void tlp_ack(tcp_conn_t *c, uint32_t ack, bool pure_dup, bool dsack)
{
    if (!(c->flags & CF_TLP_OUT) || seq_before(ack, c->tlp_high_seq)) return;
    if (!(c->flags & CF_TLP_RETRANS)) {
        c->flags &= ~CF_TLP_OUT;
    } else if (dsack) {
        c->flags &= ~CF_TLP_OUT;
        TCP_TRACE(c, "D-SACK for the loss probe (ack %u): nothing was lost", ack);
    } else if (seq_after(ack, c->tlp_high_seq)) {
        c->ssthresh = u32max(c->cwnd / 2, 2 * c->mss);
        c->cwnd = c->ssthresh;
        c->cwnd_cnt = 0;
        c->flags &= ~CF_TLP_OUT;
        c->st->stats.tlp_recoveries++;
        TCP_TRACE(c, "ack %u past the loss probe (%u): it repaired a loss, cwnd=%u", ack,
                  c->tlp_high_seq, c->cwnd);
    } else if (pure_dup) {
        c->flags &= ~CF_TLP_OUT;
        TCP_TRACE(c, "duplicate ACK %u for the loss probe: nothing was lost", ack);
    }
}

static void new_ack(tcp_conn_t *c, uint32_t ack, uint32_t prior_flight, bool dsack)
{
    uint32_t acked = ack - c->snd_una;
    c->snd_una = ack;
    if (seq_before(c->snd_nxt, ack)) c->snd_nxt = ack;
    tcp_sq_trim(c);
    if ((c->flags & CF_RTT) && !seq_before(ack, c->rtt_seq)) {
        c->flags &= ~CF_RTT;
        tcp_rtt_sample(c, sim_now(c->st->sim) - c->rtt_time);
    }
    c->rtx_count = 0;
    c->soft_err = 0;
    tlp_ack(c, ack, false, dsack);
    /* tcp_process_loss(): RTO recovery is over once snd_una reaches what was sent when it
     * began (high_seq): Open again (a SACK connection; see tlp_schedule) */
    if ((c->flags & CF_LOSS) && !seq_before(ack, c->recover)) c->flags &= ~CF_LOSS;
    if (c->flags & CF_RECOVERY) {
        if (!seq_before(ack, c->recover)) {
            /* RFC 6582 3.2 step 3, full ACK: cwnd = min(ssthresh, FlightSize + SMSS). */
            c->flags &= ~CF_RECOVERY;
            c->cwnd = u32min(c->ssthresh, u32max(c->snd_max - c->snd_una, c->mss) + c->mss);
            c->dupacks = 0;
            TCP_TRACE(c, "fast recovery done at ack %u, cwnd=%u", ack, c->cwnd);
        } else {
            /* Partial ACK: the next hole is lost too; deflate by what was acked. */
            tcp_retransmit_head(c);
            c->cwnd = c->cwnd > acked ? c->cwnd - acked : 0;
            if (acked >= c->mss) c->cwnd += c->mss;
            if (c->cwnd < c->mss) c->cwnd = c->mss;
        }
    } else {
        c->dupacks = 0;
        /* Grow only when the window was the limit (tcp_is_cwnd_limited). */
        if (c->cwnd < c->ssthresh) {
            if (c->cwnd < 2 * prior_flight) c->cwnd = u32min(c->cwnd + acked, c->ssthresh);
        } else if (prior_flight + c->mss >= c->cwnd) {
            c->cwnd_cnt += acked;
            if (c->cwnd_cnt >= c->cwnd) {
                c->cwnd_cnt -= c->cwnd;
                c->cwnd += c->mss;
            }
        }
        if (c->cwnd > TCP_CWND_CLAMP) c->cwnd = TCP_CWND_CLAMP;
    }
    tcp_rtx_restart(c);
}

static void dup_ack(tcp_conn_t *c)
{
    c->dupacks++;
    if (c->flags & CF_RECOVERY) {
        c->cwnd += c->mss;                  /* window inflation, RFC 6582 3.2 step 4 */
        return;
    }
    if (c->dupacks != TCP_DUPACK_THRESH || seq_before(c->snd_una, c->recover)) return;
    uint32_t flight = c->snd_max - c->snd_una;
    c->ssthresh = u32max(flight / 2, 2 * c->mss);
    c->cwnd = c->ssthresh + 3 * c->mss;
    c->recover = c->snd_max;
    /* tcp_enter_recovery -> tcp_init_cwnd_reduction: no loss probe outstanding any more */
    c->flags = (c->flags | CF_RECOVERY) & ~CF_TLP_OUT;
    c->st->stats.fast_retransmits++;
    TCP_TRACE(c, "3 duplicate ACKs: fast retransmit of seq %u, ssthresh=%u", c->snd_una,
              c->ssthresh);
    tcp_retransmit_head(c);
    /* tcp_xmit_retransmit_queue(): retransmitting the head rearms the RTO (a pending
     * probe timer becomes the RTO again, due where it was) */
    if (c->flags & CF_TLP_PENDING) tcp_rearm_rto(c);
}

/* tcp_ack(). Returns -1 when the segment must be discarded. */
static int ack_process(tcp_conn_t *c, const pkt_t *p)
{
    uint32_t ack = p->ack;
    if (seq_after(ack, c->snd_max)) {
        TCP_TRACE(c, "ACK %u of data never sent: segment discarded", ack);
        return -1;
    }
    if (seq_before(ack, c->snd_una)) return 0;     /* old ACK; its data still counts */
    tcp_keepalive_ack(c, sim_now(c->st->sim));
    /* no advance, no data, no window change: Linux's !(FLAG_SND_UNA_ADVANCED |
     * FLAG_NOT_DUP) */
    bool pure_dup = ack == c->snd_una && p->len == 0 && !(p->tcp_flags & TCP_FIN) &&
                    p->win == c->snd_wnd;
    /* a D-SACK is no duplicate ACK (FLAG_DSACKING_ACK: num_dupack stays 0) */
    bool dup = pure_dup && !p->dsack && c->snd_una != c->snd_max;
    if (seq_after(p->seq, c->snd_wl1) || (p->seq == c->snd_wl1 && !seq_before(ack, c->snd_wl2))) {
        c->snd_wnd = p->win;
        c->snd_wl1 = p->seq;
        c->snd_wl2 = ack;
    }
    if (seq_after(ack, c->snd_una)) {
        new_ack(c, ack, c->snd_max - c->snd_una, p->dsack);
    } else {
        tlp_ack(c, ack, pure_dup, p->dsack);
        if (dup) dup_ack(c);
    }
    return 0;
}

/* ---- data and FIN ---------------------------------------------------------------------- */

static void fin_received(tcp_conn_t *c)
{
    c->rcv_nxt++;
    switch (c->state) {
    case TCP_ESTABLISHED:
        tcp_set_state(c, TCP_CLOSE_WAIT);
        /* tcp_fin() enters pingpong mode: the ACK is delayed so that the app's own FIN
         * can carry it. */
        c->flags |= CF_ACK_PENDING;
        if (!(c->flags & CF_ORPHAN) && c->cbs.eof) c->cbs.eof(c, c->data);
        break;
    case TCP_FIN_WAIT1:
        tcp_set_state(c, TCP_CLOSING);
        c->flags |= CF_ACK_NOW;
        break;
    case TCP_FIN_WAIT2:
        tcp_send_ack(c);
        tcp_tw_enter(c);
        break;
    default:
        break;
    }
}

/* Bytes up to dend are now in order: hand over the message that ends there. */
static void deliver(tcp_conn_t *c, uint32_t dend, net_msg_t *msg, bool fin)
{
    if (seq_after(dend, c->rcv_nxt)) {
        c->rcv_unacked += dend - c->rcv_nxt;
        c->rcv_nxt = dend;
        c->flags |= CF_ACK_PENDING;
        if (msg && !(c->flags & CF_ORPHAN) && c->cbs.recv) c->cbs.recv(c, msg, c->data);
        if (c->flags & CF_DEAD) return;
    }
    if (fin && dend == c->rcv_nxt) fin_received(c);
}

static void ooo_insert(tcp_conn_t *c, pkt_t *p)
{
    tcp_ooo_t e = {p->seq, p->seq + p->len, p->msg, (p->tcp_flags & TCP_FIN) != 0};
    size_t i = c->ooo.n;
    while (i > 0 && seq_after(c->ooo.v[i - 1].seq, e.seq)) i--;
    if (i > 0 && c->ooo.v[i - 1].seq == e.seq) return;     /* already queued */
    p->msg = NULL;                                          /* the queue owns the ref */
    lb_vec_reserve(&c->ooo, c->ooo.n + 1);
    memmove(&c->ooo.v[i + 1], &c->ooo.v[i], (c->ooo.n - i) * sizeof e);
    c->ooo.v[i] = e;
    c->ooo.n++;
}

/* Delivers the queued segments the new rcv_nxt has reached. */
static void ooo_drain(tcp_conn_t *c)
{
    size_t j = 0;
    uint32_t nxt = c->rcv_nxt;
    while (j < c->ooo.n && !seq_after(c->ooo.v[j].seq, nxt)) {
        uint32_t e = c->ooo.v[j].end + c->ooo.v[j].fin;
        if (seq_after(e, nxt)) nxt = e;
        j++;
    }
    if (!j) return;
    tcp_ooo_t small[32];
    tcp_ooo_t *b = j <= 32 ? small : lb_malloc(j * sizeof *b);
    memcpy(b, c->ooo.v, j * sizeof *b);
    memmove(c->ooo.v, c->ooo.v + j, (c->ooo.n - j) * sizeof *b);
    c->ooo.n -= j;
    for (size_t i = 0; i < j; i++) {
        if (!(c->flags & CF_DEAD)) deliver(c, b[i].end, b[i].msg, b[i].fin);
        net_msg_unref(b[i].msg);
    }
    if (b != small) lb_free(b);
}

static void data_input(tcp_conn_t *c, pkt_t *p)
{
    bool fin = (p->tcp_flags & TCP_FIN) != 0;
    uint32_t seq = p->seq, dend = seq + p->len, end = dend + fin;
    switch (c->state) {
    case TCP_ESTABLISHED: case TCP_FIN_WAIT1: case TCP_FIN_WAIT2:
        break;
    case TCP_CLOSE_WAIT: case TCP_CLOSING: case TCP_LAST_ACK:
        if (!seq_before(seq, c->rcv_nxt)) return;   /* beyond the peer's FIN: ignored */
        break;
    default:
        return;
    }
    /* After close() nobody can read: new data is answered with a RST and the socket
     * dies (tcp_rcv_state_process, RCV_SHUTDOWN in FIN_WAIT1/2). */
    if ((c->flags & CF_ORPHAN) && (c->state == TCP_FIN_WAIT1 || c->state == TCP_FIN_WAIT2) &&
        p->len > 0 && seq_after(dend, c->rcv_nxt)) {
        TCP_TRACE(c, "%u bytes of data after close: reset", p->len);
        tcp_send_reset(c->st, p, "data for a socket the app has closed");
        tcp_conn_kill(c);
        return;
    }
    if (!seq_after(end, c->rcv_nxt)) {
        /* a retransmission: ACK at once, reporting the duplicate (tcp_data_queue,
         * tcp_dsack_set: net.ipv4.tcp_dsack = 1 on a SACK connection) */
        c->flags |= CF_ACK_NOW | CF_DSACK;
        return;
    }
    if (seq_after(seq, c->rcv_nxt)) {               /* a hole before it */
        ooo_insert(c, p);
        c->flags |= CF_ACK_NOW;
        return;
    }
    deliver(c, dend, p->msg, fin);
    if (c->flags & CF_DEAD) return;
    if (c->ooo.n) {
        size_t before = c->ooo.n;
        ooo_drain(c);
        if (c->ooo.n != before) c->flags |= CF_ACK_NOW;     /* RFC 5681 4.2: hole filled */
        if (c->ooo.n) c->flags |= CF_ACK_NOW;
        if (c->flags & CF_DEAD) return;
    }
    /* ACK every second full-sized segment at once (__tcp_ack_snd_check). */
    if (c->rcv_unacked > c->mss) c->flags |= CF_ACK_NOW;
}

/* ---- synchronized states ---------------------------------------------------------------- */

static void est_input(tcp_conn_t *c, pkt_t *p)
{
    tcp_stack_t *st = c->st;
    uint8_t f = p->tcp_flags;
    uint32_t seq = p->seq;
    /* tcp_sequence(): some of the segment must be in the window, whose left edge is
     * where our last ACK put it (rcv_wup). */
    if (seq_before(seg_end(p), c->rcv_wup) || seq_after(seq, c->rcv_nxt + c->rcv_wnd)) {
        if (!(f & TCP_RST)) c->flags |= CF_ACK_NOW;        /* tcp_send_dupack */
        /* ... with a D-SACK for data already received (tcp_dsack_set) */
        if (!(f & TCP_RST) && p->len && seq_before(seq, c->rcv_nxt)) c->flags |= CF_DSACK;
        return;
    }
    if (f & TCP_RST) {
        st->stats.rst_recv++;
        /* RFC 5961 3.2, and RCV.NXT - 1 once the peer's FIN is in (tcp_reset_check) */
        bool after_fin = c->state == TCP_CLOSE_WAIT || c->state == TCP_LAST_ACK ||
                         c->state == TCP_CLOSING;
        if (seq == c->rcv_nxt || (after_fin && seq == c->rcv_nxt - 1)) {
            TCP_TRACE(c, "RST received in %s: connection reset", tcp_state_name(c->state));
            tcp_conn_fail(c, LB_ECONNRESET);
            return;
        }
        TCP_TRACE(c, "RST seq %u != rcv_nxt %u: challenge ACK (RFC 5961)", seq, c->rcv_nxt);
        c->flags |= CF_ACK_NOW;
        return;
    }
    if (f & TCP_SYN) {
        TCP_TRACE(c, "SYN in %s: challenge ACK (RFC 5961)", tcp_state_name(c->state));
        c->flags |= CF_ACK_NOW;
        return;
    }
    if (!(f & TCP_ACK)) return;
    if (ack_process(c, p) < 0 || (c->flags & CF_DEAD)) return;
    if ((c->flags & CF_FIN_QUEUED) && c->snd_una == c->write_seq + 1) {    /* FIN acked */
        switch (c->state) {
        case TCP_FIN_WAIT1:
            tcp_set_state(c, TCP_FIN_WAIT2);
            if (c->flags & CF_ORPHAN) {
                c->fw2_deadline = sim_now(st->sim) + st->p.fin_timeout;
                tcp_user_timer_arm(c);
            }
            break;
        case TCP_CLOSING:
            tcp_tw_enter(c);
            return;
        case TCP_LAST_ACK:
            tcp_set_state(c, TCP_CLOSED);
            tcp_conn_kill(c);
            return;
        default:
            break;
        }
    }
    if (p->len || (f & TCP_FIN)) data_input(c, p);
}

static void conn_input(tcp_conn_t *c, pkt_t *p)
{
    tcp_stack_t *st = c->st;
    tcp_conn_hold(c);
    c->last_activity = sim_now(st->sim);
    switch (c->state) {
    case TCP_SYN_SENT:
        synsent_input(c, p);
        break;
    case TCP_SYN_RECV:
        if (synrecv_input(c, p)) est_input(c, p);
        break;
    default:
        est_input(c, p);
        break;
    }
    if (!(c->flags & CF_DEAD)) {
        tcp_output_locked(c);       /* data first, so that it carries the ACK */
        tcp_ack_check(c);
    }
    tcp_conn_release(c);
    pkt_free(st->net, p);
}

void tcp_input(net_node_t *node, pkt_t *p)
{
    tcp_stack_t *st = tcp_stack_get(node);
    if (p->proto != NET_PROTO_TCP) {
        pkt_free(st->net, p);
        return;
    }
    st->stats.segs_in++;
    tcp_conn_t *c = tcp_conn_lookup(st, p->dst, p->dport, p->src, p->sport);
    if (c) {
        conn_input(c, p);
        return;
    }
    uint32_t isn = 0;
    int tw = tcp_tw_input(st, p, &isn);
    if (tw == TW_DONE) return;
    tcp_listener_t *l = tcp_listener_lookup(st, p->dst, p->dport);
    if (l) {
        listen_input(st, l, p, tw == TW_SYN, isn);
        return;
    }
    if (p->tcp_flags & TCP_RST) {
        pkt_free(st->net, p);
        return;
    }
    tcp_send_reset(st, p, (p->tcp_flags & TCP_SYN) && (p->tcp_flags & TCP_ACK)
                              ? "SYN-ACK that matches no connection of ours"
                          : (p->tcp_flags & TCP_SYN) ? "SYN to a closed port"
                                                     : "segment for no connection");
    pkt_free(st->net, p);
}

/* ---- ICMP ------------------------------------------------------------------------------ */

/* icmp_err_convert[] and tcp_v4_err(): unreachable errors are fatal (hard) while the
 * handshake is in progress and only recorded (soft) afterwards (inet->recverr off).
 * Net unreachable is ENETUNREACH; host unreachable and admin prohibited (code 13,
 * ICMP_PKT_FILTERED) are EHOSTUNREACH, as a connect() through a Linux router with an
 * `unreachable` or `prohibit` route reports. */
void tcp_icmp_error(net_node_t *node, pkt_t *p)
{
    tcp_stack_t *st = tcp_stack_get(node);
    if (p->inner.proto != NET_PROTO_TCP) {
        pkt_free(st->net, p);
        return;
    }
    int err = 0;
    if (p->icmp_type == ICMP_DEST_UNREACH) {
        switch (p->icmp_code) {
        case ICMP_PORT_UNREACH: err = LB_ECONNREFUSED; break;
        case ICMP_NET_UNREACH: err = LB_ENETUNREACH; break;
        case ICMP_HOST_UNREACH: case ICMP_ADMIN_PROHIBITED: err = LB_EHOSTUNREACH; break;
        default: break;     /* fragmentation needed etc.: not modelled */
        }
    } else if (p->icmp_type == ICMP_TIME_EXCEEDED) {
        err = LB_EHOSTUNREACH;
    }
    tcp_conn_t *c = err ? tcp_conn_lookup(st, p->inner.src, p->inner.sport, p->inner.dst,
                                          p->inner.dport) : NULL;
    if (!c) {
        pkt_free(st->net, p);
        return;
    }
    tcp_conn_hold(c);
    switch (c->state) {
    case TCP_SYN_SENT:
        TCP_TRACE(c, "ICMP type %u code %u in SYN_SENT: %s", p->icmp_type, p->icmp_code,
                  lb_strerror(err));
        tcp_conn_fail(c, err);
        break;
    case TCP_SYN_RECV:
        TCP_TRACE(c, "ICMP type %u code %u in SYN_RECV: request dropped", p->icmp_type,
                  p->icmp_code);
        tcp_conn_kill(c);
        break;
    default:
        TCP_TRACE(c, "ICMP type %u code %u in %s: soft error %s", p->icmp_type, p->icmp_code,
                  tcp_state_name(c->state), lb_strerror(err));
        c->soft_err = err;
        break;
    }
    tcp_conn_release(c);
    pkt_free(st->net, p);
}
