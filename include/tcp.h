/* tcp.h -- TCP with Linux semantics on a node: three-way handshake, SYN and SYN-ACK
 * retransmission with exponential backoff (tcp_syn_retries; linear first with
 * tcp_syn_linear_timeouts, Linux >= 6.5; per-version defaults: tcp_params_kernel), RFC
 * 6298 RTO with Linux's
 * 200 ms floor, data retransmission with backoff up to tcp_retries2 and a tail loss probe
 * before the first data RTO (tcp_early_retrans), cumulative ACKs,
 * delayed ACKs, MSS segmentation, slow start and fast retransmit, RST for closed ports and
 * unexpected segments, FIN/close, TIME_WAIT (60 s) with SYN reuse of TIME_WAIT tuples.
 *
 * Data is counted, not stored: tcp_send() queues a message of msg->size bytes; the segment
 * that carries its last byte references it, and the receiver's recv callback gets the
 * message once every byte before it has arrived in order.
 *
 * Lifetime: connections belong to the stack. After tcp_close() or tcp_abort() the app
 * gets no more callbacks and must not touch the connection. After an `error` callback
 * the connection is freed when the callback returns.
 *
 * Modelled as Linux does it (src/net/tcp*.c cite the kernel functions): ISNs from a keyed
 * tuple hash plus a 64 ns clock (secure_tcp_seq), ephemeral ports as
 * __inet_hash_connect, RFC 5961 challenge ACKs, TIME_WAIT reopening by a higher SYN,
 * time-based tcp_retries2 give-up, RST for data reaching a closed socket. Not modelled:
 * SACK blocks (SACK counts as negotiated, as between Linux peers, for the loss probe; a
 * D-SACK is one bit on the ACK), timestamps' PAWS (their 12 option bytes are counted: a full segment carries
 * mss - 12 bytes), CUBIC (Reno/NewReno instead), quick-ACK mode, Nagle (apps here set
 * TCP_NODELAY), syncookies, receive-buffer autotuning and zero-window probing. */
#ifndef TCP_H
#define TCP_H

#include "net.h"

typedef struct tcp_stack tcp_stack_t;
typedef struct tcp_conn tcp_conn_t;

/* Keepalive sysctls (include/net/tcp.h TCP_KEEPALIVE_TIME / _INTVL / _PROBES;
 * Documentation/networking/ip-sysctl.rst tcp_keepalive_time 7200, tcp_keepalive_intvl 75,
 * tcp_keepalive_probes 9). A node's kernel profile may change them (tcp_stack_set_params). */
#define TCP_KEEPALIVE_TIME_DEFAULT   (7200 * SIM_S)
#define TCP_KEEPALIVE_INTVL_DEFAULT  (75 * SIM_S)
#define TCP_KEEPALIVE_PROBES_DEFAULT 9
/* setsockopt() limits: MAX_TCP_KEEPIDLE / MAX_TCP_KEEPINTVL 32767 s, MAX_TCP_KEEPCNT 127. */
#define TCP_KEEPALIVE_MAX_S          32767
#define TCP_KEEPALIVE_MAX_CNT        127

/* Linux defaults (include/net/tcp.h, Documentation/networking/ip-sysctl.rst). */
typedef struct tcp_params {
    int syn_retries;            /* net.ipv4.tcp_syn_retries = 6 -> gives up after ~127 s */
    int syn_linear_timeouts;    /* net.ipv4.tcp_syn_linear_timeouts: 4 from Linux 6.5
                                 * (commit ccce324dabfe), absent (0) before -> 131 s */
    int synack_retries;         /* net.ipv4.tcp_synack_retries = 5 */
    int retries2;               /* net.ipv4.tcp_retries2 = 15 */
    int early_retrans;          /* net.ipv4.tcp_early_retrans = 3 (from 3.10): 3 or 4 turn
                                 * on the tail loss probe; 2 in 3.5 .. 3.9 (no TLP) */
    sim_time_t rto_initial;     /* TCP_TIMEOUT_INIT = 1 s */
    sim_time_t rto_min;         /* TCP_RTO_MIN = 200 ms */
    sim_time_t rto_max;         /* TCP_RTO_MAX = 120 s */
    sim_time_t delack;          /* TCP_DELACK_MIN = 40 ms */
    sim_time_t time_wait;       /* TCP_TIMEWAIT_LEN = 60 s */
    sim_time_t fin_timeout;     /* net.ipv4.tcp_fin_timeout = 60 s (FIN_WAIT_2) */
    uint32_t mss;               /* 1460 (1500-byte MTU) */
    uint32_t init_cwnd;         /* TCP_INIT_CWND = 10 segments */
    uint32_t rcv_wnd;           /* advertised window: 3 MB (tcp_rmem[2] 6 MB, adv_win_scale
                                 * 1: autotuning taken as done); SYNs carry <= 65535 */
    uint16_t port_lo, port_hi;  /* net.ipv4.ip_local_port_range = 32768 60999 */
    int backlog;                /* net.core.somaxconn = 4096 */
    sim_time_t keepalive_time;  /* net.ipv4.tcp_keepalive_time = 7200 s */
    sim_time_t keepalive_intvl; /* net.ipv4.tcp_keepalive_intvl = 75 s */
    int keepalive_probes;       /* net.ipv4.tcp_keepalive_probes = 9 */
} tcp_params_t;
/* The defaults of TCP_KERNEL_DEFAULT: Linux 5.15, the kernel of AKS's default node image
 * (Ubuntu 22.04) and of Azure Linux 2; EKS's Amazon Linux 2023 (6.1) has the same TCP
 * defaults. */
