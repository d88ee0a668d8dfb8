/* ladder.c -- packet ladders (include/draw.h): the example requests of a run replayed with
 * a recorder that keeps only their flows' packets, each packet's way through the chain
 * turned into one row (sender lane -> the lanes it reached, NAT rewrites where addresses
 * changed between two places, a cross where it was dropped), the causal chain's notes put
 * in at their times, laid out as SVG by hand (lanes, rows) and written as a Mermaid
 * sequenceDiagram. TLS shows as its flights (ClientHello with or without SNI, ServerHello,
 * Finished, alerts) and, inside application data records, the HTTP message they carry
 * ("GET /app1 in TLS"): the simulator knows the plaintext, a capture would not.
 *
 * Why a replay: which request becomes a class's example is known only when it ends, long
 * after its SYN; keeping every packet of every flow in case would cost every run. The
 * replay costs the simulated time up to the last example (the first failure of each class
 * and the first success usually come early) and nothing when pictures are off. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "draw_int.h"
#include "http.h"
#include "tls.h"

/* Packet records a replay keeps at most (each ~100 bytes). */
#define LD_MAX_RECS 20000
/* Replay stop checks: every this many events. */
#define LD_PROGRESS_EVENTS 65536
/* A note flow's packets this long before its last note are kept (a probe's timeout). */
#define LD_NOTE_WINDOW (60 * SIM_S)
/* Note text drawn at most (characters). */
#define LD_NOTE_CHARS 110

typedef struct lrec {
    sim_time_t t;
    uint64_t id, flow, req_id;
    const char *where;              /* interned */
    const char *reason;             /* drop reason (static slug), NULL: arrival */
    const char *owner;              /* interned: who dropped it */
    uint32_t src, dst, seq, len;
    uint16_t sport, dport;
    uint8_t flags, proto;
    bool msg, is_req;               /* an HTTP message ends here (in TLS or not) */
    bool tls, tls_alert;            /* a TLS flight (handshake or alert) ends here */
    int status;
    char text[48];                  /* "GET /app1", "ClientHello (no SNI)" */
} lrec_t;

typedef struct replay {
    uint64_t flows[DRAW_LADDER_FLOWS];
    size_t n_flows;
    LB_VEC(lrec_t) recs;
    LB_VEC(char *) strs;            /* interned strings */
    const dr_example_t *ex;
    size_t n_ex;
    bool verified[DRAW_LADDER_EXAMPLES];
    bool full;
} replay_t;

static const char *intern(replay_t *p, const char *s)
{
    for (size_t i = p->strs.n; i-- > 0;)
        if (strcmp(p->strs.v[i], s) == 0) return p->strs.v[i];
    char *c = lb_strdup(s);
    lb_vec_push(&p->strs, c);
    return c;
}

static bool followed(const replay_t *p, uint64_t f)
{
    for (size_t i = 0; i < p->n_flows; i++)
        if (p->flows[i] == f) return true;
    return false;
}

static lrec_t *rec_new(replay_t *p, sim_time_t t, const char *where, const pkt_t *pk)
{
    if (p->recs.n >= LD_MAX_RECS) {
        p->full = true;
        return NULL;
    }
    lrec_t r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.id = pk->id;
    r.flow = pk->flow;
    r.where = intern(p, where);
    r.src = pk->src;
    r.dst = pk->dst;
    r.sport = pk->sport;
    r.dport = pk->dport;
    r.seq = pk->seq;
    r.len = pk->len;
    r.flags = pk->tcp_flags;
    r.proto = pk->proto;
    /* TLS application data: the HTTP message inside; a handshake flight: its name */
    bool in_tls = pk->msg && pk->len && pk->msg->kind == NET_MSG_TLS;
    net_msg_t *inner = in_tls ? tls_msg_inner(pk->msg) : pk->msg;
    http_msg_t *m = http_msg_from(inner);
    if (m && pk->len) {
        r.msg = true;
        r.is_req = m->is_request;
        r.req_id = m->req_id;
        r.status = m->status;
        if (m->is_request)
            snprintf(r.text, sizeof r.text, "%s %s%s", m->method, m->path ? m->path : "/",
                     in_tls ? " in TLS" : "");
        else
            snprintf(r.text, sizeof r.text, "HTTP %d %s%s", m->status,
                     http_reason_phrase(m->status), in_tls ? " in TLS" : "");
    } else if (in_tls && !inner) {
        r.tls = true;
        tls_msg_desc(pk->msg, r.text, sizeof r.text);
        r.tls_alert = strncmp(r.text, "Alert", 5) == 0;
    }
    lb_vec_push(&p->recs, r);
    return &p->recs.v[p->recs.n - 1];
}

static void rp_packet(void *data, sim_time_t t, const char *where, const pkt_t *pk)
{
    replay_t *p = data;
    if (followed(p, pk->flow)) rec_new(p, t, where, pk);
}

