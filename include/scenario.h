/* scenario.h -- scenarios: YAML (libyaml) into a positioned tree, validation against the
 * element registry with file:line:col errors, named variants (key overrides), expectations,
 * and the builder that turns one variant into a live simulation through the same C API a
 * unit test would call. */
#ifndef SCENARIO_H
#define SCENARIO_H

#include <stdio.h>
#include "lb.h"
#include "engine.h"
#include "net.h"
#include "metrics.h"
#include "element.h"
#include "k8s.h"

typedef struct scn scn_t;

/* ---- loading -------------------------------------------------------------------------- */
/* A diagnostic: "file:line:col: message". Loading stops at the first error. */
typedef struct scn_diag {
    char file[256];
    int line, col;
    char msg[512];
} scn_diag_t;
/* Prints "file:line:col: error: msg" (or "file: error: msg" without a position). */
void scn_diag_print(const scn_diag_t *d, FILE *out);
/* Fills *d (may be NULL) with pos and the formatted message and returns rc: for other
 * loaders of positioned YAML (bindings files) that report like the scenario loader. */
int scn_diag_set(scn_diag_t *d, elem_pos_t pos, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Loads and validates a scenario file (every variant in full; registers the built-in
 * element types first). Returns 0 and *out, or LB_EPARSE/LB_EINVAL/LB_EIO with *diag
 * filled and nothing allocated. Warnings go to `warn` (may be NULL): see
 * scn_warnings_flush. */
int scn_load(const char *path, scn_t **out, scn_diag_t *diag, FILE *warn);
int scn_load_string(const char *text, const char *fname, scn_t **out, scn_diag_t *diag,
                    FILE *warn);
/* The same from len bytes that may contain anything (NUL bytes are reported with their
 * line:col). A stop request (scn_request_stop) makes loading return LB_EINTR. */
int scn_load_buffer(const char *text, size_t len, const char *fname, scn_t **out,
                    scn_diag_t *diag, FILE *warn);
void scn_free(scn_t *s);
/* From now on, scenarios are loaded without their `expect` section (not even checked):
 * for runs shortened with --set duration=..., whose windows would not fit (--no-expect). */
void scn_ignore_expectations(bool ignore);

/* Applies a command-line override KEY=VALUE (dotted path into the tree, e.g.
 * "traffic.browse.rate=100/s") to the base and every variant (after the variant's own
 * `set:`). VALUE is read as a YAML scalar or flow node. Errors point at
 * "<command line>:1:COL" (COL counts in key_eq_value) and leave s unchanged.
 * Runs made earlier keep the configuration they were built with. */
int scn_override(scn_t *s, const char *key_eq_value, scn_diag_t *diag);

/* ---- the positioned tree (P_ANY values, manifests) -----------------------------------
 * Read-only view of YAML as loaded: every node knows its file, line and column. */
typedef struct scn_node scn_node_t;
typedef enum { SCN_NULL, SCN_SCALAR, SCN_MAP, SCN_SEQ } scn_node_kind_t;
scn_node_kind_t scn_node_kind(const scn_node_t *n);
elem_pos_t scn_node_pos(const scn_node_t *n);
const char *scn_node_str(const scn_node_t *n);       /* scalar text; "" for null, NULL else */
size_t scn_node_len(const scn_node_t *n);            /* map pairs / list items; 0 else */
const char *scn_node_key(const scn_node_t *n, size_t i);         /* map key i */
/* where map key i is written (for "unknown key" errors); the node's own position if none */
elem_pos_t scn_node_key_pos(const scn_node_t *n, size_t i);
const scn_node_t *scn_node_at(const scn_node_t *n, size_t i);    /* map value / item i */
const scn_node_t *scn_node_get(const scn_node_t *n, const char *key);   /* NULL if none */
/* Loads every document of a YAML stream (manifests, "---" separated): 0 and *out, or
 * LB_EIO/LB_EPARSE with *diag. Nodes and the file name in their positions belong to the
 * set and are freed with scn_docs_free. */
/* Reads a whole file, NUL-terminated (caller lb_frees); NULL with *diag (LB_EIO). */
char *scn_read_file(const char *path, size_t *len, scn_diag_t *diag);
typedef struct scn_docs scn_docs_t;
int scn_docs_load(const char *path, scn_docs_t **out, scn_diag_t *diag);
int scn_docs_load_string(const char *text, const char *fname, scn_docs_t **out,
                         scn_diag_t *diag);
/* The same for len bytes of text, which may hold a NUL byte (an error at its position). */
int scn_docs_load_buffer(const char *text, size_t len, const char *fname, scn_docs_t **out,
                         scn_diag_t *diag);
size_t scn_docs_count(const scn_docs_t *d);
const scn_node_t *scn_docs_at(const scn_docs_t *d, size_t i);
void scn_docs_free(scn_docs_t *d);

/* The files the scenario was read from, for its content hash (include/sweep.h): source 0
 * is the scenario file (or the name given to scn_load_string), then every manifest file
 * it includes (`file:` items, glob matches, in variants too), each once, in the order
 * first read. path is as opened; the text is exactly what was parsed. Valid until
 * scn_free. scn_sources_changed: a file was read twice (an override re-reads the
 * manifests) and its text had changed in between. */
size_t scn_source_count(const scn_t *s);
const char *scn_source_path(const scn_t *s, size_t i);
const char *scn_source_text(const scn_t *s, size_t i, size_t *len);
bool scn_sources_changed(const scn_t *s);

const char *scn_name(const scn_t *s);
const char *scn_description(const scn_t *s);
const char *scn_file(const scn_t *s);
uint64_t scn_seed(const scn_t *s);
sim_time_t scn_duration(const scn_t *s);
/* Variants: a scenario without a variants section has one, "default". */
size_t scn_variant_count(const scn_t *s);
const char *scn_variant_name(const scn_t *s, size_t i);
const char *scn_variant_description(const scn_t *s, size_t i);    /* "" if none */
int scn_variant_find(const scn_t *s, const char *name);   /* -1 if none */
/* The Kubernetes objects of variant v (its `kubernetes` section with the variant's
 * kubernetes-remove/-add/-set applied; include/manifests.h); NULL without a kubernetes
 * section. Owned by the scenario; valid until scn_free or the next scn_override. */
const k8s_objects_t *scn_variant_k8s(const scn_t *s, size_t v);
/* Prints the load warnings not printed yet to the warn stream given to scn_load: each
 * manifest field the model does not use once per (kind, field) over all variants, then
 * one summary line of harmless ones. scn_run_new calls it (so the first run shows them);
 * call it after loading and overrides to show them earlier. */
void scn_warnings_flush(scn_t *s);

/* ---- running ---------------------------------------------------------------------------- */
typedef struct scn_run scn_run_t;
/* Builds variant `v` with `seed` into a fresh simulation. 0 or an error with *diag
 * (LB_EINTR after a stop request). */
int scn_run_new(scn_t *s, size_t v, uint64_t seed, scn_run_t **out, scn_diag_t *diag);
void scn_run_free(scn_run_t *r);
sim_t *scn_run_sim(scn_run_t *r);
net_t *scn_run_net(scn_run_t *r);
metrics_t *scn_run_metrics(scn_run_t *r);
struct explain *scn_run_explain(scn_run_t *r);
/* Prints every trace line of flow `flow` (0: none) to out as "  12.000123456s  r1  text". */
void scn_run_set_trace(scn_run_t *r, uint64_t flow, FILE *out);
/* A node of the run by name (e.g. for --dump-iptables); NULL if none. */
net_node_t *scn_run_node(scn_run_t *r, const char *name);
/* The i-th object of kind `kind` the elements shared while building (build_put: "cluster",
 * "azure-lb", "fabric"; "addrs" for published frontend addresses, see scn_run_addrs), in
 * the order first shared; NULL past the end. *name (may be NULL) gets its name. */
void *scn_run_object(scn_run_t *r, const char *kind, size_t i, const char **name);
/* The frontend addresses element `name` published (build_put_addrs): count, up to max
 * into out; 0 when it published none. */
size_t scn_run_addrs(scn_run_t *r, const char *name, uint32_t *out, size_t max);
/* The run's elements in build order (nodes, cloud, apps, traffic), each with its type and
 * the configuration it was built from (defaults applied): what --describe reports. A
 * group element (`count: N`) is one entry. Valid while the run lives. */
size_t scn_run_element_count(const scn_run_t *r);
const char *scn_run_element_name(const scn_run_t *r, size_t i);
const elem_type_t *scn_run_element_type(const scn_run_t *r, size_t i);
const elem_cfg_t *scn_run_element_cfg(const scn_run_t *r, size_t i);
/* The variant this run was built from. */
const char *scn_run_variant(const scn_run_t *r);
sim_time_t scn_run_duration(const scn_run_t *r);
/* A results writer attached to a run (SQLite, pcap, plots): it sees every request, probe
 * and health transition (through the metrics hooks), every drop, and -- only when
 * `packet` is set, since it costs a call per packet per hop -- every packet arriving at a
 * node. Any callback may be NULL. Add sinks after scn_run_new, before scn_run_execute.
 *
 * Lifetime: a sink's owner detaches it (scn_run_remove_sink) before freeing its data, and
 * does so before scn_run_free. scn_run_free detaches whatever is still attached before it
 * frees a single element, so nothing its teardown does (an HTTP pool aborting its
 * connections, the RSTs that sends, a link dropping them) reaches a results writer. */
typedef struct scn_sink {
    m_hooks_t m;
    void (*drop)(void *data, sim_time_t t, const char *where, const pkt_t *p,
                 const char *reason, const char *detail);
    void (*packet)(void *data, sim_time_t t, const char *where, const pkt_t *p);
    void *data;
} scn_sink_t;
#define SCN_MAX_SINKS 6
/* Returns 0, or LB_ENOMEM when SCN_MAX_SINKS are attached already. */
int scn_run_add_sink(scn_run_t *r, const scn_sink_t *sink);
/* Detaches every sink, and every metrics hook, whose data is `data`: none of their
 * callbacks is called again. Returns how many sinks it removed (0: none had that data). */
size_t scn_run_remove_sink(scn_run_t *r, const void *data);
/* Stops the run at the next event (a sink's decision). */
void scn_run_stop(scn_run_t *r);
/* Async-signal-safe: every run stops at its next check (within RUN_PROGRESS_EVENTS
 * events) and reports itself incomplete; later runs do not start. Loading (scn_load*,
 * scn_override) and building (scn_run_new) stop too, within milliseconds, and return
 * LB_EINTR with a diagnostic "interrupted while ...". The request stays until the process
 * ends. */
void scn_request_stop(void);
bool scn_stop_requested(void);
/* Whether scn_run_execute reached the scenario's duration (false: stopped early). */
bool scn_run_complete(const scn_run_t *r);
/* How far the run got: the simulated time reached, or for a run another executor played
 * (real mode), how long it played. */
sim_time_t scn_run_end_time(const scn_run_t *r);

/* ---- another executor (real mode, include/real.h) ---------------------------------------
 * A run can be built by scn_run_new and then played by something else than
 * scn_run_execute: its traffic and probes sent over real sockets, recorded into the
 * run's metrics. The writers record how a run was executed. */
/* Marks r as played elsewhere for `t_end` (complete: it reached the duration), as
 * `mode` ("real") with the bindings used (their text, copied; may be NULL). */
void scn_run_set_played(scn_run_t *r, const char *mode, const char *bindings,
                        sim_time_t t_end, bool complete);
/* "sim" for a simulated run, else the mode given to scn_run_set_played. */
const char *scn_run_mode(const scn_run_t *r);
/* The bindings (text) of a played run; NULL for a simulated one. */
const char *scn_run_bindings(const scn_run_t *r);
/* The scenario the run was built from. */
scn_t *scn_run_scenario(const scn_run_t *r);

/* Runs to the scenario's duration; progress(fraction, data) about every wall-second. */
int scn_run_execute(scn_run_t *r, void (*progress)(double frac, void *data), void *data);

/* ---- expectations --------------------------------------------------------------------
 * Form (docs/SCENARIO-FORMAT.md):  METRIC OP NUMBER [after T] [before T]
 *                                  METRIC OP NUMBER between A and B
 *   METRIC: SOURCE.STAT with SOURCE a traffic name or `client` (all traffic), STAT one of
 *     requests, completed, status_2xx_ratio (also 3xx/4xx/5xx), status_NNN_ratio,
 *     failed_ratio, connect_timeout_ratio, reset_ratio, refused_ratio,
 *     response_timeout_ratio, closed_ratio, latency_p50 / p90 / p99 / p999 / mean
 *     (seconds, over completed requests), or counter.NAME (e.g. counter.drops.ct-invalid)
 *   OP: < <= > >= == !=     NUMBER: plain, or with a unit (250ms -> 0.25, 1% -> 0.01)
 * Parsed and checked (sources, window within the duration) when the scenario loads.
 * Ratios are over all requests of the source started in the window; with none the value
 * is NAN and the expectation fails. */
typedef struct scn_verdict {
    const char *variant;
    const char *text;           /* the expectation as written */
    elem_pos_t pos;
    bool pass;
    double value;               /* measured; NAN when undefined (no requests in window) */
    char detail[160];           /* "0.9932 (1986/2000 requests in [60s, 180s))" */
} scn_verdict_t;
/* Evaluates the variant's expectations against a finished run, in the order written
 * ("*" lists and the variant's own list as they appear in `expect`). Returns the number of
 * verdicts written into *out (array owned by the caller: lb_free); their strings belong to
 * the run. */
size_t scn_run_check(scn_run_t *r, scn_verdict_t **out);

/* The builder's side for element build functions (build_ctx_t, build_error, build_get...)
 * is declared in include/element.h: models include that, never this header. */

#endif
