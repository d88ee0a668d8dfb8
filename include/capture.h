/* capture.h -- trace.pcap and the hop recorder. A capture attaches a sink to a run and
 * writes the packets that reach its nodes as a pcap file (libpcap's writer, raw IPv4,
 * nanosecond timestamps = simulated time since 1970-01-01 00:00:00, so the file is
 * deterministic) with synthesised IPv4/TCP/UDP/ICMP headers and HTTP text; and it records
 * the hops of the first flows of the run, to break one successful request's latency down
 * hop by hop (the plot of that name, include/plots.h).
 *
 * What the file holds -- one copy of each packet per form it takes on the wire:
 *   - a packet is written at the first node it ARRIVES at (captured before the node's
 *     PREROUTING: the addresses it had on the wire into that node, TTL as received), and
 *     again at each later node where it arrives with other addresses or ports (after a
 *     DNAT, an SNAT/MASQUERADE, a conntrack reversal); a packet a node generates itself
 *     first appears at the next node it reaches, not at its sender;
 *   - plus each packet lost on its way (link loss, a full queue, a fabric or a cloud L4
 *     load balancer dropping it: "lb-no-healthy-backend", say) in a form not written yet,
 *     at the time of the loss -- so a SYN that never arrives anywhere is in the file, and
 *     so are its retransmissions.
 *   Unchanged copies at every router are left out by default because Wireshark (4.0 at
 *   least; conversations are keyed by addresses and ports only) takes them for
 *   retransmissions, duplicate ACKs and out-of-order segments. `every_node` writes them
 *   too, like tcpdump on every node merged; `nodes` restricts the file to some nodes.
 *   The file does not say at which node a copy was taken (raw IPv4 has no room for it);
 *   the TTL and the addresses tell the hops apart.
 *
 * Payload: a TCP segment carrying the end of an HTTP message (pkt->msg) carries that
 * message's text: start line, Host, the message's headers, Content-Length, blank line,
 * body text padded with zero bytes to body_size -- the bytes http_msg_update counts, so
 * lengths match. The earlier segments of a longer message get their slice of the text
 * too: packets wait in a queue (at most 1 s of simulated time, 4096 packets, 4 MB) until
 * the message's last segment shows up; bytes still unknown then, and bytes of messages
 * that are not HTTP, are zeros. Wireshark decodes HTTP on port 80 by itself; other ports
 * (a nodePort probe on 30575) need `-d tcp.port==30575,http`.
 * TCP options fill the bytes the simulator counts (pkt_wire_bytes): on a SYN MSS,
 * SACK-permitted, timestamps, window scale (Linux's order), on other segments NOP NOP
 * timestamps; TSval is the simulated time in ms, TSecr is 0 (timestamps are not
 * modelled). IP ID = low 16 bits of the packet id, DF on TCP. Checksums are correct.
 *
 * Size guard: after max_packets packets or max_bytes bytes the file stops growing (the
 * rest is counted, not written; rep_capture_stats says so and rep_capture_close prints a
 * note on stderr), so a long bench run does not write gigabytes.
 *
 * The file is written to a temporary name beside pcap_path and renamed into place by
 * rep_capture_close, so an interrupted program never leaves a partial trace.pcap.
 *
 * Use, per variant:  scn_run_new -> rep_capture_new(r, path, ...) -> scn_run_execute ->
 *   rep_variant_collect(v, r, ...) -> rep_capture_collect(c, r, v) (before scn_run_free)
 *   -> rep_capture_close -> rep_capture_free (before scn_run_free: it detaches the
 *   capture's sink and hook from the run, so nothing reaches the capture once it is
 *   freed -- not even the drops of the run's own teardown). */
#ifndef CAPTURE_H
#define CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include "report.h"

/* Size guard defaults: enough for minutes of a few hundred requests per second through
 * a four-node chain; bench runs write the first part only. */
#define REP_CAPTURE_MAX_PACKETS 200000
#define REP_CAPTURE_MAX_BYTES (100ull * 1000 * 1000)
/* Hop recorder bounds: the first this many flows of the run (flow ids as first seen in
 * a packet), at most this many packet records (about 48 bytes each). */
