/* main.c -- the command line: load scenarios, validate every selected variant before
 * anything is written, run them, print the variants-by-outcome table and the verdicts,
 * write results/<scenario>/<run>/summary.json. Exit codes: 0 ok, 1 an expectation failed,
 * 2 bad input (file:line:col on stderr), 3 internal error. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sys/wait.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "capture.h"
#include "db.h"
#include "draw.h"
#include "netfilter.h"
#include "plots.h"
#include "realchain.h"
#include "report.h"
#include "scenario.h"

#define SIM_VERSION "0.1.0"
enum { EXIT_OK = 0, EXIT_EXPECT = 1, EXIT_INPUT = 2, EXIT_INTERNAL = 3, EXIT_INTERRUPTED = 130 };

typedef LB_VEC(size_t) idxvec_t;

typedef struct opts {
    bool has_seed, quiet, check, list_types;
    uint64_t seed;
    LB_VEC(const char *) variants;
    LB_VEC(const char *) sets;
    const char *out;
    uint64_t trace_flow;
    const char *dump_node;
    int seeds;                      /* --seeds N: each variant with seeds base .. base+N-1 */
    int jobs;                       /* --jobs N: parallel worker processes */
    bool no_pcap, no_plots, no_db, no_pictures;
    bool draw;                      /* --draw: the topology only, nothing simulated */
    bool explain;                   /* chains also with --check / --quiet */
    /* the real chain (include/realchain.h): describe, render, flow fates; no-expect */
    bool describe, no_expect;
    const char *render_dir, *flow_fate;
} opts_t;

