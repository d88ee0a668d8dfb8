/* tcp_timewait.c -- TIME_WAIT without the connection (Linux inet_timewait_sock): 40-byte
 * entries in a pool array addressed by index + 1, a 4-tuple hash, and a FIFO in expiry
 * order. Every entry lives the same time_wait (restarted only by moving it to the tail),
 * so the FIFO is sorted by expiry and one timer event, at the head's expiry, serves all.
 * Segment handling follows tcp_timewait_state_process() with tcp_rfc1337 = 0. */
#include <assert.h>
#include <stdio.h>
#include "tcp_int.h"

#define TW_TAB_MIN 256
#define TW_AT(st, i) (&(st)->tw[(i) - 1])

static uint32_t tw_find(const tcp_stack_t *st, uint32_t laddr, uint16_t lport,
                        uint32_t raddr, uint16_t rport)
{
    if (!st->twtab) return 0;
    uint32_t i = st->twtab[tcp_tuple_hash(laddr, lport, raddr, rport) & st->twmask];
    for (; i; i = TW_AT(st, i)->hnext) {
        const tcp_tw_t *t = TW_AT(st, i);
        if (t->lport == lport && t->rport == rport && t->laddr == laddr && t->raddr == raddr)
            return i;
    }
    return 0;
}

bool tcp_tw_exists(tcp_stack_t *st, uint32_t laddr, uint16_t lport, uint32_t raddr,
                   uint16_t rport)
{
    return st->tw_head && tw_find(st, laddr, lport, raddr, rport) != 0;
}

static uint32_t *bucket_of(tcp_stack_t *st, const tcp_tw_t *t)
{
    return &st->twtab[tcp_tuple_hash(t->laddr, t->lport, t->raddr, t->rport) & st->twmask];
}

/* Doubles the hash table (rehashing every live entry: they are all in the FIFO). */
static void table_grow(tcp_stack_t *st)
{
    uint32_t n = st->twtab ? (st->twmask + 1) * 2 : TW_TAB_MIN;
    lb_free(st->twtab);
    st->twtab = lb_calloc(n, sizeof *st->twtab);
    st->twmask = n - 1;
    for (uint32_t i = st->tw_head; i; i = TW_AT(st, i)->next) {
        uint32_t *b = bucket_of(st, TW_AT(st, i));
        TW_AT(st, i)->hnext = *b;
        *b = i;
    }
}

static uint32_t slot_alloc(tcp_stack_t *st)
{
    if (st->tw_free) {
        uint32_t i = st->tw_free;
        st->tw_free = TW_AT(st, i)->hnext;
        return i;
    }
    if (st->tw_used == st->tw_cap) {
        st->tw_cap = st->tw_cap ? st->tw_cap * 2 : 256;
        st->tw = lb_realloc(st->tw, st->tw_cap * sizeof *st->tw);
    }
    return ++st->tw_used;
}

static void fifo_append(tcp_stack_t *st, uint32_t i)
{
    tcp_tw_t *t = TW_AT(st, i);
    t->prev = st->tw_tail;
    t->next = 0;
    if (st->tw_tail) TW_AT(st, st->tw_tail)->next = i;
    else st->tw_head = i;
    st->tw_tail = i;
}

static void fifo_unlink(tcp_stack_t *st, uint32_t i)
{
    tcp_tw_t *t = TW_AT(st, i);
    if (t->prev) TW_AT(st, t->prev)->next = t->next;
    else st->tw_head = t->next;
    if (t->next) TW_AT(st, t->next)->prev = t->prev;
    else st->tw_tail = t->prev;
}

static void tw_kill(tcp_stack_t *st, uint32_t i)
{
    tcp_tw_t *t = TW_AT(st, i);
    uint32_t *pp = bucket_of(st, t);
    while (*pp != i) {
        assert(*pp);
        pp = &TW_AT(st, *pp)->hnext;
    }
    *pp = t->hnext;
    fifo_unlink(st, i);
    t->hnext = st->tw_free;
    st->tw_free = i;
    st->stats.time_wait_now--;
}

static void timer_arm(tcp_stack_t *st);

static void timer_fire(sim_t *sim, void *a, void *b)
{
    (void)b;
    tcp_stack_t *st = a;
    st->tw_tmr.at = SIM_TIME_MAX;
    sim_time_t now = sim_now(sim);
    while (st->tw_head && TW_AT(st, st->tw_head)->expire <= now) tw_kill(st, st->tw_head);
    timer_arm(st);
}

/* The one event sits at or before the head's expiry (the head only gets later). */
static void timer_arm(tcp_stack_t *st)
{
    if (!st->tw_head) return;
    sim_time_t when = TW_AT(st, st->tw_head)->expire;
    if (st->tw_tmr.at <= when) return;
    if (st->tw_tmr.at != SIM_TIME_MAX) sim_cancel(st->sim, &st->tw_tmr.h);
    st->tw_tmr.h = sim_schedule_at(st->sim, when, timer_fire, st, NULL);
    st->tw_tmr.at = when;
}