#define TCP_KERNEL_DEFAULT "5.15"
void tcp_params_default(tcp_params_t *p);
/* Linux's defaults for a kernel version "MAJOR.MINOR" (a release suffix like
 * "6.6.44-azl3" is allowed): tcp_syn_retries, tcp_syn_linear_timeouts and
 * tcp_early_retrans differ.
 * Returns 0, or LB_EINVAL for a version it cannot read (p untouched then). */
int tcp_params_kernel(tcp_params_t *p, const char *version);

/* The node's stack, created on first use with default parameters. */
tcp_stack_t *tcp_stack_get(net_node_t *node);
void tcp_stack_free(tcp_stack_t *st);
void tcp_stack_set_params(net_node_t *node, const tcp_params_t *p);
const tcp_params_t *tcp_stack_params(net_node_t *node);

typedef struct tcp_cbs {
    void (*connected)(tcp_conn_t *c, void *data);               /* active open completed */
    void (*recv)(tcp_conn_t *c, net_msg_t *msg, void *data);    /* msg is borrowed */
    void (*eof)(tcp_conn_t *c, void *data);                     /* peer sent FIN */
    void (*error)(tcp_conn_t *c, int rc, void *data);           /* LB_ECONNREFUSED,
                                 * LB_ETIMEDOUT, LB_ECONNRESET, LB_EHOSTUNREACH, LB_ENETUNREACH; c freed after */
} tcp_cbs_t;
/* A listener's callback for each connection that completed the handshake. The app sets
 * its callbacks with tcp_conn_set_cbs() before returning. */
typedef void (*tcp_accept_cb)(tcp_conn_t *c, void *data);

/* Listens on addr:port (addr 0: any local address). LB_EADDRINUSE if taken. */
int tcp_listen(net_node_t *node, uint32_t addr, uint16_t port, tcp_accept_cb cb, void *data);
int tcp_unlisten(net_node_t *node, uint32_t addr, uint16_t port);

typedef struct tcp_connect_opts {
    uint32_t src;               /* 0: the route's source address */
    uint16_t sport;             /* 0: an ephemeral port */
    uint64_t flow;              /* trace id; 0: a new one */
    sim_time_t timeout;         /* 0: only syn_retries bound it; else error ETIMEDOUT then */
} tcp_connect_opts_t;
/* Starts an active open to dst:dport. Returns the connection (state SYN_SENT) or NULL
 * with *rc set: LB_EADDRNOTAVAIL when no ephemeral port is free (tuples in TIME_WAIT
 * count as used), LB_EADDRINUSE when opts.sport's tuple is taken, or what the route to
 * dst says (net_route_error: LB_ENETUNREACH for none, LB_EINVAL for a blackhole,
 * LB_EHOSTUNREACH for unreachable, LB_EACCES for prohibit). The SYN leaves from a zero-delay event at the current time, so no
 * callback runs before tcp_connect() returns. */
tcp_conn_t *tcp_connect(net_node_t *node, uint32_t dst, uint16_t dport,
                        const tcp_connect_opts_t *opts, const tcp_cbs_t *cbs, void *data,
                        int *rc);
void tcp_conn_set_cbs(tcp_conn_t *c, const tcp_cbs_t *cbs, void *data);
/* Queues msg (takes a reference) for sending; allowed from SYN_SENT on (sent once
 * connected). LB_ESTATE after close or an error, LB_EINVAL for a 0-byte message. */
int tcp_send(tcp_conn_t *c, net_msg_t *msg);
/* Graceful close: FIN after queued data. The app lets go of c. */
void tcp_close(tcp_conn_t *c);
/* Abortive close: RST now. The app lets go of c. */
void tcp_abort(tcp_conn_t *c);
/* Idle timeout: error(LB_ETIMEDOUT) when no segment is sent or received for t (0: off);
 * the stack then closes the connection with a FIN, or with a RST if the error callback
 * calls tcp_abort(). opts.timeout (tcp_connect) errors with LB_ETIMEDOUT and sends
 * nothing, like an app closing a connecting socket. */
