/* tcp_int.h -- private to src/net/tcp*.c: the stack, connection, listener and TIME_WAIT
 * structures and the helpers the TCP files share. tcp.c owns the tables, the API and the
 * lazy timers; tcp_input.c processes segments; tcp_output.c builds and sends them and runs
 * the retransmission and delayed-ACK timers; tcp_timewait.c keeps compact TIME_WAIT
 * entries. Nothing outside src/net/tcp*.c includes this file. */
#ifndef TCP_INT_H
#define TCP_INT_H

#include <gsl/gsl_rng.h>
#include "tcp.h"

/* Linux tcp_orphan_retries(): sysctl tcp_orphan_retries = 0 means 8 retries for an
 * orphaned (closed by the app) socket still retransmitting (net/ipv4/tcp_timer.c). */
#define TCP_ORPHAN_RETRIES 8
/* RFC 1122 4.2.2.6 / Linux TCP_MSS_DEFAULT: the MSS assumed when a SYN carries none. */
#define TCP_MSS_DEFAULT 536
/* The window field of a SYN is never scaled (RFC 7323 2.2). */
#define TCP_MAX_UNSCALED_WND 65535u

/* Sequence arithmetic modulo 2^32, as before()/after() in include/net/tcp.h. */
static inline bool seq_before(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool seq_after(uint32_t a, uint32_t b) { return (int32_t)(b - a) < 0; }

/* ---- lazy timers ----------------------------------------------------------------------
 * Each connection has four timers. A timer is a deadline kept in the connection plus at
 * most one queued engine event (`at` = its time, SIM_TIME_MAX when none). Moving a
 * deadline later costs nothing: the event fires, sees the later deadline and re-queues
 * itself once. Stopping a timer sets the deadline to SIM_TIME_MAX; the event then fires
 * and does nothing. Only a deadline earlier than the queued event cancels and re-queues. */
enum { TT_RTX, TT_DELACK, TT_USER, TT_KEEPALIVE, TT_COUNT };
typedef struct tcp_timer { sim_handle_t h; sim_time_t at; } tcp_timer_t;

/* Connection flags. */
enum {
    CF_DEAD = 1 << 0,           /* out of the tables; freed when the last hold goes */
    CF_ORPHAN = 1 << 1,         /* the app let go (close/abort/error): no more callbacks */
    CF_FIN_QUEUED = 1 << 2,     /* close(): FIN follows the queued data, at write_seq */
    CF_SYN_SENT = 1 << 3,       /* active open: the first SYN went out */
    CF_RTT = 1 << 4,            /* an RTT measurement is running (rtt_seq, rtt_time) */
    CF_RECOVERY = 1 << 5,       /* NewReno fast recovery until snd_una passes `recover` */
    CF_ACK_NOW = 1 << 6,        /* send an ACK at the end of this input */
    CF_ACK_PENDING = 1 << 7,    /* something is unacknowledged: delayed ACK */
    CF_WANT_OUTPUT = 1 << 8,    /* tcp_send() while held: output when released */
    CF_IN_ERROR = 1 << 9,       /* inside the error callback */
    CF_ABORT_REQ = 1 << 10,     /* tcp_abort() called from the error callback */
    CF_HAS_SRTT = 1 << 11,      /* srtt/rttvar hold a measurement */
    CF_LOSS = 1 << 12,          /* after a data RTO until snd_una passes `recover`
                                 * (Linux TCP_CA_Loss, tcp_enter_loss) */
    CF_TLP_PENDING = 1 << 13,   /* TT_RTX is the loss probe timer, not the RTO
                                 * (icsk_pending == ICSK_TIME_LOSS_PROBE) */
    CF_TLP_OUT = 1 << 14,       /* a loss probe is outstanding: tlp_high_seq is valid */
    CF_TLP_RETRANS = 1 << 15,   /* ... and it was a retransmission (tp->tlp_retrans) */
    CF_DSACK = 1 << 16,         /* the next ACK reports a duplicate (rx_opt.dsack) */
};

/* A queued message: bytes [end - msg->size, end) of the send sequence space. */
typedef struct tcp_sqent { net_msg_t *msg; uint32_t end; } tcp_sqent_t;
/* An out-of-order segment: bytes [seq, end), maybe a FIN after them, maybe the message
 * that ends at `end` (owned reference). */
typedef struct tcp_ooo { uint32_t seq, end; net_msg_t *msg; bool fin; } tcp_ooo_t;

typedef struct tcp_listener {
    uint32_t addr;              /* 0: any local address */
    uint16_t port;
    tcp_accept_cb cb;
    void *data;
    int synq;                   /* connections in SYN_RECV waiting for the final ACK */
} tcp_listener_t;

struct tcp_conn {
    tcp_conn_t *hnext;          /* hash chain */
    tcp_stack_t *st;
    uint32_t laddr, raddr;
    uint16_t lport, rport;
    uint8_t state;              /* enum tcp_state */
    uint32_t flags;             /* CF_* */
    int hold;                   /* >0 while a stack function is working on it */
    uint64_t flow;
    tcp_cbs_t cbs;
    void *data;
    tcp_listener_t *lst;        /* SYN_RECV: the listener that will accept it */

    /* send side (RFC 793 names). snd_nxt is the transmit cursor (reset to snd_una on an
     * RTO: go-back-N); snd_max the highest sequence ever sent. write_seq is the end of the
     * queued data; the FIN, once queued, takes sequence number write_seq. */
    uint32_t iss, snd_una, snd_nxt, snd_max, write_seq;
    uint32_t snd_wnd, snd_wl1, snd_wl2;
    uint32_t mss;               /* payload bytes per full segment */
    uint32_t cwnd, ssthresh, cwnd_cnt, recover;  /* bytes; Reno/NewReno */
    int dupacks;
    tcp_sqent_t *sq;            /* ring of queued messages; absolute indexes */
    uint32_t sq_cap;            /* power of two */
    uint64_t sq_head, sq_tail, sq_nxt;  /* sq_nxt: the entry holding snd_nxt */

    /* RTT and retransmission (RFC 6298, Linux tcp_rtt_estimator/tcp_set_rto) */
    sim_time_t srtt, rttvar, rto;
    uint32_t rtt_seq;
    sim_time_t rtt_time;
    int backoff;                /* RTO doublings since the last RTT sample */
    uint32_t retransmits;       /* segments retransmitted on this connection */
    int rtx_count;              /* retransmissions of the current head */
    sim_time_t retrans_stamp;   /* when the head was first sent (0: not retransmitting) */
    sim_time_t rtx_start;       /* when the RTO timer was last (re)started; with a loss
                                 * probe pending the RTO is still due at rtx_start + RTO */
    uint32_t tlp_high_seq;      /* snd_nxt when the loss probe went (CF_TLP_OUT) */
    int soft_err;               /* last ICMP soft error, reported instead of ETIMEDOUT */

    /* receive side */
    uint32_t irs, rcv_nxt, rcv_wnd, rcv_unacked;
    uint32_t rcv_wup;           /* rcv_nxt when we last sent an ACK (Linux rcv_wup) */
    LB_VEC(tcp_ooo_t) ooo;      /* sorted by seq, no duplicates */

    /* timers and deadlines (SIM_TIME_MAX: off) */
    tcp_timer_t tmr[TT_COUNT];
    sim_time_t rtx_deadline, delack_deadline;
    sim_time_t connect_deadline, fw2_deadline, idle, last_activity;

    /* keepalive (tcp_keepalive.c): SO_KEEPALIVE and the per-socket TCP_KEEPIDLE /
     * TCP_KEEPINTVL / TCP_KEEPCNT (0: the stack's sysctls); ka_rcv is when the last
     * acceptable ACK arrived (Linux tp->rcv_tstamp); ka_probes unanswered probes
     * (icsk_probes_out). */
    bool ka_on;
    sim_time_t ka_idle, ka_intvl, ka_deadline, ka_rcv;
    int ka_cnt, ka_probes;
};

/* A TIME_WAIT entry: 40 bytes, in a pool array addressed by index + 1 (0 = none). */
typedef struct tcp_tw {
    uint32_t hnext;             /* hash chain, or the free list */
    uint32_t prev, next;        /* expiry FIFO, oldest first */
    uint32_t laddr, raddr;
    uint16_t lport, rport;
    uint32_t snd_nxt, rcv_nxt;
    sim_time_t expire;
} tcp_tw_t;

struct tcp_stack {
    net_node_t *node;
    net_t *net;
    sim_t *sim;
    tcp_params_t p;
    uint64_t secret;            /* ISN and port-offset hash key, from "tcp:<node>" */
    tcp_conn_t **ctab;          /* connections by 4-tuple */
    size_t cmask, nconn;
    LB_VEC(tcp_listener_t *) lst;
    uint32_t perturb[256];      /* Linux table_perturb: per-destination port offsets */
    /* TIME_WAIT */
    tcp_tw_t *tw;
    uint32_t tw_cap, tw_used, tw_free;
    uint32_t *twtab, twmask;
    uint32_t tw_head, tw_tail;
    tcp_timer_t tw_tmr;
    tcp_stats_t stats;
};

/* tcp.c */
uint64_t tcp_tuple_hash(uint32_t laddr, uint16_t lport, uint32_t raddr, uint16_t rport);
tcp_conn_t *tcp_conn_lookup(tcp_stack_t *st, uint32_t laddr, uint16_t lport,
                            uint32_t raddr, uint16_t rport);
tcp_listener_t *tcp_listener_lookup(tcp_stack_t *st, uint32_t addr, uint16_t port);
/* A new connection in the tables (state CLOSED), with default congestion state. */
tcp_conn_t *tcp_conn_new(tcp_stack_t *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
                         uint16_t rport, uint64_t flow);
uint32_t tcp_isn(tcp_stack_t *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
                 uint16_t rport);
void tcp_set_state(tcp_conn_t *c, int state);
void tcp_conn_hold(tcp_conn_t *c);
void tcp_conn_release(tcp_conn_t *c);
/* Takes c out of the tables and stops its timers; frees it now or at the last release. */
void tcp_conn_kill(tcp_conn_t *c);
/* Reports rc through the error callback (unless orphaned), then kills c. */
void tcp_conn_fail(tcp_conn_t *c, int rc);
/* Makes sure timer k fires no later than `when`. */
void tcp_timer_ensure(tcp_conn_t *c, int k, sim_time_t when);
void tcp_user_timer_arm(tcp_conn_t *c);
void tcp_tracef(const tcp_conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define TCP_TRACE(c, ...) \
    do { if (net_tracing((c)->st->net, (c)->flow)) tcp_tracef((c), __VA_ARGS__); } while (0)
const char *tcp_dur_str(sim_time_t t, char *buf, size_t n);

/* tcp_output.c */
void tcp_output(tcp_conn_t *c);             /* sends what cwnd and the window allow */
void tcp_output_locked(tcp_conn_t *c);      /* same, caller holds c */
void tcp_send_ack(tcp_conn_t *c);
void tcp_send_syn(tcp_conn_t *c);           /* SYN or SYN-ACK by state */
void tcp_send_keepalive_probe(tcp_conn_t *c);
void tcp_send_rst_conn(tcp_conn_t *c, const char *why);
/* RST in answer to segment p that has no connection (tcp_v4_send_reset). */
void tcp_send_reset(tcp_stack_t *st, const pkt_t *p, const char *why);
void tcp_ack_check(tcp_conn_t *c);          /* end of input: ACK now or arm delayed ACK */
void tcp_rtx_timer(tcp_conn_t *c);
void tcp_delack_timer(tcp_conn_t *c);
void tcp_rtt_sample(tcp_conn_t *c, sim_time_t r);
sim_time_t tcp_cur_rto(const tcp_conn_t *c);
/* After an ACK that advanced snd_una (tcp_set_xmit_timer): a loss probe if the state
 * allows one, else the RTO restarted, or stopped when nothing is in flight. */
void tcp_rtx_restart(tcp_conn_t *c);
/* tcp_rearm_rto(): the RTO, from now, or where it was due if a loss probe was pending;
 * stopped when nothing is in flight. */
void tcp_rearm_rto(tcp_conn_t *c);
void tcp_sq_trim(tcp_conn_t *c);
void tcp_retransmit_head(tcp_conn_t *c);

/* tcp_keepalive.c */
void tcp_keepalive_timer(tcp_conn_t *c);    /* TT_KEEPALIVE fired */
void tcp_keepalive_established(tcp_conn_t *c);  /* the connection reached ESTABLISHED */
/* An acceptable ACK arrived (tcp_ack: rcv_tstamp = now, icsk_probes_out = 0). */
static inline void tcp_keepalive_ack(tcp_conn_t *c, sim_time_t now)
{
    c->ka_rcv = now;
    c->ka_probes = 0;
}

/* tcp_timewait.c */
void tcp_tw_enter(tcp_conn_t *c);           /* turns c into a TIME_WAIT entry, kills c */
bool tcp_tw_exists(tcp_stack_t *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
                   uint16_t rport);
enum { TW_NONE, TW_DONE, TW_SYN };
/* Handles p for a tuple in TIME_WAIT. TW_NONE: no entry (p untouched); TW_DONE: p was
 * consumed; TW_SYN: the entry is gone and p is a new SYN to accept with ISN *isn. */
int tcp_tw_input(tcp_stack_t *st, pkt_t *p, uint32_t *isn);
void tcp_tw_free_all(tcp_stack_t *st);

#endif