static void rp_drop(void *data, sim_time_t t, const char *where, const pkt_t *pk,
                    const char *reason, const char *detail)
{
    replay_t *p = data;
    if (!pk || !followed(p, pk->flow)) return;
    char owner[128];
    dr_drop_owner(where, detail, owner, sizeof owner);
    lrec_t *r = rec_new(p, t, where ? where : "network", pk);
    if (!r) return;
    r->reason = reason;
    r->owner = intern(p, owner);
}

static void rp_request(void *data, const m_request_t *q)
{
    replay_t *p = data;
    for (size_t i = 0; i < p->n_ex; i++)
        if (p->ex[i].flow == q->flow && p->ex[i].t_end == q->t_end && p->ex[i].cls == q->cls)
            p->verified[i] = true;
}

static void rp_progress(sim_t *sim, void *data)
{
    (void)data;
    if (scn_stop_requested()) sim_stop(sim);
}

/* ---- lanes and rows ------------------------------------------------------------------------ */

typedef struct lane {
    int item;                       /* graph item, or -1 */
    const char *name;               /* title (item's or the raw node name) */
    const char *role;
    int rank;
    size_t first;                   /* order of first appearance */
} lane_t;

enum { ROW_PACKET, ROW_NOTE, ROW_HEAD, ROW_GAP };

typedef struct hop { int lane; char nat[96]; } hop_t;

typedef struct row {
    int kind;
    sim_time_t t;
    uint64_t order;                 /* tie-break: packet id, or note index */
    hop_t hops[12];
    size_t n_hops;
    bool dropped;
    char label[160];
    char color[8];
    char note[208];                 /* ROW_NOTE/ROW_HEAD/ROW_GAP text */
    int note_lane;
} row_t;

typedef LB_VEC(row_t) rows_t;

typedef struct ladder {
    LB_VEC(lane_t) lanes;
    rows_t rows;
    size_t appear;
} ladder_t;

static int rank_of(int kind)
{
    static const int r[DR_KIND_COUNT] = {
        [DR_CLIENT] = 0, [DR_L7] = 1, [DR_L4] = 2, [DR_L4PROBE] = 3, [DR_KPROXY] = 4,
        [DR_HOST] = 4, [DR_ROUTER] = 4, [DR_GWPOD] = 5, [DR_POD] = 6,
    };
    return kind >= 0 && kind < DR_KIND_COUNT ? r[kind] : 4;
}

/* The lane of a node or element name (added on first use). */
static int lane_of(ladder_t *L, const dr_graph_t *g, const char *name)
{
    int it = dr_item_named(g, name);
    char base[128];
    if (it < 0) {                   /* "ilb/http": the element before the slash */
        snprintf(base, sizeof base, "%s", name);
        char *sl = strchr(base, '/');
        if (sl) {
            *sl = '\0';
            it = dr_item_named(g, base);
        }
    }
    for (size_t i = 0; i < L->lanes.n; i++)
        if (it >= 0 ? L->lanes.v[i].item == it : strcmp(L->lanes.v[i].name, name) == 0)
            return (int)i;
    lane_t l = {it, it >= 0 ? g->items.v[it].title : name, it >= 0 ? g->items.v[it].role : NULL,
                it >= 0 ? rank_of(g->items.v[it].kind) : 4, L->appear++};
    /* a kube-proxy box is the node itself in a ladder */
    if (it >= 0 && g->items.v[it].kind == DR_KPROXY && g->items.v[it].names.n)
        l.name = g->items.v[it].names.v[0];
    lb_vec_push(&L->lanes, l);
    return (int)L->lanes.n - 1;
}

static int lane_addr(ladder_t *L, const dr_graph_t *g, uint32_t addr)
{
    int it = dr_item_addr(g, addr);
    if (it < 0 || !g->items.v[it].names.n) return -1;
    return lane_of(L, g, g->items.v[it].names.v[0]);
}

static void addr_port(char *buf, size_t n, uint32_t a, uint16_t port)
{
    char ip[16];
    snprintf(buf, n, "%s:%u", lb_ip_str(a, ip), port);
}

/* The label and colour of a packet row from its first record. */
static void packet_label(row_t *w, const lrec_t *r, int retrans)
{
    const char *c = "#57606a";
    if (r->msg) {
        snprintf(w->label, sizeof w->label, "%s", r->text);
        c = r->is_req ? "#0969da" : r->status < 400 ? "#1a7f37" : "#cf222e";
    } else if (r->tls) {
        snprintf(w->label, sizeof w->label, "TLS %s", r->text);
        c = r->tls_alert ? "#cf222e" : "#8250df";
    } else if (r->proto != NET_PROTO_TCP) {
        snprintf(w->label, sizeof w->label, "%s", r->proto == NET_PROTO_ICMP ? "ICMP" : "UDP");
    } else if ((r->flags & (TCP_SYN | TCP_ACK)) == TCP_SYN) {
        snprintf(w->label, sizeof w->label, "SYN");
    } else if ((r->flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)) {
        snprintf(w->label, sizeof w->label, "SYN-ACK");
    } else if (r->flags & TCP_RST) {
        snprintf(w->label, sizeof w->label, "RST");
        c = "#bc4c00";
    } else if (r->flags & TCP_FIN) {
        snprintf(w->label, sizeof w->label, "FIN");
    } else {
        snprintf(w->label, sizeof w->label, "data %u B", r->len);
    }
    if (retrans) {
        size_t k = strlen(w->label);
        snprintf(w->label + k, sizeof w->label - k, " (retransmission %d)", retrans);
    }
    snprintf(w->color, sizeof w->color, "%s", c);
}