#define REP_CAPTURE_HOP_FLOWS 256
#define REP_CAPTURE_HOP_RECORDS 50000
/* Link-layer snapshot length of the file. */
#define REP_CAPTURE_SNAPLEN 65535

typedef struct rep_capture rep_capture_t;

typedef struct rep_capture_opts {
    uint64_t only_flow;     /* write only this flow's packets (--trace-flow); 0: all */
    const char *nodes;      /* write only at nodes matching one of these comma-separated
                             * globs ("appgw-*,aks-user-0"); packets lost between nodes
                             * count as at node "network". NULL or "": every node */
    bool every_node;        /* write a packet at every node it arrives at, not only where
                             * its addresses or ports changed (NAT) */
    uint64_t max_packets;   /* 0: REP_CAPTURE_MAX_PACKETS */
    uint64_t max_bytes;     /* bytes of the file; 0: REP_CAPTURE_MAX_BYTES */
} rep_capture_opts_t;

/* Attaches a capture to run r (after scn_run_new, before scn_run_execute) writing to
 * pcap_path, every packet or only flow only_flow's (0: all). pcap_path NULL: no file, the
 * hop recorder only (e.g. --no-pcap with plots). Returns the capture, or NULL with a
 * message in err: the file cannot be created, no sink slot is left (SCN_MAX_SINKS).
 * Without a free metrics hook slot (METRICS_MAX_HOOKS) the hop recorder stays off
 * (rep_capture_hops finds nothing) and the file is written all the same. */
rep_capture_t *rep_capture_new(scn_run_t *r, const char *pcap_path, uint64_t only_flow,
                               char *err, size_t errlen);
/* The same with options (o NULL: defaults). Bad options (an empty glob in `nodes`) are
 * an error, not a crash. */
rep_capture_t *rep_capture_open(scn_run_t *r, const char *pcap_path,
                                const rep_capture_opts_t *o, char *err, size_t errlen);

typedef struct rep_capture_stats {
    uint64_t packets;       /* packets written */
    uint64_t bytes;         /* bytes of the file so far (24-byte header included) */
    uint64_t lost_written;  /* of packets: packets lost between nodes */
    uint64_t over_limit;    /* packets not written because of the size guard */
    bool limited;           /* the size guard stopped the file */
    sim_time_t limit_t;     /* when it did (valid when limited) */
    uint64_t hop_flows;     /* flows the hop recorder follows */
    uint64_t hop_records;   /* packet records it holds */
} rep_capture_stats_t;
void rep_capture_stats(const rep_capture_t *c, rep_capture_stats_t *out);

/* The hop-by-hop path of the first request among the recorded flows that got a 2xx:
 * its client flow, then the upstream flows proxies used for it (explain_flow_up, taken
 * when the request completed), matched to the request by its req_id. out[0] is the client
 * node when the request started; "<client> (connected)" follows when it waited for a
 * handshake; then each node in the order the request's first data byte reached it, then
 * each node the response's first data byte reached, ending at the client. Times are
 * absolute simulated times. title gets "GET /app1 (flow 12): 1.234 ms" (the client's
 * latency). *n = 0 and title "" when no recorded request succeeded. Call after the run
 * executed, before scn_run_free. Returns 0, or LB_EINVAL for NULL arguments. */
int rep_capture_hops(rep_capture_t *c, scn_run_t *r, rep_hop_t *out, size_t max, size_t *n,
                     char *title, size_t tlen);
/* Fills v->hops (lb_malloc'd, freed by rep_variant_free), v->n_hops and v->hops_title
 * from rep_capture_hops. Call after rep_variant_collect, which clears v. Returns 0 or
 * LB_EINVAL. */
int rep_capture_collect(rep_capture_t *c, scn_run_t *r, rep_variant_t *v);

/* Flushes and closes the file and renames it into place; prints a note on stderr when
 * the size guard stopped it. Idempotent; later packets are ignored. Returns 0, or LB_EIO
 * with a message in err (the temporary file is removed then). */
int rep_capture_close(rep_capture_t *c, char *err, size_t errlen);
/* Detaches the capture from its run, closes (as rep_capture_close, errors on stderr) and
 * frees. Call it before scn_run_free. NULL-safe. */
void rep_capture_free(rep_capture_t *c);

#endif