static void usage(FILE *f)
{
    fprintf(f,
"usage: sim [options] SCENARIO.yaml...\n"
"\n"
"Simulates a scenario packet by packet, once per variant, prints each variant's\n"
"outcomes, the causal chain of each failure and each expectation's verdict, and\n"
"writes results/<scenario>/<run>/: summary.json, results.db, pcaps, plots, report.html.\n"
"\n"
"options:\n"
"  -s, --seed N            override the scenario's seed\n"
"  -v, --variant NAME      run only this variant (repeatable)\n"
"  -o, --out DIR           write results into DIR instead of results/<scenario>/<run>\n"
"      --set KEY=VALUE     override a scenario key, e.g. traffic.browse.rate=100/s\n"
"      --seeds N           run each variant with N seeds (base .. base+N-1) and report\n"
"                          means with 95%% confidence intervals\n"
"      --jobs N            run variants and seeds in N parallel processes\n"
"      --no-pcap           do not write the trace-<variant>.pcap files\n"
"      --no-plots          do not write plots (report.html without them)\n"
"      --no-db             do not write results.db (benchmarks)\n"
"      --no-pictures       do not draw the topology and the packet ladders\n"
"  -c, --check             print only the verdicts; exit 1 if any expectation fails;\n"
"                          writes results only with --out\n"
"  -q, --quiet             no table, no progress line\n"
"      --explain           print the causal chain of each failure class also with\n"
"                          --check or --quiet (they print by default otherwise)\n"
"      --trace-flow ID     print every hop's decision for flow ID (route, netfilter\n"
"                          rules, conntrack, NAT, drops); flows are numbered 1, 2, ...\n"
"      --dump-iptables NODE  print NODE's netfilter tables (iptables-save form) after\n"
"                          the scenario is built, then exit\n"
"      --draw              write the topology of the built variant(s) -- topology.dot,\n"
"                          .mmd, .svg, .png -- without simulating (design reviews)\n"
"      --describe          print the built variant as JSON (nodes, addresses, routes,\n"
"                          cluster, load balancers; docs/DESCRIBE.md), then exit\n"
"      --render DIR        write the real chain's stand-in configurations (haproxy,\n"
"                          nginx) rendered from the models into DIR, then exit\n"
"      --flow-fate FILE    for each flow \"NODE IFACE SRC:SPORT DST:DPORT\" in FILE ('-':\n"
"                          stdin) print what NODE's netfilter does to its SYN as JSON\n"
"      --no-expect         ignore the scenario's expectations (runs shortened with\n"
"                          --set duration=...)\n"
"      --list-types        list element types and their parameters\n"
"  -h, --help              this help\n"
"  -V, --version           version\n"
"\n"
"exit status: 0 ok, 1 an expectation failed, 2 bad input, 3 internal error,\n"
"             130 interrupted (SIGINT/SIGTERM; results so far are written, marked incomplete)\n");
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    enum { O_TRACE = 256, O_DUMP, O_SET, O_LIST, O_SEEDS, O_JOBS, O_NOPCAP, O_NOPLOTS, O_NODB, O_EXPLAIN,
           O_DESCRIBE, O_RENDER, O_FATE, O_NOEXPECT, O_NOPICTURES, O_DRAW };
    static const struct option lo[] = {
        {"seed", required_argument, 0, 's'}, {"variant", required_argument, 0, 'v'},
        {"out", required_argument, 0, 'o'},  {"check", no_argument, 0, 'c'},
        {"quiet", no_argument, 0, 'q'},      {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},    {"trace-flow", required_argument, 0, O_TRACE},
        {"dump-iptables", required_argument, 0, O_DUMP},
        {"set", required_argument, 0, O_SET}, {"list-types", no_argument, 0, O_LIST},
        {"seeds", required_argument, 0, O_SEEDS}, {"jobs", required_argument, 0, O_JOBS},
        {"no-pcap", no_argument, 0, O_NOPCAP}, {"no-plots", no_argument, 0, O_NOPLOTS},
        {"no-db", no_argument, 0, O_NODB}, {"explain", no_argument, 0, O_EXPLAIN},
        {"describe", no_argument, 0, O_DESCRIBE}, {"render", required_argument, 0, O_RENDER},
        {"flow-fate", required_argument, 0, O_FATE}, {"no-expect", no_argument, 0, O_NOEXPECT},
        {"no-pictures", no_argument, 0, O_NOPICTURES}, {"draw", no_argument, 0, O_DRAW},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "s:v:o:cqhV", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's':
            o->seed = strtoull(optarg, &end, 10);
            if (!*optarg || *end) {
                fprintf(stderr, "sim: --seed expects a non-negative integer, got '%s'\n", optarg);
                return EXIT_INPUT;
            }
            o->has_seed = true;
            break;
        case 'v': lb_vec_push(&o->variants, optarg); break;
        case 'o': o->out = optarg; break;
        case 'c': o->check = true; break;
        case 'q': o->quiet = true; break;
        case 'h': usage(stdout); exit(EXIT_OK);
        case 'V': printf("sim (lbchain) " SIM_VERSION "\n"); exit(EXIT_OK);
        case O_TRACE:
            o->trace_flow = strtoull(optarg, &end, 10);
            if (!*optarg || *end || !o->trace_flow) {
                fprintf(stderr, "sim: --trace-flow expects a flow id >= 1, got '%s'\n", optarg);
                return EXIT_INPUT;
            }
            break;
        case O_DUMP: o->dump_node = optarg; break;
        case O_SET:
            if (!strchr(optarg, '=')) {
                fprintf(stderr, "sim: --set expects KEY=VALUE, got '%s'\n", optarg);
                return EXIT_INPUT;
            }
            lb_vec_push(&o->sets, optarg);
            break;
        case O_LIST: o->list_types = true; break;
        case O_SEEDS:
        case O_JOBS: {
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 10000) {
                fprintf(stderr, "sim: --%s expects an integer from 1 to 10000, got '%s'\n",
                        c == O_SEEDS ? "seeds" : "jobs", optarg);
                return EXIT_INPUT;
            }
            if (c == O_SEEDS) o->seeds = (int)v;
            else o->jobs = (int)v;
            break;
        }
        case O_NOPCAP: o->no_pcap = true; break;
        case O_NOPLOTS: o->no_plots = true; break;
        case O_NODB: o->no_db = true; break;
        case O_EXPLAIN: o->explain = true; break;
        case O_DESCRIBE: o->describe = true; break;
        case O_RENDER: o->render_dir = optarg; break;
        case O_FATE: o->flow_fate = optarg; break;
        case O_NOEXPECT: o->no_expect = true; break;
        case O_NOPICTURES: o->no_pictures = true; break;
        case O_DRAW: o->draw = true; break;
        default: usage(stderr); return EXIT_INPUT;
        }
    }
    return EXIT_OK;
}