/* Whether a record's packet is left out: pure ACKs, and data segments that do not carry
 * the end of a message (the message's last segment stands for it). */
static bool boring(const lrec_t *r)
{
    if (r->reason) return false;
    if (r->proto != NET_PROTO_TCP) return false;
    if (r->flags & (TCP_SYN | TCP_RST | TCP_FIN)) return false;
    return !r->msg && !r->tls;
}

static int cmp_rec(const void *a, const void *b)
{
    const lrec_t *x = *(const lrec_t *const *)a, *y = *(const lrec_t *const *)b;
    if (x->id != y->id) return x->id < y->id ? -1 : 1;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int cmp_row(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

/* One row per packet of flows[] within its window, plus the notes; appended to rows in
 * time order. */
typedef struct window { uint64_t flow; sim_time_t from, to; } window_t;

static bool in_window(const window_t *w, size_t n, const lrec_t *r)
{
    for (size_t i = 0; i < n; i++)
        if (w[i].flow == r->flow && r->t >= w[i].from && r->t <= w[i].to) return true;
    return false;
}

static void packet_rows(ladder_t *L, const dr_graph_t *g, const replay_t *p,
                        const window_t *win, size_t nwin, rows_t *out)
{
    LB_VEC(const lrec_t *) sel = {0};
    for (size_t i = 0; i < p->recs.n; i++)
        if (in_window(win, nwin, &p->recs.v[i])) lb_vec_push(&sel, &p->recs.v[i]);
    if (sel.n) qsort(sel.v, sel.n, sizeof *sel.v, cmp_rec);
    /* where each (flow, destination address) was delivered: the sender of a packet from
     * that address on that flow (a frontend several instances share, a DSR node) */
    typedef struct dlv { uint64_t flow; uint32_t addr; int lane; } dlv_t;
    LB_VEC(dlv_t) dlv = {0};
    for (size_t i = 0; i < sel.n; i++) {
        const lrec_t *r = sel.v[i];
        if (r->reason || (i + 1 < sel.n && sel.v[i + 1]->id == r->id)) continue;   /* its end */
        bool have = false;
        for (size_t k = 0; k < dlv.n && !have; k++)
            have = dlv.v[k].flow == r->flow && dlv.v[k].addr == r->dst;
        if (!have) {
            dlv_t x = {r->flow, r->dst, lane_of(L, g, r->where)};
            lb_vec_push(&dlv, x);
        }
    }
    /* retransmissions: the same segment (flow, flags, seq, len) from the same sender */
    typedef struct seg { uint64_t flow; uint32_t seq, len, src; uint8_t flags; int n; } seg_t;
    LB_VEC(seg_t) segs = {0};
    for (size_t i = 0; i < sel.n;) {
        size_t j = i;
        while (j < sel.n && sel.v[j]->id == sel.v[i]->id) j++;
        const lrec_t *r0 = sel.v[i];
        if (boring(r0) && !sel.v[j - 1]->reason) {
            i = j;
            continue;
        }
        row_t w;
        memset(&w, 0, sizeof w);
        w.kind = ROW_PACKET;
        w.t = r0->t;
        w.order = r0->id;
        int sender = -1;
        for (size_t k = 0; k < dlv.n && sender < 0; k++)
            if (dlv.v[k].flow == r0->flow && dlv.v[k].addr == r0->src) sender = dlv.v[k].lane;
        if (sender < 0) sender = lane_addr(L, g, r0->src);
        /* sent from a load balancer's own address (its SNAT, an NLB node): it came from
         * the flow's other end, where packets to that end went (the balancer's receive
         * side is not a node, so it is seen nowhere) */
        int sit = dr_item_addr(g, r0->src);
        if (sender >= 0 && sit >= 0 && g->items.v[sit].kind == DR_L4) {
            int front = -1;
            for (size_t k = 0; k < dlv.n; k++)
                if (dlv.v[k].flow == r0->flow && dlv.v[k].addr != r0->dst &&
                    dlv.v[k].addr != r0->src && dlv.v[k].lane != sender)
                    front = front < 0 ? dlv.v[k].lane : -2;
            if (front >= 0) w.hops[w.n_hops++] = (hop_t){front, ""};
        }
        if (sender >= 0) w.hops[w.n_hops++] = (hop_t){sender, ""};
        for (size_t k = i; k < j && w.n_hops < 12; k++) {
            const lrec_t *r = sel.v[k];
            /* addresses that changed since the last place: rewritten at that place */
            if (k > i && w.n_hops) {
                const lrec_t *q = sel.v[k - 1];
                hop_t *h = &w.hops[w.n_hops - 1];
                char a[32], b[32];
                if (q->dst != r->dst || q->dport != r->dport) {
                    addr_port(a, sizeof a, r->dst, r->dport);
                    snprintf(h->nat, sizeof h->nat, "NAT dst \u2192 %s", a);
                }
                if (q->src != r->src || q->sport != r->sport) {
                    addr_port(b, sizeof b, r->src, r->sport);
                    size_t m = strlen(h->nat);
                    snprintf(h->nat + m, sizeof h->nat - m, "%s src \u2192 %s", m ? "," : "NAT", b);
                }
            }
            /* a packet to a load balancer's frontend passes the balancer's lane */
            int to = r->reason ? lane_of(L, g, r->owner) : lane_of(L, g, r->where);
            int lbi = dr_item_addr(g, r->dst);
            if (!r->reason && lbi >= 0 && g->items.v[lbi].kind == DR_L4 &&
                g->items.v[lbi].names.n) {
                int ll = lane_of(L, g, g->items.v[lbi].names.v[0]);
                if (ll != to && (!w.n_hops || w.hops[w.n_hops - 1].lane != ll))
                    w.hops[w.n_hops++] = (hop_t){ll, ""};
            }
            if (w.n_hops < 12 && (!w.n_hops || w.hops[w.n_hops - 1].lane != to))
                w.hops[w.n_hops++] = (hop_t){to, ""};
            if (r->reason) {
                w.dropped = true;
                break;
            }
        }
        int retrans = 0;
        if (r0->proto == NET_PROTO_TCP && !r0->msg) {
            bool found = false;
            for (size_t s = 0; s < segs.n && !found; s++)
                if (segs.v[s].flow == r0->flow && segs.v[s].seq == r0->seq &&
                    segs.v[s].src == r0->src && segs.v[s].flags == r0->flags) {
                    retrans = ++segs.v[s].n;
                    found = true;
                }
            if (!found) {
                seg_t sg = {r0->flow, r0->seq, r0->len, r0->src, r0->flags, 0};
                lb_vec_push(&segs, sg);
            }
        }
        packet_label(&w, r0, retrans);
        if (w.dropped) {
            const lrec_t *rl = sel.v[i];
            for (size_t k = i; k < j; k++)
                if (sel.v[k]->reason) rl = sel.v[k];
            size_t m = strlen(w.label);
            snprintf(w.label + m, sizeof w.label - m, ", dropped at %s: %s", rl->owner, rl->reason);
            snprintf(w.color, sizeof w.color, "#cf222e");
        }
        if (w.n_hops >= 2 || w.dropped) lb_vec_push(out, w);
        i = j;
    }
    lb_vec_free(&segs);
    lb_vec_free(&dlv);
    lb_vec_free(&sel);
}

static void note_row(ladder_t *L, const dr_graph_t *g, rows_t *out, sim_time_t t,
                     const char *where, const char *text, uint64_t order)
{
    row_t w;
    memset(&w, 0, sizeof w);
    w.kind = ROW_NOTE;
    w.t = t;
    w.order = order;
    w.note_lane = lane_of(L, g, where);
    size_t n = strlen(text);
    if (n > LD_NOTE_CHARS) {
        size_t k = LD_NOTE_CHARS;
        while (k > 0 && ((unsigned char)text[k] & 0xc0) == 0x80) k--;    /* whole characters */
        snprintf(w.note, sizeof w.note, "%.*s...", (int)k, text);
    } else {
        snprintf(w.note, sizeof w.note, "%s", text);
    }
    lb_vec_push(out, w);
}

/* One section: its header, then its rows in time order (at most DRAW_LADDER_ROWS). */
static void section_add(ladder_t *L, const char *head, rows_t *sec)
{
    row_t h;
    memset(&h, 0, sizeof h);
    h.kind = ROW_HEAD;
    snprintf(h.note, sizeof h.note, "%s", head);
    lb_vec_push(&L->rows, h);
    if (sec->n) qsort(sec->v, sec->n, sizeof *sec->v, cmp_row);
    size_t keep = DRAW_LADDER_ROWS / 2;
    for (size_t i = 0; i < sec->n; i++) {
        if (sec->n > DRAW_LADDER_ROWS && i == keep) {
            row_t gp;
            memset(&gp, 0, sizeof gp);
            gp.kind = ROW_GAP;
            snprintf(gp.note, sizeof gp.note, "... %zu more rows not shown ...",
                     sec->n - 2 * keep);
            lb_vec_push(&L->rows, gp);
            i = sec->n - keep;
        }
        lb_vec_push(&L->rows, sec->v[i]);
    }
}

/* ---- SVG -------------------------------------------------------------------------------- */

#define LD_TIME_W 110
#define LD_ROW_H 28
#define LD_HEAD_H 30
#define LD_TOP 78

static int lane_w(const ladder_t *L)
{
    size_t m = 0;
    for (size_t i = 0; i < L->lanes.n; i++) {
        size_t a = strlen(L->lanes.v[i].name), b = L->lanes.v[i].role ? strlen(L->lanes.v[i].role) : 0;
        if (a > m) m = a;
        if (b > m) m = b;
    }
    int w = (int)m * 7 + 24;
    return w < 150 ? 150 : w > 260 ? 260 : w;
}

static void svg_text(FILE *f, double x, double y, const char *anchor, const char *style,
                     const char *text)
{
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\" %s>", x, y, anchor, style);
    draw_put_xml(f, text);
    fputs("</text>\n", f);
}

static char *ladder_svg(const ladder_t *L, const char *title, size_t *len)
{
    int lw = lane_w(L);
    double width = LD_TIME_W + lw * (double)L->lanes.n + 20;
    for (size_t i = 0; i < L->rows.n; i++) {        /* what sticks out on the right */
        const row_t *w = &L->rows.v[i];
        double right = 0;
        if (w->kind == ROW_NOTE) right = LD_TIME_W + (double)strlen(w->note) * 6.6 + 30;
        for (size_t k = 0; k < w->n_hops; k++) {
            double x = LD_TIME_W + lw * (double)w->hops[k].lane + lw / 2.0;
            if (w->hops[k].nat[0] && x + 10 + (double)strlen(w->hops[k].nat) * 5.6 > right)
                right = x + 10 + (double)strlen(w->hops[k].nat) * 5.6;
            if (x + 12 + (double)strlen(w->label) * 6.4 > right && k == 0)
                right = x + 12 + (double)strlen(w->label) * 6.4;
        }
        if (right > width) width = right;
    }
    double y = LD_TOP + 50;
    for (size_t i = 0; i < L->rows.n; i++) y += L->rows.v[i].kind == ROW_HEAD ? LD_HEAD_H + 6 : LD_ROW_H;
    double height = y + 70;
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" font-family=\"DejaVu Sans, Arial, sans-serif\" "
               "font-size=\"12\">\n", width, height, width, height);
    fputs("<title>", f);
    draw_put_xml(f, title);
    fputs("</title>\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
          "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 "
          "L10,5 L0,10 z\" fill=\"context-stroke\"/></marker></defs>\n"
          "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n", f);
    svg_text(f, 12, 22, "start", "font-size=\"15\" font-weight=\"bold\"", title);
    svg_text(f, 12, 40, "start", "font-size=\"11\" fill=\"#57606a\"",
             "One row per packet in time order, from its sender to where it went (dots: places "
             "it passed). Simulated times on the left.");
    /* lane heads and lines */
    double top = LD_TOP, bottom = height - 50;
    for (size_t i = 0; i < L->lanes.n; i++) {
        double x = LD_TIME_W + lw * (double)i + lw / 2.0;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#afb8c1\" "
                   "stroke-dasharray=\"4 3\"/>\n", x, top + 40, x, bottom);
        fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%d\" height=\"40\" rx=\"6\" "
                   "fill=\"#f6f8fa\" stroke=\"#8c959f\"/>\n", x - lw / 2.0 + 6, top, lw - 12);
        svg_text(f, x, top + 17, "middle", "font-weight=\"bold\"", L->lanes.v[i].name);
        if (L->lanes.v[i].role)
            svg_text(f, x, top + 32, "middle", "font-size=\"10\" fill=\"#57606a\"",
                     L->lanes.v[i].role);
    }
    y = LD_TOP + 50;
    char ts[48];
    for (size_t i = 0; i < L->rows.n; i++) {
        const row_t *w = &L->rows.v[i];
        if (w->kind == ROW_HEAD) {
            fprintf(f, "<rect x=\"4\" y=\"%.1f\" width=\"%.0f\" height=\"%d\" fill=\"#ddf4ff\" "
                       "stroke=\"#54aeff\"/>\n", y + 3, width - 8, LD_HEAD_H - 2);
            svg_text(f, 12, y + 22, "start", "font-weight=\"bold\"", w->note);
            y += LD_HEAD_H + 6;
            continue;
        }
        double ym = y + LD_ROW_H - 8;
        if (w->kind == ROW_GAP) {
            svg_text(f, width / 2, ym, "middle", "fill=\"#57606a\" font-style=\"italic\"", w->note);
            y += LD_ROW_H;
            continue;
        }
        snprintf(ts, sizeof ts, "%.6f s", (double)w->t / SIM_S);
        svg_text(f, LD_TIME_W - 12, ym + 4, "end", "font-size=\"11\" fill=\"#57606a\"", ts);
        if (w->kind == ROW_NOTE) {
            double x = LD_TIME_W + lw * (double)w->note_lane + lw / 2.0;
            double tw = (double)strlen(w->note) * 6.6 + 14;
            double x0 = x - tw / 2;
            if (x0 + tw > width - 4) x0 = width - 4 - tw;
            if (x0 < LD_TIME_W) x0 = LD_TIME_W;
            fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" rx=\"4\" "
                       "fill=\"#fff8c5\" stroke=\"#d4a72c\"/>\n", x0, y + 3, tw, LD_ROW_H - 5);
            svg_text(f, x0 + 6, ym + 3, "start", "font-size=\"11\" font-style=\"italic\"", w->note);
            y += LD_ROW_H;
            continue;
        }
        double x1 = LD_TIME_W + lw * (double)w->hops[0].lane + lw / 2.0;
        double x2 = LD_TIME_W + lw * (double)w->hops[w->n_hops - 1].lane + lw / 2.0;
        if (w->n_hops == 1) x2 = x1;
        fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                   "stroke-width=\"1.6\"%s/>\n", x1, ym, x2, ym, w->color,
                w->dropped || x1 == x2 ? "" : " marker-end=\"url(#arrow)\"");
        for (size_t k = 1; k + 1 < w->n_hops; k++) {
            double x = LD_TIME_W + lw * (double)w->hops[k].lane + lw / 2.0;
            fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", x, ym, w->color);
        }
        if (w->dropped) {
            fprintf(f, "<path d=\"M%.1f,%.1f l10,10 M%.1f,%.1f l10,-10\" stroke=\"#cf222e\" "
                       "stroke-width=\"2.5\"/>\n", x2 - 5, ym - 5, x2 - 5, ym + 5);
        }
        double lx = (x1 + x2) / 2;
        const char *anchor = "middle";
        if (x1 == x2 || (double)strlen(w->label) * 6.4 > (x2 > x1 ? x2 - x1 : x1 - x2)) {
            lx = (x1 < x2 ? x1 : x2) + 6;
            anchor = "start";
        }
        svg_text(f, lx, ym - 4, anchor, "font-size=\"11\"", w->label);
        for (size_t k = 0; k < w->n_hops; k++) {
            if (!w->hops[k].nat[0]) continue;
            double x = LD_TIME_W + lw * (double)w->hops[k].lane + lw / 2.0;
            svg_text(f, x + 4, ym + 12, "start", "font-size=\"9.5\" fill=\"#8250df\"",
                     w->hops[k].nat);
        }
        y += LD_ROW_H;
    }
    svg_text(f, 12, height - 28, "start", "font-size=\"10.5\" fill=\"#57606a\"",
             "Blue: requests; green/red: responses (2xx / 4xx-5xx); grey: TCP control; "
             "red cross: dropped (where, why); purple: NAT rewrites (addresses as the next "
             "place saw them).");
    svg_text(f, 12, height - 13, "start", "font-size=\"10.5\" fill=\"#57606a\"",
             "Yellow: the causal chain's notes. Pure ACKs and segments that do not end an "
             "HTTP message are left out.");
    fputs("</svg>\n", f);
    fclose(f);
    return text;
}