void tcp_conn_set_idle_timeout(tcp_conn_t *c, sim_time_t t);

/* TCP keepalive with Linux semantics (net/ipv4/tcp_timer.c tcp_keepalive_timer): with
 * SO_KEEPALIVE on, once nothing has been acknowledged by the peer for `idle`
 * (TCP_KEEPIDLE) and no data is in flight, a probe (a bare ACK one below snd_una) goes out
 * every `intvl` (TCP_KEEPINTVL); any acceptable ACK resets the count; after `cnt`
 * (TCP_KEEPCNT) unanswered probes the connection is reset and the app gets
 * error(LB_ETIMEDOUT). A RST in answer (a middlebox that forgot the flow) resets it:
 * error(LB_ECONNRESET). Probes keep middleboxes' flow entries alive (NLB, Azure LB,
 * conntrack); they carry no data, so app-level idle timers (http_server keepalive_timeout,
 * http_pool idle_timeout) do not see them -- tcp_conn_set_idle_timeout() does, it counts
 * segments. Fields 0 take the stack's keepalive sysctls (tcp_params_t). Set on a listening
 * app's accepted connections this models socket options set on the listener (Linux copies
 * them to each accepted socket). */
typedef struct tcp_keepalive {
    sim_time_t idle;            /* TCP_KEEPIDLE; 0: keepalive_time */
    sim_time_t intvl;           /* TCP_KEEPINTVL; 0: keepalive_intvl */
    int cnt;                    /* TCP_KEEPCNT; 0: keepalive_probes */
} tcp_keepalive_t;
/* ka NULL: SO_KEEPALIVE off. Returns 0, LB_EINVAL (idle or intvl not whole seconds in
 * 1..32767 s, cnt outside 1..127, as setsockopt refuses them), LB_ESTATE (closed). */
int tcp_conn_set_keepalive(tcp_conn_t *c, const tcp_keepalive_t *ka);
/* Validates ka without a connection (same rules as tcp_conn_set_keepalive). */
int tcp_keepalive_check(const tcp_keepalive_t *ka);

/* Accessors. */
enum tcp_state { TCP_CLOSED, TCP_LISTEN, TCP_SYN_SENT, TCP_SYN_RECV, TCP_ESTABLISHED,
                 TCP_FIN_WAIT1, TCP_FIN_WAIT2, TCP_CLOSING, TCP_TIME_WAIT, TCP_CLOSE_WAIT,
                 TCP_LAST_ACK };
const char *tcp_state_name(int state);
int tcp_conn_state(const tcp_conn_t *c);
net_node_t *tcp_conn_node(const tcp_conn_t *c);
uint32_t tcp_conn_laddr(const tcp_conn_t *c);
uint16_t tcp_conn_lport(const tcp_conn_t *c);
uint32_t tcp_conn_raddr(const tcp_conn_t *c);
uint16_t tcp_conn_rport(const tcp_conn_t *c);
uint64_t tcp_conn_flow(const tcp_conn_t *c);
uint32_t tcp_conn_retransmits(const tcp_conn_t *c);
sim_time_t tcp_conn_srtt(const tcp_conn_t *c);

/* Stack statistics. */
typedef struct tcp_stats {
    uint64_t active_opens, passive_opens, conn_established, rst_sent, rst_recv;
    uint64_t retransmits, syn_retransmits, timeouts, time_wait_now, conns_now;
    /* segments in and out; data-carrying segments out; pure ACKs out (of which sent by
     * the delayed-ACK timer); fast retransmits; RTO expiries on data; SYNs dropped for a
     * full listen queue; SYNs that reopened a TIME_WAIT tuple */
    uint64_t segs_in, segs_out, data_segs_out, acks_out, delayed_acks;
    uint64_t fast_retransmits, rto_expiries, listen_drops, time_wait_reused;
    /* tail loss probes sent (LINUX_MIB_TCPLOSSPROBES; each also counts in retransmits
     * when it resent data); probes that repaired a loss, cwnd reduced
     * (LINUX_MIB_TCPLOSSPROBERECOVERY) */
    uint64_t tlp_probes, tlp_recoveries;
    /* keepalive probes sent; connections given up after keepalive_probes unanswered */
    uint64_t keepalive_probes, keepalive_timeouts;
} tcp_stats_t;
void tcp_stack_stats(net_node_t *node, tcp_stats_t *out);

/* Protocol entry points called by the node (src/net/node.c). Both consume p. */
void tcp_input(net_node_t *node, pkt_t *p);
void tcp_icmp_error(net_node_t *node, pkt_t *p);

#endif