static void list_params(const elem_param_t *params, int indent);

static void list_types(void)
{
    static const char *const sections[] = {"nodes", "apps", "traffic", "cloud"};
    for (size_t i = 0; i < elem_type_count(); i++) {
        const elem_type_t *t = elem_type_at(i);
        printf("%s  (in %s:)  %s\n", t->name, sections[t->section], t->doc ? t->doc : "");
        list_params(t->params, 4);
    }
}

/* One line per parameter: name, kind, default, doc; enum choices; nested fields. */
static void list_params(const elem_param_t *params, int indent)
{
    static const char *const kinds[] = {
        [P_STR] = "string", [P_INT] = "integer", [P_FLOAT] = "number", [P_BOOL] = "bool",
        [P_DURATION] = "duration", [P_SIZE] = "size", [P_BANDWIDTH] = "bandwidth",
        [P_RATE] = "rate", [P_RATIO] = "ratio", [P_DIST] = "distribution",
        [P_ADDR] = "address", [P_CIDR] = "cidr", [P_ENUM] = "enum", [P_STRLIST] = "list",
        [P_OBJLIST] = "objects", [P_OBJ] = "object", [P_ANY] = "any"};
    for (const elem_param_t *p = params; p && p->name; p++) {
        const char *def = !p->def ? "required" : *p->def ? p->def : "-";
        printf("%*s%-*s %-12s %-10s %s\n", indent, "", 24 - indent, p->name, kinds[p->kind],
               def, p->doc ? p->doc : "");
        if (p->kind == P_ENUM && p->choices) {
            printf("%*s%-*s one of:", indent, "", 24 - indent, "");
            for (const char *const *c = p->choices; *c; c++) printf(" %s", *c);
            printf("\n");
        }
        if ((p->kind == P_OBJ || p->kind == P_OBJLIST) && p->sub) list_params(p->sub, indent + 4);
    }
}

/* ---- progress on a terminal ---- */
typedef struct progress { const char *label; struct timespec t0; bool shown; } progress_t;

static void progress_cb(double frac, void *data)
{
    progress_t *p = data;
    fprintf(stderr, "\r  %-40s %5.1f%%", p->label, 100.0 * frac);
    p->shown = true;
}

static void trace_print_header(uint64_t flow)
{
    printf("trace of flow %" PRIu64 ":\n", flow);
}

/* Builds every selected variant once, so that bad input is reported before anything is
 * written. Fills idx with the variant indices to run. */
static int validate(scn_t *s, const opts_t *o, idxvec_t *idx)
{
    scn_diag_t d;
    for (size_t i = 0; i < o->sets.n; i++)
        if (scn_override(s, o->sets.v[i], &d)) {
            scn_diag_print(&d, stderr);
            return EXIT_INPUT;
        }
    if (o->variants.n) {
        for (size_t i = 0; i < o->variants.n; i++) {
            int v = scn_variant_find(s, o->variants.v[i]);
            if (v < 0) {
                fprintf(stderr, "%s: error: no variant '%s'; variants are:", scn_file(s),
                        o->variants.v[i]);
                for (size_t k = 0; k < scn_variant_count(s); k++)
                    fprintf(stderr, " %s", scn_variant_name(s, k));
                fprintf(stderr, "\n");
                return EXIT_INPUT;
            }
            lb_vec_push(idx, (size_t)v);
        }
    } else {
        for (size_t i = 0; i < scn_variant_count(s); i++) lb_vec_push(idx, i);
    }
    for (size_t i = 0; i < idx->n; i++) {
        scn_run_t *r;
        uint64_t seed = o->has_seed ? o->seed : scn_seed(s);
        if (scn_run_new(s, idx->v[i], seed, &r, &d)) {
            scn_diag_print(&d, stderr);
            return EXIT_INPUT;
        }
        scn_run_free(r);
    }
    return EXIT_OK;
}