/* ---- Mermaid ------------------------------------------------------------------------------ */

static char *ladder_mermaid(const ladder_t *L, const char *title, size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    fputs("%% packet ladder drawn by lbchain's sim: ", f);
    draw_put_mermaid(f, title);
    fputs("\nsequenceDiagram\n", f);
    for (size_t i = 0; i < L->lanes.n; i++) {
        fprintf(f, "  participant L%zu as ", i);
        draw_put_mermaid(f, L->lanes.v[i].name);
        if (L->lanes.v[i].role) {
            fputs("<br/>", f);
            draw_put_mermaid(f, L->lanes.v[i].role);
        }
        fputc('\n', f);
    }
    bool open = false;
    char ts[48];
    for (size_t i = 0; i < L->rows.n; i++) {
        const row_t *w = &L->rows.v[i];
        if (w->kind == ROW_HEAD) {
            if (open) fputs("  end\n", f);
            fputs("  rect rgb(221, 244, 255)\n", f);
            open = true;
            fprintf(f, "  Note over L0,L%zu: ", L->lanes.n ? L->lanes.n - 1 : 0);
            draw_put_mermaid(f, w->note);
            fputc('\n', f);
            continue;
        }
        if (w->kind == ROW_GAP || w->kind == ROW_NOTE) {
            fprintf(f, "  Note over L%d: ", w->kind == ROW_NOTE ? w->note_lane : 0);
            if (w->kind == ROW_NOTE) {
                snprintf(ts, sizeof ts, "%.6f s ", (double)w->t / SIM_S);
                draw_put_mermaid(f, ts);
            }
            draw_put_mermaid(f, w->note);
            fputc('\n', f);
            continue;
        }
        snprintf(ts, sizeof ts, "%.6f s ", (double)w->t / SIM_S);
        for (size_t k = 0; k + 1 < w->n_hops; k++) {
            bool last = k + 2 == w->n_hops;
            fprintf(f, "  L%d%sL%d: ", w->hops[k].lane, last && w->dropped ? "-x" : "->>",
                    w->hops[k + 1].lane);
            draw_put_mermaid(f, ts);
            draw_put_mermaid(f, w->label);
            if (w->hops[k].nat[0]) {
                fputs(" (", f);
                draw_put_mermaid(f, w->hops[k].nat);
                fputc(')', f);
            }
            fputc('\n', f);
        }
        if (w->n_hops == 1) {
            fprintf(f, "  Note over L%d: ", w->hops[0].lane);
            draw_put_mermaid(f, ts);
            draw_put_mermaid(f, w->label);
            fputc('\n', f);
        }
    }
    if (open) fputs("  end\n", f);
    fclose(f);
    return text;
}