void tcp_tw_enter(tcp_conn_t *c)
{
    tcp_stack_t *st = c->st;
    tcp_set_state(c, TCP_TIME_WAIT);
    if (st->p.time_wait > 0) {
        if (!st->twtab || st->stats.time_wait_now >= (uint64_t)st->twmask + 1) table_grow(st);
        uint32_t i = slot_alloc(st);
        tcp_tw_t *t = TW_AT(st, i);
        t->laddr = c->laddr;
        t->raddr = c->raddr;
        t->lport = c->lport;
        t->rport = c->rport;
        t->snd_nxt = c->snd_max;
        t->rcv_nxt = c->rcv_nxt;
        t->expire = sim_now(st->sim) + st->p.time_wait;
        uint32_t *b = bucket_of(st, t);
        t->hnext = *b;
        *b = i;
        fifo_append(st, i);
        st->stats.time_wait_now++;
        timer_arm(st);
        char d[32];
        TCP_TRACE(c, "TIME_WAIT for %s", tcp_dur_str(st->p.time_wait, d, sizeof d));
    }
    tcp_conn_kill(c);
}

static void tw_send_ack(tcp_stack_t *st, const tcp_tw_t *t, const pkt_t *in)
{
    pkt_t *p = pkt_new(st->net);
    p->flow = in->flow;
    p->src = t->laddr;
    p->dst = t->raddr;
    p->sport = t->lport;
    p->dport = t->rport;
    p->proto = NET_PROTO_TCP;
    p->tcp_flags = TCP_ACK;
    p->seq = t->snd_nxt;
    p->ack = t->rcv_nxt;
    p->win = st->p.rcv_wnd;
    st->stats.acks_out++;
    st->stats.segs_out++;
    if (net_tracing(st->net, p->flow)) {
        char ps[160];
        net_tracef(st->net, st->node->name, p, "tcp TIME_WAIT answers with ACK: %s",
                   pkt_str(p, ps, sizeof ps));
    }
    net_node_output(st->node, p);
}

static void tw_restart(tcp_stack_t *st, uint32_t i)
{
    TW_AT(st, i)->expire = sim_now(st->sim) + st->p.time_wait;
    fifo_unlink(st, i);
    fifo_append(st, i);
}

int tcp_tw_input(tcp_stack_t *st, pkt_t *p, uint32_t *isn)
{
    if (!st->tw_head) return TW_NONE;
    uint32_t i = tw_find(st, p->dst, p->dport, p->src, p->sport);
    if (!i) return TW_NONE;
    tcp_tw_t *t = TW_AT(st, i);
    uint8_t f = p->tcp_flags;
    uint32_t seq = p->seq;
    uint32_t end = seq + p->len + !!(f & TCP_SYN) + !!(f & TCP_FIN);
    bool tr = net_tracing(st->net, p->flow);
    /* RFC 1122 4.2.2.13: a new SYN above the old sequence space reopens the tuple, with
     * an ISN above anything the old incarnation sent (TCP_TW_SYN). */
    if ((f & (TCP_SYN | TCP_RST | TCP_ACK)) == TCP_SYN && seq_after(seq, t->rcv_nxt) &&
        tcp_listener_lookup(st, p->dst, p->dport)) {
        uint32_t n = t->snd_nxt + 65535 + 2;
        *isn = n ? n : 1;
        if (tr)
            net_tracef(st->net, st->node->name, p,
                       "tcp SYN seq %u > %u reopens a TIME_WAIT tuple", seq, t->rcv_nxt);
        tw_kill(st, i);
        st->stats.time_wait_reused++;
        return TW_SYN;
    }
    if (seq == t->rcv_nxt && (end == seq || (f & TCP_RST))) {
        if (f & TCP_RST) {
            /* TIME_WAIT assassination (tcp_rfc1337 = 0): the RST ends it. */
            st->stats.rst_recv++;
            if (tr) net_tracef(st->net, st->node->name, p, "tcp RST received: TIME_WAIT ends");
            tw_kill(st, i);
        } else {
            tw_restart(st, i);
        }
    } else if (!(f & TCP_RST)) {
        /* Out of window (a retransmitted FIN, an old SYN...): restart on an ACK and
         * answer with an ACK (TCP_TW_ACK). */
        if (f & TCP_ACK) tw_restart(st, i);
        tw_send_ack(st, t, p);
    }
    pkt_free(st->net, p);
    return TW_DONE;
}

void tcp_tw_free_all(tcp_stack_t *st)
{
    if (st->tw_tmr.at != SIM_TIME_MAX) sim_cancel(st->sim, &st->tw_tmr.h);
    st->tw_tmr.at = SIM_TIME_MAX;
    lb_free(st->tw);
    lb_free(st->twtab);
    st->tw = NULL;
    st->twtab = NULL;
    st->tw_head = st->tw_tail = st->tw_free = st->tw_used = st->tw_cap = 0;
    st->stats.time_wait_now = 0;
}