static int dump_iptables(scn_t *s, const opts_t *o, size_t v)
{
    scn_run_t *r;
    scn_diag_t d;
    if (scn_run_new(s, v, o->has_seed ? o->seed : scn_seed(s), &r, &d)) {
        scn_diag_print(&d, stderr);
        return EXIT_INPUT;
    }
    sim_run(scn_run_sim(r), 0);                 /* let t=0 set-up (rule syncs) happen */
    net_node_t *n = scn_run_node(r, o->dump_node);
    if (!n) {
        fprintf(stderr, "%s: error: no node '%s' in variant '%s'\n", scn_file(s), o->dump_node,
                scn_variant_name(s, v));
        scn_run_free(r);
        return EXIT_INPUT;
    }
    printf("# node %s, variant %s\n", n->name, scn_variant_name(s, v));
    nf_save(nf_get(n), stdout, false);
    scn_run_free(r);
    return EXIT_OK;
}

/* --describe, --render DIR, --flow-fate FILE: the real chain's view of one variant. */
static int real_chain(scn_t *s, const opts_t *o, size_t v)
{
    uint64_t seed = o->has_seed ? o->seed : scn_seed(s);
    scn_diag_t d;
    char err[512];
    if (o->flow_fate) {
        FILE *in = strcmp(o->flow_fate, "-") == 0 ? stdin : fopen(o->flow_fate, "r");
        if (!in) {
            fprintf(stderr, "sim: %s: %s\n", o->flow_fate, strerror(errno));
            return EXIT_INPUT;
        }
        int rc = realchain_flow_fate(s, v, seed, in, o->flow_fate, stdout, &d);
        if (in != stdin) fclose(in);
        if (rc) scn_diag_print(&d, stderr);
        return rc ? EXIT_INPUT : EXIT_OK;
    }
    scn_run_t *r;
    if (scn_run_new(s, v, seed, &r, &d)) {
        scn_diag_print(&d, stderr);
        return EXIT_INPUT;
    }
    sim_run(scn_run_sim(r), 0);                 /* t = 0 set-up: rule syncs, addresses */
    int rc = o->describe ? realchain_describe(s, r, stdout, err, sizeof err)
                         : realchain_render(r, o->render_dir, stdout, err, sizeof err);
    if (rc) fprintf(stderr, "sim: %s\n", err);
    scn_run_free(r);
    return rc ? EXIT_INTERNAL : EXIT_OK;
}

static void default_out(char *buf, size_t n, const scn_t *s)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    snprintf(buf, n, "results/%s/%s-%d", scn_name(s), stamp, (int)getpid());
}

/* A unit of work: one variant with one seed. */
typedef struct item { size_t variant; uint64_t seed; } item_t;

/* ---- results writers attached to each run (results.db, trace.pcap, plots) ---- */

/* results.db of the scenario being run: opened once, before any worker is forked (the
 * handle holds no connection between calls, so children may use it). */
static rep_db_t *g_db;
static char g_run_group[256];

typedef struct writers {
    rep_db_run_t *db;
    rep_capture_t *cap;             /* trace pcap and the hop recorder */
    draw_rec_t *draw;               /* what the run saw, for the pictures */
    bool plots;
} writers_t;

static void writers_attach(writers_t *w, scn_t *s, scn_run_t *r, const opts_t *o,
                           const item_t *it, const char *dir)
{
    memset(w, 0, sizeof *w);
    (void)o;
    if (!dir) return;
    if (!o->no_plots) rep_plots_attach(r, NULL);
    w->plots = !o->no_plots;
    /* trace-<variant>[-seed<N>].pcap: several variants and seeds share the folder */
    char path[4400], err[512];
    if (o->seeds > 1)
        snprintf(path, sizeof path, "%s/trace-%s-seed%llu.pcap", dir,
                 scn_variant_name(s, it->variant), (unsigned long long)it->seed);
    else
        snprintf(path, sizeof path, "%s/trace-%s.pcap", dir, scn_variant_name(s, it->variant));
    if (!o->no_pcap || !o->no_plots) {     /* the hop recorder feeds the hops plot */
        w->cap = rep_capture_new(r, o->no_pcap ? NULL : path, o->trace_flow, err, sizeof err);
        if (!w->cap) fprintf(stderr, "sim: trace pcap: %s\n", err);
    }
    /* pictures: the first seed of each variant (a sweep's other seeds draw none) */
    if (!o->no_pictures && it->seed == (o->has_seed ? o->seed : scn_seed(s))) {
        w->draw = draw_rec_attach(r, err, sizeof err);
        if (!w->draw) fprintf(stderr, "sim: %s\n", err);
    }
    if (g_db) {
        char err[512];
        w->db = rep_db_run_begin(g_db, s, r, scn_variant_name(s, it->variant), it->seed,
                                 g_run_group, err, sizeof err);
        if (!w->db) fprintf(stderr, "sim: results.db: %s\n", err);
    }
}