/* ---- the whole ladder --------------------------------------------------------------------- */

static int lane_cmp_rank(const lane_t *a, const lane_t *b)
{
    if (a->rank != b->rank) return a->rank < b->rank ? -1 : 1;
    return a->first < b->first ? -1 : a->first > b->first;
}

/* Sorts lanes by rank (direction of traffic), renumbering every row's lanes. */
static void lanes_sort(ladder_t *L)
{
    size_t n = L->lanes.n;
    int *order = lb_malloc((n ? n : 1) * sizeof *order), *where = lb_malloc((n ? n : 1) * sizeof *where);
    for (size_t i = 0; i < n; i++) order[i] = (int)i;
    /* within a rank, lanes in the order packets reach them (then notes' lanes) */
    size_t seq = 0;
    for (size_t i = 0; i < n; i++) L->lanes.v[i].first = SIZE_MAX;
    for (size_t i = 0; i < L->rows.n; i++)
        for (size_t k = 0; k < L->rows.v[i].n_hops; k++)
            if (L->lanes.v[L->rows.v[i].hops[k].lane].first == SIZE_MAX)
                L->lanes.v[L->rows.v[i].hops[k].lane].first = seq++;
    for (size_t i = 0; i < n; i++)
        if (L->lanes.v[i].first == SIZE_MAX) L->lanes.v[i].first = seq++;
    for (size_t i = 1; i < n; i++)          /* insertion sort: a few lanes */
        for (size_t j = i; j > 0 && lane_cmp_rank(&L->lanes.v[order[j]], &L->lanes.v[order[j - 1]]) < 0; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    lane_t *nl = lb_malloc((n ? n : 1) * sizeof *nl);
    for (size_t i = 0; i < n; i++) {
        nl[i] = L->lanes.v[order[i]];
        where[order[i]] = (int)i;
    }
    memcpy(L->lanes.v, nl, n * sizeof *nl);
    for (size_t i = 0; i < L->rows.n; i++) {
        row_t *w = &L->rows.v[i];
        for (size_t k = 0; k < w->n_hops; k++) w->hops[k].lane = where[w->hops[k].lane];
        if (w->kind == ROW_NOTE) w->note_lane = where[w->note_lane];
    }
    lb_free(nl);
    lb_free(order);
    lb_free(where);
}

int dr_ladder_write(const draw_rec_t *rec, const dr_graph_t *g, scn_t *s, size_t variant,
                    uint64_t seed, const char *dir, const char *stem, char *err, size_t errlen)
{
    if (!rec->examples.n) return 0;
    replay_t p;
    memset(&p, 0, sizeof p);
    p.ex = rec->examples.v;
    p.n_ex = rec->examples.n;
    sim_time_t until = 0;
    for (size_t i = 0; i < rec->examples.n; i++) {
        const dr_example_t *e = &rec->examples.v[i];
        if (e->t_end > until) until = e->t_end;
        for (size_t k = 0; k < e->n_chain && p.n_flows < DRAW_LADDER_FLOWS; k++)
            if (!followed(&p, e->chain[k])) p.flows[p.n_flows++] = e->chain[k];
        for (size_t k = 0; k < e->notes.n; k++) {
            uint64_t nf = e->notes.v[k].flow;
            if (nf && !followed(&p, nf) && p.n_flows < DRAW_LADDER_FLOWS) p.flows[p.n_flows++] = nf;
        }
    }
    /* the replay */
    scn_run_t *rr;
    scn_diag_t d;
    if (scn_run_new(s, variant, seed, &rr, &d)) {
        lb_errf(err, errlen, "ladder: the replay of %s does not build: %s", scn_variant_name(s, variant),
                d.msg);
        return LB_EIO;
    }
    scn_sink_t sink;
    memset(&sink, 0, sizeof sink);
    sink.packet = rp_packet;
    sink.drop = rp_drop;
    sink.m.request = rp_request;
    sink.m.data = &p;
    sink.data = &p;
    scn_run_add_sink(rr, &sink);
    sim_set_progress(scn_run_sim(rr), LD_PROGRESS_EVENTS, rp_progress, NULL);
    sim_run(scn_run_sim(rr), until + SIM_MS);
    /* the ladder */
    ladder_t L;
    memset(&L, 0, sizeof L);
    size_t drawn = 0;
    for (size_t i = 0; i < rec->examples.n && !scn_stop_requested(); i++) {
        const dr_example_t *e = &rec->examples.v[i];
        const char *src = e->source_name ? e->source_name : "?";
        if (!p.verified[i]) {
            fprintf(stderr, "sim: ladder of %s: the replay did not repeat flow %llu (%s); "
                    "left out\n", scn_variant_name(s, variant), (unsigned long long)e->flow,
                    m_class_name(e->cls));
            continue;
        }
        window_t win[DRAW_LADDER_FLOWS];
        size_t nwin = 0;
        for (size_t k = 0; k < e->n_chain; k++)
            win[nwin++] = (window_t){e->chain[k], e->t_start, e->t_end};
        rows_t sec = {0};
        for (size_t k = 0; k < e->notes.n; k++) {
            sim_time_t nt = e->notes.v[k].t;
            const char *where = e->notes.v[k].where, *text = e->notes.v[k].text;
            uint64_t nf = e->notes.v[k].flow;
            if (nf && nwin < DRAW_LADDER_FLOWS) {
                bool have = false;
                for (size_t w = 0; w < nwin; w++) {
                    if (win[w].flow != nf) continue;
                    have = true;
                    if (nt > win[w].to) win[w].to = nt;
                }
                if (!have) win[nwin++] = (window_t){nf, nt > LD_NOTE_WINDOW ? nt - LD_NOTE_WINDOW : 0, nt};
            }
            if (strncmp(text, "dropped ", 8) == 0 || strncmp(text, "client sees", 11) == 0) continue;
            note_row(&L, g, &sec, nt, where, text, k);
        }
        /* a note flow's window ends at its last note; the answer then in flight (a
         * probe's 404 reaching the prober) belongs to it too */
        for (size_t w = e->n_chain; w < nwin; w++) {
            uint64_t id = 0;
            for (size_t k = 0; k < p.recs.n; k++) {
                const lrec_t *rc = &p.recs.v[k];
                if (rc->flow != win[w].flow) continue;
                if (!id && rc->t > win[w].to && rc->t <= win[w].to + SIM_S && rc->msg &&
                    !rc->is_req)
                    id = rc->id;
                if (id && rc->id == id && rc->t > win[w].to) win[w].to = rc->t;
            }
        }
        packet_rows(&L, g, &p, win, nwin, &sec);
        char head[200], t1[32];
        if (e->cls == M_2XX)
            snprintf(head, sizeof head, "a successful request: %s flow %llu, GET %s \u2192 %d in %s",
                     src, (unsigned long long)e->flow, e->path, e->status,
                     dr_time_str(e->t_end - e->t_start, t1, sizeof t1));
        else if (e->status)
            snprintf(head, sizeof head, "%s example: %s flow %llu, GET %s \u2192 %d after %s",
                     m_class_name(e->cls), src, (unsigned long long)e->flow, e->path, e->status,
                     dr_time_str(e->t_end - e->t_start, t1, sizeof t1));
        else
            snprintf(head, sizeof head, "%s example: %s flow %llu, GET %s, no response after %s",
                     m_class_name(e->cls), src, (unsigned long long)e->flow, e->path,
                     dr_time_str(e->t_end - e->t_start, t1, sizeof t1));
        section_add(&L, head, &sec);
        lb_vec_free(&sec);
        drawn++;
    }
    if (p.full)
        fprintf(stderr, "sim: ladder of %s: more than %d packet records; the rest left out\n",
                scn_variant_name(s, variant), LD_MAX_RECS);
    int rc = 0;
    if (drawn && !scn_stop_requested()) {
        lanes_sort(&L);
        char title[300], name[300];
        snprintf(title, sizeof title, "%s: %s, packet ladders", scn_name(s), scn_variant_name(s, variant));
        size_t len;
        char *svg = ladder_svg(&L, title, &len);
        snprintf(name, sizeof name, "%s.svg", stem);
        rc = dr_write_file(dir, name, svg, len, err, errlen);
        free(svg);
        char *mmd = ladder_mermaid(&L, title, &len);
        snprintf(name, sizeof name, "%s.mmd", stem);
        if (!rc) rc = dr_write_file(dir, name, mmd, len, err, errlen);
        free(mmd);
    }
    lb_vec_free(&L.lanes);
    lb_vec_free(&L.rows);
    scn_run_free(rr);
    for (size_t i = 0; i < p.strs.n; i++) lb_free(p.strs.v[i]);
    lb_vec_free(&p.strs);
    lb_vec_free(&p.recs);
    return rc;
}