/* Finishes the writers of one run; EXIT_OK or EXIT_INTERNAL. */
static int writers_finish(writers_t *w, scn_run_t *r, rep_variant_t *v)
{
    int rc = EXIT_OK;
    if (w->plots) rep_plots_collect(r, v);
    if (w->cap) {
        rep_capture_collect(w->cap, r, v);
        char err[512];
        if (rep_capture_close(w->cap, err, sizeof err)) {
            fprintf(stderr, "sim: trace pcap: %s\n", err);
            rc = EXIT_INTERNAL;
        }
        rep_capture_free(w->cap);
        w->cap = NULL;
    }
    if (w->db) {
        char err[512];
        if (rep_db_run_end(w->db, r, v->verdicts, v->n_verdicts, err, sizeof err)) {
            fprintf(stderr, "sim: results.db: %s\n", err);
            rc = EXIT_INTERNAL;
        }
    }
    return rc;
}

static volatile sig_atomic_t g_interrupted;

static const draw_render_opts_t g_render = {0, &g_interrupted};

/* Renders picture <stem> of dir; an error is a note, not a failure of the run. */
static void picture_render(const char *dir, const char *stem)
{
    char err[512];
    int rc = draw_render_file(dir, stem, &g_render, err, sizeof err);
    if (rc && rc != LB_ESTATE) fprintf(stderr, "sim: %s\n", err);
}

/* Says once what was missing to draw the pictures. */
static void pictures_check(void)
{
    char err[512];
    if (g_interrupted) fprintf(stderr, "sim: interrupted: pictures skipped\n");
    else if (draw_render_check(err, sizeof err)) fprintf(stderr, "sim: %s\n", err);
}

/* Once per scenario, after its runs: plots (gnuplot) and report.html. A missing gnuplot
 * is a note, not an error: everything else is still written. */
static void writers_scenario(scn_t *s, const opts_t *o, const char *dir,
                             const rep_variant_t *v, size_t n)
{
    char err[512];
    if (!o->no_plots && rep_plots_write(dir, s, v, n, err, sizeof err))
        fprintf(stderr, "sim: %s\n", err);
    if (!o->no_pictures) {
        /* topology.*: the design of the first variant run, as built */
        int k = v[0].name ? scn_variant_find(s, v[0].name) : 0;
        scn_diag_t d;
        if (draw_design_write(s, k < 0 ? 0 : (size_t)k, v[0].seed, dir, "topology", &d))
            fprintf(stderr, "sim: topology: %s\n", d.msg);
        else
            picture_render(dir, "topology");
        pictures_check();
    }
    if (rep_html_write(dir, s, v, n, err, sizeof err)) fprintf(stderr, "sim: %s\n", err);
}

/* --draw: the topology of the selected variants as built, nothing simulated: topology.*
 * for the first, and topology-<variant>.* for each when there are several. */
static int draw_only(scn_t *s, const opts_t *o, const size_t *idx, size_t nidx)
{
    char dir[4096];
    if (o->out) snprintf(dir, sizeof dir, "%s/%s", o->out, scn_name(s));
    else default_out(dir, sizeof dir, s);
    if (rep_mkdirs(dir)) {
        fprintf(stderr, "sim: cannot create %s: %s\n", dir, strerror(errno));
        return EXIT_INTERNAL;
    }
    uint64_t seed = o->has_seed ? o->seed : scn_seed(s);
    int rc = EXIT_OK;
    scn_diag_t d;
    for (size_t i = 0; i < nidx && rc == EXIT_OK; i++) {
        char stem[200], vs[160];
        draw_variant_stem(s, idx[i], vs, sizeof vs);
        snprintf(stem, sizeof stem, "topology-%s", vs);
        if ((i == 0 && draw_design_write(s, idx[i], seed, dir, "topology", &d)) ||
            (nidx > 1 && draw_design_write(s, idx[i], seed, dir, stem, &d))) {
            fprintf(stderr, "sim: topology: %s\n", d.msg);
            rc = EXIT_INTERNAL;
        }
        if (rc == EXIT_OK && i == 0) picture_render(dir, "topology");
        if (rc == EXIT_OK && nidx > 1) picture_render(dir, stem);
    }
    if (rc == EXIT_OK) pictures_check();
    if (rc == EXIT_OK && !o->quiet) {
        static const char *const ext[] = {"dot", "mmd", "svg", "png"};
        for (size_t i = 0; i < (nidx > 1 ? nidx + 1 : 1); i++) {
            char stem[200] = "topology", vs[160];
            if (i) {
                draw_variant_stem(s, idx[i - 1], vs, sizeof vs);
                snprintf(stem, sizeof stem, "topology-%s", vs);
            }
            for (size_t k = 0; k < 4; k++) {
                char path[4400];
                snprintf(path, sizeof path, "%s/%s.%s", dir, stem, ext[k]);
                if (access(path, F_OK) == 0) printf("%s\n", path);
            }
        }
    }
    return rc;
}

/* ---- running: work items are (variant, seed) pairs ---- */

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
    scn_request_stop();
}

/* Runs one item in this process into *out. Returns EXIT_OK or EXIT_INTERNAL. */
static int run_item(scn_t *s, const opts_t *o, const item_t *it, const char *dir, bool tty,
                    rep_variant_t *out)
{
    scn_run_t *r;
    scn_diag_t d;
    const char *vname = scn_variant_name(s, it->variant);
    if (scn_run_new(s, it->variant, it->seed, &r, &d)) {    /* validated before: internal */
        scn_diag_print(&d, stderr);
        return EXIT_INTERNAL;
    }
    if (o->trace_flow) {
        trace_print_header(o->trace_flow);
        scn_run_set_trace(r, o->trace_flow, stdout);
    }
    writers_t w;
    writers_attach(&w, s, r, o, it, dir);
    char label[160];
    snprintf(label, sizeof label, "%s/%s seed %llu", scn_name(s), vname,
             (unsigned long long)it->seed);
    progress_t pg = {label, {0, 0}, false};
    scn_run_execute(r, tty ? progress_cb : NULL, &pg);
    if (pg.shown) fprintf(stderr, "\r%*s\r", 60, "");
    scn_verdict_t *vd = NULL;
    size_t nv = scn_run_check(r, &vd);
    rep_variant_collect(out, r, vname, it->seed, vd, nv);
    int rc = writers_finish(&w, r, out);
    char err[512];
    if (w.draw && draw_rec_write(w.draw, s, it->variant, r, out, dir, err, sizeof err))
        fprintf(stderr, "sim: pictures: %s\n", err);
    scn_run_free(r);
    if (w.draw) {                   /* the ladders' replay: after the run is freed */
        int drc = draw_rec_finish(w.draw, s, it->variant, it->seed, dir, &g_render, err,
                                  sizeof err);
        if (drc && drc != LB_ESTATE) fprintf(stderr, "sim: pictures: %s\n", err);
        draw_rec_free(w.draw);
    }
    return rc;
}

/* Runs items[0..n) in `jobs` worker processes; each sends one JSON line per item over its
 * pipe ("index<TAB>json"). Returns EXIT_OK or EXIT_INTERNAL. */
static int run_parallel(scn_t *s, const opts_t *o, const item_t *items, size_t n,
                        const char *dir, rep_variant_t *res, bool *have)
{
    int jobs = o->jobs < (int)n ? o->jobs : (int)n;
    pid_t *pids = lb_calloc((size_t)jobs, sizeof *pids);
    FILE **in = lb_calloc((size_t)jobs, sizeof *in);
    fflush(NULL);
    for (int j = 0; j < jobs; j++) {
        int fd[2];
        if (pipe(fd)) { perror("sim: pipe"); return EXIT_INTERNAL; }
        pid_t pid = fork();
        if (pid < 0) { perror("sim: fork"); return EXIT_INTERNAL; }
        if (pid == 0) {                       /* worker: items j, j+jobs, ... */
            close(fd[0]);
            FILE *w = fdopen(fd[1], "w");
            int rc = EXIT_OK;
            for (size_t i = (size_t)j; i < n && rc == EXIT_OK && !g_interrupted; i += (size_t)jobs) {
                rep_variant_t v;
                rc = run_item(s, o, &items[i], dir, false, &v);
                if (rc == EXIT_OK) {
                    char *text = rep_variant_serialize(&v);
                    fprintf(w, "%zu\t%s\n", i, text);
                    free(text);
                    rep_variant_free(&v);
                }
            }
            fclose(w);
            _exit(rc);
        }
        close(fd[1]);
        pids[j] = pid;
        in[j] = fdopen(fd[0], "r");
    }
    int rc = EXIT_OK;
    char *line = NULL;
    size_t cap = 0;
    for (int j = 0; j < jobs; j++) {
        while (getline(&line, &cap, in[j]) > 0) {
            char *tab = strchr(line, '\t');
            size_t i = strtoull(line, NULL, 10);
            if (!tab || i >= n || have[i] || rep_variant_deserialize(tab + 1, &res[i])) {
                fprintf(stderr, "sim: garbled result from a worker\n");
                rc = EXIT_INTERNAL;
                continue;
            }
            have[i] = true;
        }
        fclose(in[j]);
        int st = 0;
        while (waitpid(pids[j], &st, 0) < 0 && errno == EINTR) {}
        if (!WIFEXITED(st) || (WEXITSTATUS(st) != EXIT_OK && !g_interrupted)) rc = EXIT_INTERNAL;
    }
    free(line);
    lb_free(pids);
    lb_free(in);
    return rc;
}

static int run_scenario(scn_t *s, const opts_t *o, const size_t *idx, size_t nidx,
                        size_t *failed, size_t *total)
{
    bool tty = isatty(STDERR_FILENO) && !o->quiet && !o->check && o->jobs <= 1;
    uint64_t base = o->has_seed ? o->seed : scn_seed(s);
    size_t seeds = o->seeds ? (size_t)o->seeds : 1, n = nidx * seeds;
    item_t *items = lb_calloc(n, sizeof *items);
    for (size_t i = 0; i < nidx; i++)
        for (size_t k = 0; k < seeds; k++) items[i * seeds + k] = (item_t){idx[i], base + k};
    rep_variant_t *res = lb_calloc(n, sizeof *res);
    bool *have = lb_calloc(n, sizeof *have);
    int rc = EXIT_OK;
    char dir[4096] = "";
    bool write = !o->check || o->out;
    if (write) {
        if (o->out) snprintf(dir, sizeof dir, "%s/%s", o->out, scn_name(s));
        else default_out(dir, sizeof dir, s);
        if (rep_mkdirs(dir)) {
            fprintf(stderr, "sim: cannot create %s: %s\n", dir, strerror(errno));
            rc = EXIT_INTERNAL;
        } else if (!o->no_db) {
            char path[4200], err[512];
            snprintf(path, sizeof path, "%s/results.db", dir);
            const char *slash = strrchr(dir, '/');
            snprintf(g_run_group, sizeof g_run_group, "%s", slash ? slash + 1 : dir);
            if (rep_db_open(path, &g_db, err, sizeof err)) {
                fprintf(stderr, "sim: %s: %s\n", path, err);
                rc = EXIT_INTERNAL;
            }
        }
    }
    if (rc == EXIT_OK && o->jobs > 1 && n > 1) {
        rc = run_parallel(s, o, items, n, write ? dir : NULL, res, have);
    } else {
        for (size_t i = 0; i < n && rc == EXIT_OK && !g_interrupted; i++) {
            rc = run_item(s, o, &items[i], write ? dir : NULL, tty, &res[i]);
            have[i] = rc == EXIT_OK;
        }
    }
    /* keep what finished, in item order */
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (have[i]) res[m++] = res[i];
    if (!o->quiet && !o->check) {
        rep_print_table(stdout, s, res, m);
        if (seeds > 1) rep_print_seed_stats(stdout, res, m);
    }
    if ((!o->quiet && !o->check) || o->explain) rep_print_explanations(stdout, res, m);
    if (!o->quiet) {
        if (!o->check) printf("\n");
        *failed += rep_print_verdicts(stdout, s, res, m);
    } else {
        for (size_t i = 0; i < m; i++)
            for (size_t k = 0; k < res[i].n_verdicts; k++) *failed += !res[i].verdicts[k].pass;
    }
    for (size_t i = 0; i < m; i++)
        if (!res[i].complete && !o->quiet)
            printf("INCOMPLETE  %s/%s seed %llu: interrupted before its duration\n",
                   scn_name(s), res[i].name, (unsigned long long)res[i].seed);
    if (write && m && (rc == EXIT_OK || g_interrupted)) {
        if (rep_write_summary(dir, s, res, m)) rc = EXIT_INTERNAL;
        else {
            writers_scenario(s, o, dir, res, m);
            if (!o->quiet && !o->check) printf("\nresults: %s/\n", dir);
        }
    }
    for (size_t i = 0; i < m; i++) {
        *total += res[i].n_verdicts;
        rep_variant_free(&res[i]);
    }
    lb_free(res);
    lb_free(have);
    lb_free(items);
    if (g_db) rep_db_close(g_db);
    g_db = NULL;
    return rc;
}

int main(int argc, char **argv)
{
    opts_t o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    elem_register_builtin();
    if (o.no_expect) scn_ignore_expectations(true);
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (o.list_types) {
        list_types();
        return EXIT_OK;
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_INPUT;
    }
    size_t nfiles = (size_t)(argc - optind);
    scn_t **scns = lb_calloc(nfiles, sizeof *scns);
    idxvec_t *idx = lb_calloc(nfiles, sizeof *idx);
    /* Phase 1: load and validate everything; nothing is written on bad input. */
    for (size_t f = 0; f < nfiles && rc == EXIT_OK; f++) {
        scn_diag_t d;
        if (scn_load(argv[optind + f], &scns[f], &d, stderr)) {
            scn_diag_print(&d, stderr);
            rc = EXIT_INPUT;
            break;
        }
        rc = validate(scns[f], &o, &idx[f]);
    }
    if (rc == EXIT_OK && o.dump_node) {
        rc = dump_iptables(scns[0], &o, idx[0].v[0]);
    } else if (rc == EXIT_OK && o.draw) {
        for (size_t f = 0; f < nfiles && rc == EXIT_OK; f++)
            rc = draw_only(scns[f], &o, idx[f].v, idx[f].n);
    } else if (rc == EXIT_OK && (o.describe || o.render_dir || o.flow_fate)) {
        rc = real_chain(scns[0], &o, idx[0].v[0]);
    } else if (rc == EXIT_OK) {
        /* Phase 2: run. */
        size_t failed = 0, total = 0;
        for (size_t f = 0; f < nfiles && rc == EXIT_OK; f++)
            rc = run_scenario(scns[f], &o, idx[f].v, idx[f].n, &failed, &total);
        if (o.check && rc == EXIT_OK)
            printf("expectations: %zu passed, %zu failed\n", total - failed, failed);
        if (g_interrupted) rc = EXIT_INTERRUPTED;
        if (rc == EXIT_OK && failed) rc = EXIT_EXPECT;
    }
    for (size_t f = 0; f < nfiles; f++) {
        if (scns[f]) scn_free(scns[f]);
        lb_vec_free(&idx[f]);
    }
    lb_free(scns);
    lb_free(idx);
    lb_vec_free(&o.variants);
    lb_vec_free(&o.sets);
    return rc;
}
