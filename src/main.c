/* main.c -- the command line: load scenarios, validate every selected variant before
 * anything is written, run them (simulated, in worker processes with --jobs, or with --real
 * played on real sockets by src/real), print the variants-by-outcome table and the
 * verdicts, write results/<scenario>/<run>/. Exit codes: 0 ok, 1 an expectation failed,
 * 2 bad input (file:line:col on stderr), 3 internal error (a run's process died), 4 an
 * output could not be written, 5 real mode reached nothing, 130 interrupted. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
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
#include "nftables.h"
#include "plots.h"
#include "real.h"
#include "realchain.h"
#include "report.h"
#include "scenario.h"
#include "sweep.h"

#define SIM_VERSION LB_VERSION
enum { EXIT_OK = 0, EXIT_EXPECT = 1, EXIT_INPUT = 2, EXIT_INTERNAL = 3, EXIT_OUTPUT = 4,
       EXIT_UNREACHABLE = 5, EXIT_INTERRUPTED = 130 };

/* The exit code that wins when several apply: an interrupt, then bad input, a lost run, a
 * missing output, a failed expectation. */
static int exit_worse(int a, int b)
{
    static const int order[] = {EXIT_INTERRUPTED, EXIT_INPUT, EXIT_INTERNAL, EXIT_OUTPUT,
                                EXIT_UNREACHABLE, EXIT_EXPECT};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (a == order[i] || b == order[i]) return order[i];
    return EXIT_OK;
}

typedef LB_VEC(size_t) idxvec_t;

typedef struct opts {
    bool has_seed, quiet, check, list_types;
    bool validate_only;             /* --validate: load and build every variant, no run */
    uint64_t seed;
    LB_VEC(const char *) variants;
    LB_VEC(const char *) sets;
    const char *out;
    uint64_t trace_flow;
    const char *dump_node;
    bool dump_nft;                  /* --dump-nft: nft list ruleset instead of iptables-save */
    int seeds;                      /* --seeds N: each variant with seeds base .. base+N-1 */
    int jobs;                       /* --jobs N: parallel worker processes */
    bool no_pcap, no_plots, no_db, no_pictures;
    bool draw;                      /* --draw: the topology only, nothing simulated */
    bool explain;                   /* chains also with --check / --quiet */
    /* the real chain (include/realchain.h): describe, render, flow fates; no-expect */
    bool describe, no_expect;
    const char *render_dir, *flow_fate;
    double plot_timeout;            /* --plot-timeout S: per gnuplot process; 0: default */
    /* real-socket mode (include/real.h) */
    const char *real;               /* --real FILE: the bindings */
    real_bindings_t *bindings;
    bool probes_only, compare, watch;
    double max_rate;                /* --max-rate N; 0: REAL_MAX_RATE_DEFAULT */
    int real_threads;               /* --real-threads N; 0: one */
    LB_VEC(const char *) checkers;  /* --checker GLOB */
    /* sweeps beyond one machine (include/sweep.h) */
    LB_VEC(const char *) axes;      /* --sweep KEY=V1,V2,... */
    bool shard;                     /* --shard [I/N] */
    const char *shard_arg;          /* its I/N or I; NULL: from the environment */
    long shards;                    /* --shards N */
    long shard_i, shard_n;          /* resolved */
    const char *merge;              /* --merge OUT_DIR: the arguments are shard folders */
    long merge_batch;               /* --merge-batch N */
    const char *emit;               /* --emit-job k8s|slurm */
    const char *image, *pvc;        /* --image, --pvc (k8s) */
    LB_VEC(const char *) pass;      /* the sweep options as given, for --emit-job */
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
"      --plot-timeout S    stop a gnuplot that has not finished in S seconds and skip\n"
"                          the plots (default 60; one gnuplot draws up to 32 plots)\n"
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
"      --dump-nft NODE     print NODE's nftables ruleset (`nft list ruleset` form:\n"
"                          kube-proxy-mode nftables) after the scenario is built, then exit\n"
"      --validate          load and build every selected variant, then exit (0, or 2\n"
"                          with file:line:col); nothing runs, nothing is written\n"
"      --draw              write the topology of the built variant(s) -- topology.dot,\n"
"                          .mmd, .svg, .png -- without simulating (design reviews)\n"
"      --describe          print the built variant as JSON (nodes, addresses, routes,\n"
"                          cluster, load balancers; docs/DESCRIBE.md), then exit\n"
"      --render DIR        write the real chain's stand-in configurations (haproxy,\n"
"                          nginx, each node's iptables or nftables rules) rendered\n"
"                          from the models into DIR, then exit\n"
"      --flow-fate FILE    for each flow \"NODE IFACE SRC:SPORT DST:DPORT\" in FILE ('-':\n"
"                          stdin) print what NODE's netfilter does to its SYN as JSON\n"
"      --no-expect         ignore the scenario's expectations (runs shortened with\n"
"                          --set duration=...)\n"
"      --list-types        list element types and their parameters\n"
"\n"
"real-socket mode (docs/REAL-MODE.md; nothing is sent without --real):\n"
"      --real FILE         play the scenario's traffic and its load balancers' probes\n"
"                          over real sockets against the endpoints FILE binds\n"
"                          (docs/BINDINGS.md); pick the deployed variant with -v\n"
"      --probes-only       only the probes: each backend's verdict as its load balancer\n"
"                          would see it, once every target's state is decided\n"
"      --watch             with --probes-only: keep probing until SIGINT/SIGTERM or the\n"
"                          duration, one flushed line per health transition\n"
"      --checker GLOB      probe only the health checkers matching GLOB (repeatable),\n"
"                          e.g. --checker 'ilb/*'\n"
"      --compare           also simulate each variant (same seed) and put simulation and\n"
"                          reality side by side, differences beyond tolerance flagged\n"
"      --max-rate N        requests per second the run may send in all (default %g);\n"
"                          a scenario rate above it is refused before anything is sent\n"
"      --real-threads N    play the traffic on N threads (1 to %d, default 1), each with\n"
"                          its own connections and its share of the users, arrivals and\n"
"                          caps (docs/REAL-MODE.md); --probes-only runs on one\n"
"\n"
"sweeps beyond one machine (README, \"Sweeps on a cluster\"):\n"
"      --sweep KEY=V1,V2,...  a parameter grid axis (repeatable): every combination of\n"
"                          the axes' values runs with every variant and seed\n"
"      --shard [I/N]       run only shard I of N of the sweep (the runs whose index is\n"
"                          I mod N) into DIR/<scenario>/sweep-<key>/shard-I-of-N (DIR:\n"
"                          --out, else results), skipping the runs already complete there;\n"
"                          without I/N, I comes from JOB_COMPLETION_INDEX (Kubernetes) or\n"
"                          SLURM_ARRAY_TASK_ID (Slurm)\n"
"      --shards N          the number of shards (--shard I, a Kubernetes index, --emit-job)\n"
"      --merge OUT_DIR SHARD_DIR...\n"
"                          merge the shards' results.db into OUT_DIR/results.db and write\n"
"                          OUT_DIR's summary.json, plots and report.html from it\n"
"      --merge-batch N     shard files attached at once while merging (default %d)\n"
"      --emit-job k8s|slurm  print a Kubernetes Indexed Job manifest (needs --image and\n"
"                          --pvc) or a Slurm array script that runs the sweep given\n"
"                          (SCENARIO.yaml and the sweep options) in --shards N shards\n"
"      --image IMAGE       (k8s) the container image that holds sim\n"
"      --pvc NAME          (k8s) the PersistentVolumeClaim the shards write their results to\n"
"  -h, --help              this help\n"
"  -V, --version           version\n"
"\n"
"exit status: 0 ok, 1 an expectation failed (not for --shard without --check: --merge\n"
"             judges them), 2 bad input (or --out DIR in use by another sim; shards of\n"
"             different sweeps given to --merge), 3 internal error (a run's worker process\n"
"             died; --merge: runs of the sweep are missing), 4 an output could not be\n"
"             written (a full disk, say: the rest is written, summary.json lists what is\n"
"             missing), 130 interrupted (SIGINT/SIGTERM; results so far are written,\n"
"             marked incomplete), 5 real mode reached nothing (every request and\n"
"             probe failed to connect)\n",
            REAL_MAX_RATE_DEFAULT, REAL_THREADS_MAX, SWEEP_MERGE_ATTACH_DEFAULT);
}

/* Real-mode options that do not go together; nothing is sent without --real. */
static int check_real_opts(const opts_t *o)
{
    const char *needs = o->probes_only ? (o->watch ? "--watch" : "--probes-only")
                      : o->compare ? "--compare" : o->max_rate > 0 ? "--max-rate"
                      : o->real_threads > 0 ? "--real-threads"
                      : o->checkers.n ? "--checker" : NULL;
    const char *bad = NULL;
    if (!o->real && needs) {
        fprintf(stderr, "sim: %s needs --real FILE: nothing is sent without a bindings file "
                "(docs/BINDINGS.md)\n", needs);
        return EXIT_INPUT;
    }
    if (!o->real) return EXIT_OK;
    if (o->seeds > 1) bad = "--seeds";
    else if (o->axes.n) bad = "--sweep";
    else if (o->shard) bad = "--shard";
    else if (o->emit) bad = "--emit-job";
    else if (o->jobs > 1) bad = "--jobs";
    else if (o->trace_flow) bad = "--trace-flow";
    else if (o->compare && o->probes_only) bad = "--probes-only with --compare";
    if (bad) {
        fprintf(stderr, "sim: %s does not go with --real (a real run plays once, on the wall "
                "clock%s)\n", bad, o->compare && o->probes_only
                ? "; --compare compares traffic, --probes-only sends none" : "");
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

#define DUMP_OPT(o) ((o)->dump_nft ? "--dump-nft" : "--dump-iptables")

/* Sweep options that do not go together (--merge and --emit-job are commands of their
 * own; a shard needs its results.db). */
static int check_sweep_opts(const opts_t *o)
{
    const char *bad = NULL, *with = NULL;
    if (o->merge) {
        with = "--merge (the sweep comes from the shards' results.db)";
        bad = o->variants.n ? "--variant" : o->has_seed ? "--seed" : o->seeds ? "--seeds"
            : o->sets.n ? "--set" : o->axes.n ? "--sweep" : o->shard ? "--shard"
            : o->emit ? "--emit-job" : o->jobs > 1 ? "--jobs" : o->no_db ? "--no-db"
            : o->out ? "--out (the output folder is --merge's OUT_DIR)" : o->trace_flow
            ? "--trace-flow" : o->dump_node ? DUMP_OPT(o) : o->describe ? "--describe"
            : o->render_dir ? "--render" : o->flow_fate ? "--flow-fate" : NULL;
    } else if (o->emit) {
        with = "--emit-job";
        bad = o->shard ? "--shard" : o->trace_flow ? "--trace-flow" : o->dump_node
            ? DUMP_OPT(o) : o->describe ? "--describe" : o->render_dir ? "--render"
            : o->flow_fate ? "--flow-fate" : o->no_db ? "--no-db (merging needs results.db)"
            : o->check ? "--check" : NULL;
    } else if (o->shard) {
        with = "--shard";
        bad = o->no_db ? "--no-db (a shard's results are its results.db)" : o->trace_flow
            ? "--trace-flow" : o->dump_node ? DUMP_OPT(o) : o->describe ? "--describe"
            : o->render_dir ? "--render" : o->flow_fate ? "--flow-fate" : NULL;
    } else if (o->axes.n) {
        with = "--sweep";
        bad = o->dump_node ? DUMP_OPT(o) : o->describe ? "--describe" : o->render_dir
            ? "--render" : o->flow_fate ? "--flow-fate" : o->trace_flow ? "--trace-flow" : NULL;
    }
    if (bad) {
        fprintf(stderr, "sim: %s does not go with %s\n", bad, with);
        return EXIT_INPUT;
    }
    if (!o->emit && (o->image || o->pvc)) {
        fprintf(stderr, "sim: %s goes with --emit-job k8s\n", o->image ? "--image" : "--pvc");
        return EXIT_INPUT;
    }
    if (!o->merge && o->merge_batch) {
        fprintf(stderr, "sim: --merge-batch goes with --merge\n");
        return EXIT_INPUT;
    }
    if (o->emit && !o->shards) {
        fprintf(stderr, "sim: --emit-job needs --shards N (how many shards to split the "
                "sweep into)\n");
        return EXIT_INPUT;
    }
    if (o->shards && !o->shard && !o->emit) {
        fprintf(stderr, "sim: --shards goes with --shard or --emit-job\n");
        return EXIT_INPUT;
    }
    return EXIT_OK;
}

static int parse_args(int argc, char **argv, opts_t *o)
{
    enum { O_TRACE = 256, O_DUMP, O_SET, O_LIST, O_SEEDS, O_JOBS, O_NOPCAP, O_NOPLOTS, O_NODB,
           O_EXPLAIN, O_PLOT_TIMEOUT, O_REAL, O_PROBES_ONLY, O_COMPARE, O_MAX_RATE, O_WATCH,
           O_CHECKER, O_DESCRIBE, O_RENDER, O_FATE, O_NOEXPECT, O_SWEEP, O_SHARD, O_SHARDS,
           O_MERGE, O_MERGE_BATCH, O_EMIT, O_IMAGE, O_PVC, O_NOPICTURES, O_DRAW, O_VALIDATE,
           O_DUMP_NFT, O_REAL_THREADS };
    static const struct option lo[] = {
        {"seed", required_argument, 0, 's'}, {"variant", required_argument, 0, 'v'},
        {"out", required_argument, 0, 'o'},  {"check", no_argument, 0, 'c'},
        {"quiet", no_argument, 0, 'q'},      {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},    {"trace-flow", required_argument, 0, O_TRACE},
        {"dump-iptables", required_argument, 0, O_DUMP},
        {"dump-nft", required_argument, 0, O_DUMP_NFT},
        {"set", required_argument, 0, O_SET}, {"list-types", no_argument, 0, O_LIST},
        {"seeds", required_argument, 0, O_SEEDS}, {"jobs", required_argument, 0, O_JOBS},
        {"no-pcap", no_argument, 0, O_NOPCAP}, {"no-plots", no_argument, 0, O_NOPLOTS},
        {"no-db", no_argument, 0, O_NODB}, {"explain", no_argument, 0, O_EXPLAIN},
        {"validate", no_argument, 0, O_VALIDATE},
        {"describe", no_argument, 0, O_DESCRIBE}, {"render", required_argument, 0, O_RENDER},
        {"flow-fate", required_argument, 0, O_FATE}, {"no-expect", no_argument, 0, O_NOEXPECT},
        {"plot-timeout", required_argument, 0, O_PLOT_TIMEOUT},
        {"real", required_argument, 0, O_REAL}, {"probes-only", no_argument, 0, O_PROBES_ONLY},
        {"compare", no_argument, 0, O_COMPARE}, {"max-rate", required_argument, 0, O_MAX_RATE},
        {"watch", no_argument, 0, O_WATCH}, {"checker", required_argument, 0, O_CHECKER},
        {"real-threads", required_argument, 0, O_REAL_THREADS},
        {"sweep", required_argument, 0, O_SWEEP}, {"shard", optional_argument, 0, O_SHARD},
        {"shards", required_argument, 0, O_SHARDS}, {"merge", required_argument, 0, O_MERGE},
        {"merge-batch", required_argument, 0, O_MERGE_BATCH},
        {"emit-job", required_argument, 0, O_EMIT}, {"image", required_argument, 0, O_IMAGE},
        {"pvc", required_argument, 0, O_PVC},
        {"no-pictures", no_argument, 0, O_NOPICTURES}, {"draw", no_argument, 0, O_DRAW},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "s:v:o:cqhV", lo, NULL)) != -1) {
        char *end;
        switch (c) {
        case 's':
            if (lb_parse_u64(optarg, &o->seed)) {
                fprintf(stderr, "sim: --seed expects an integer from 0 to %" PRIu64 ", got '%s'\n",
                        UINT64_MAX, optarg);
                return EXIT_INPUT;
            }
            o->has_seed = true;
            lb_vec_push(&o->pass, "--seed");
            lb_vec_push(&o->pass, optarg);
            break;
        case 'v':
            lb_vec_push(&o->variants, optarg);
            lb_vec_push(&o->pass, "--variant");
            lb_vec_push(&o->pass, optarg);
            break;
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
        case O_DUMP: o->dump_node = optarg; o->dump_nft = false; break;
        case O_DUMP_NFT: o->dump_node = optarg; o->dump_nft = true; break;
        case O_SET:
            if (!strchr(optarg, '=')) {     /* as scn_override says it, with a position */
                fprintf(stderr, "<command line>:1:1: error: bad override '%s'; expected "
                        "KEY=VALUE like traffic.browse.rate=100/s\n", optarg);
                return EXIT_INPUT;
            }
            lb_vec_push(&o->sets, optarg);
            lb_vec_push(&o->pass, "--set");
            lb_vec_push(&o->pass, optarg);
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
            if (c == O_SEEDS) {
                o->seeds = (int)v;
                lb_vec_push(&o->pass, "--seeds");
                lb_vec_push(&o->pass, optarg);
            } else {
                o->jobs = (int)v;
            }
            break;
        }
        case O_NOPCAP:
            o->no_pcap = true;
            lb_vec_push(&o->pass, "--no-pcap");
            break;
        case O_NOPLOTS:
            o->no_plots = true;
            lb_vec_push(&o->pass, "--no-plots");
            break;
        case O_NODB: o->no_db = true; break;
        case O_EXPLAIN: o->explain = true; break;
        case O_VALIDATE: o->validate_only = true; break;
        case O_DESCRIBE: o->describe = true; break;
        case O_RENDER: o->render_dir = optarg; break;
        case O_FATE: o->flow_fate = optarg; break;
        case O_NOEXPECT:
            o->no_expect = true;
            lb_vec_push(&o->pass, "--no-expect");
            break;
        case O_SWEEP:
            lb_vec_push(&o->axes, optarg);
            lb_vec_push(&o->pass, "--sweep");
            lb_vec_push(&o->pass, optarg);
            break;
        case O_SHARD:
            /* "--shard I/N" as well as "--shard=I/N"; a bare --shard reads the environment */
            if (!optarg && optind < argc && argv[optind][0] && strspn(argv[optind],
                "0123456789/") == strlen(argv[optind]))
                optarg = argv[optind++];
            o->shard = true;
            o->shard_arg = optarg;
            break;
        case O_SHARDS:
        case O_MERGE_BATCH: {
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > 1000000) {
                fprintf(stderr, "sim: --%s expects an integer from 1 to 1000000, got '%s'\n",
                        c == O_SHARDS ? "shards" : "merge-batch", optarg);
                return EXIT_INPUT;
            }
            if (c == O_SHARDS) o->shards = v;
            else o->merge_batch = v;
            break;
        }
        case O_MERGE: o->merge = optarg; break;
        case O_EMIT:
            if (strcmp(optarg, "k8s") && strcmp(optarg, "slurm")) {
                fprintf(stderr, "sim: --emit-job expects k8s or slurm, got '%s'\n", optarg);
                return EXIT_INPUT;
            }
            o->emit = optarg;
            break;
        case O_IMAGE: o->image = optarg; break;
        case O_PVC: o->pvc = optarg; break;
        case O_PLOT_TIMEOUT:
            o->plot_timeout = strtod(optarg, &end);
            if (!*optarg || *end || !isfinite(o->plot_timeout) || o->plot_timeout <= 0 ||
                o->plot_timeout > 86400) {
                fprintf(stderr, "sim: --plot-timeout expects seconds, more than 0 and at most "
                        "86400, got '%s'\n", optarg);
                return EXIT_INPUT;
            }
            lb_vec_push(&o->pass, "--plot-timeout");
            lb_vec_push(&o->pass, optarg);
            break;
        case O_REAL: o->real = optarg; break;
        case O_PROBES_ONLY: o->probes_only = true; break;
        case O_COMPARE: o->compare = true; break;
        case O_WATCH: o->watch = o->probes_only = true; break;
        case O_CHECKER: lb_vec_push(&o->checkers, optarg); break;
        case O_MAX_RATE:
            o->max_rate = strtod(optarg, &end);
            if (!*optarg || *end || !(o->max_rate > 0) || o->max_rate > 1e9) {
                fprintf(stderr, "sim: --max-rate expects requests per second > 0, got '%s'\n",
                        optarg);
                return EXIT_INPUT;
            }
            break;
        case O_REAL_THREADS: {
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 1 || v > REAL_THREADS_MAX) {
                fprintf(stderr, "sim: --real-threads expects an integer from 1 to %d, got '%s'\n",
                        REAL_THREADS_MAX, optarg);
                return EXIT_INPUT;
            }
            o->real_threads = (int)v;
            break;
        }
        case O_NOPICTURES: o->no_pictures = true; break;
        case O_DRAW: o->draw = true; break;
        default: usage(stderr); return EXIT_INPUT;
        }
    }
    int rc = check_real_opts(o);
    return rc ? rc : check_sweep_opts(o);
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

/* ---- progress on a terminal ----
 * One line on stderr, redrawn in place after '\r' about once a wall-second. It is kept
 * narrower than the terminal (TIOCGWINSZ, asked at every redraw): a line reaching the last
 * column wraps on most terminals, and '\r' then only returns to the start of its last
 * row, leaving the rest behind. A label too long loses its middle to "..."; the line is
 * erased with spaces at the end of the run. */
#define PROGRESS_DEFAULT_COLS 80        /* when stderr's terminal does not say */
#define PROGRESS_LABEL_COLS 40          /* labels are padded to this width when there is room */

typedef struct progress {
    const char *label;
    int drawn;                          /* columns of the widest line drawn; 0: none */
} progress_t;

static int term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return PROGRESS_DEFAULT_COLS;
}

/* label as at most `width` columns into out (scenario and variant names are ASCII, as
 * the loader checks; any other byte shows as '?'). A label too long keeps its start and
 * its end (the seed) around "...". Returns the columns used. */
static int fit_label(char *out, size_t outlen, const char *label, int width)
{
    int n = (int)strlen(label), head = n, tail = 0;
    bool cut = n > width;
    if (cut && width >= 5) {
        head = (width - 3) - (width - 3) / 2;
        tail = (width - 3) / 2;
    } else if (cut) {
        head = width;                       /* too narrow for "...": the start only */
    }
    snprintf(out, outlen, "%.*s%s%s", head, label, cut && width >= 5 ? "..." : "",
             label + n - tail);
    for (char *p = out; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) *p = '?';
    return cut ? (width >= 5 ? width : head) : n;
}

static void progress_cb(double frac, void *data)
{
    progress_t *p = data;
    int cols = term_cols() - 1;                         /* never the last column */
    char pct[16], label[1024];
    int pw = snprintf(pct, sizeof pct, " %5.1f%%", 100.0 * frac);
    int room = cols - 2 - pw;                           /* "  " label pct */
    if (room < 1) return;                               /* a terminal too narrow: nothing */
    int lw = fit_label(label, sizeof label, p->label, room);
    int pad = (lw < PROGRESS_LABEL_COLS && PROGRESS_LABEL_COLS <= room ? PROGRESS_LABEL_COLS
                                                                      : lw) - lw;
    int w = 2 + lw + pad + pw;
    /* blanks over what a wider earlier line left (the terminal was narrowed) */
    int clear = p->drawn > w ? (p->drawn < cols ? p->drawn : cols) - w : 0;
    fprintf(stderr, "\r  %s%*s%s%*s", label, pad, "", pct, clear, "");
    if (w > p->drawn) p->drawn = w;
}

/* Erases the progress line, if one was drawn. */
static void progress_end(progress_t *p)
{
    if (!p->drawn) return;
    int cols = term_cols() - 1;
    fprintf(stderr, "\r%*s\r", p->drawn < cols ? p->drawn : cols, "");
    p->drawn = 0;
}

static void trace_print_header(uint64_t flow)
{
    printf("trace of flow %" PRIu64 ":\n", flow);
}

/* g_stop_writing is set by every signal too; it is cleared when the results start being
 * written, so that a signal then stops a slow gnuplot (one during the run does not). */
static volatile sig_atomic_t g_interrupted, g_signal, g_stop_writing;

/* Reports a failed load, override or build: bad input (exit 2), or a stop requested by
 * SIGINT/SIGTERM (exit 130; before the runs nothing has been written). */
static int load_failed(int rc, const scn_diag_t *d, const char *file)
{
    if (rc == LB_EINTR || g_interrupted) {
        fprintf(stderr, "sim: interrupted while loading and validating %s; nothing written\n",
                file);
        return EXIT_INTERRUPTED;
    }
    scn_diag_print(d, stderr);
    return EXIT_INPUT;
}

static void real_opts_of(const opts_t *o, real_opts_t *ro)
{
    real_opts_init(ro);
    if (o->max_rate > 0) ro->max_rate = o->max_rate;
    if (o->real_threads > 0) ro->threads = o->real_threads;
    ro->probes_only = o->probes_only;
    ro->watch = o->watch;
    ro->checkers = o->checkers.v;
    ro->n_checkers = o->checkers.n;
}

/* Resolves a built run through the bindings (unbound names, rate cap): EXIT_INPUT with
 * the message on stderr, before anything is sent or written. */
static int real_check(const opts_t *o, scn_run_t *r)
{
    real_opts_t ro;
    real_opts_of(o, &ro);
    real_plan_t *plan;
    char *err;
    if (real_plan_new(o->bindings, r, &ro, &plan, &err)) {
        fprintf(stderr, "%s\n", err);
        lb_free(err);
        return EXIT_INPUT;
    }
    real_plan_free(plan);
    return EXIT_OK;
}

/* The variants a sweep runs, in order (run index = ((variant * points) + point) * seeds
 * + seed offset). */
static void sweep_variants(const sweep_t *sw, idxvec_t *idx)
{
    size_t stride = sweep_point_count(sw) * sweep_seeds(sw);
    for (size_t i = 0; i < sweep_run_count(sw); i += stride)
        lb_vec_push(idx, sweep_run_at(sw, i)->variant);
}

/* Builds every selected variant at every grid point once (with the first seed), so that
 * bad input is reported before anything is written. */
static int validate(sweep_t *sw, const opts_t *o)
{
    scn_diag_t d;
    size_t seeds = sweep_seeds(sw);
    for (size_t i = 0; i < sweep_run_count(sw); i += seeds) {
        const sweep_run_t *ru = sweep_run_at(sw, i);
        scn_run_t *r;
        if (g_interrupted) return load_failed(LB_EINTR, &d, sweep_file(sw));
        int rc = scn_run_new(sweep_scn(sw, ru->point), ru->variant, ru->seed, &r, &d);
        if (rc) {
            rc = load_failed(rc, &d, sweep_file(sw));
            if (rc == EXIT_INPUT && sweep_axis_count(sw))
                fprintf(stderr, "sim: (at the grid point %s)\n", sweep_point_label(sw, ru->point));
            return rc;
        }
        rc = o->real ? real_check(o, r) : EXIT_OK;
        scn_run_free(r);
        if (rc) return rc;
    }
    return EXIT_OK;
}

static int dump_iptables(scn_t *s, const opts_t *o, size_t v)
{
    scn_run_t *r;
    scn_diag_t d;
    int rc = scn_run_new(s, v, o->has_seed ? o->seed : scn_seed(s), &r, &d);
    if (rc) return load_failed(rc, &d, scn_file(s));
    sim_run(scn_run_sim(r), 0);                 /* let t=0 set-up (rule syncs) happen */
    net_node_t *n = scn_run_node(r, o->dump_node);
    if (!n) {
        fprintf(stderr, "%s: error: no node '%s' in variant '%s'\n", scn_file(s), o->dump_node,
                scn_variant_name(s, v));
        const net_t *net = scn_run_net(r);
        size_t nn = net_node_count(net);
        fprintf(stderr, "%s: the variant's nodes:", scn_file(s));
        for (size_t i = 0; i < nn && i < 12; i++) fprintf(stderr, " %s", net_node_at(net, i)->name);
        if (nn > 12) fprintf(stderr, " ... (%zu in all)", nn);
        fputc('\n', stderr);
        scn_run_free(r);
        return EXIT_INPUT;
    }
    printf("# node %s, variant %s\n", n->name, scn_variant_name(s, v));
    if (o->dump_nft) nft_list(nf_get(n), stdout);
    else nf_save(nf_get(n), stdout, false);
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

/* A unit of work: one run of the sweep (a variant at a grid point with one seed),
 * simulated or played on real sockets. */
typedef struct item {
    size_t variant, point;
    uint64_t seed;
    bool real;
    long run;                       /* its index in the sweep; -1: a real run (no id) */
} item_t;

/* "run <variant> [<grid point>] seed <N>", as messages and summary.json name an item. */
static void item_name(char *buf, size_t len, const sweep_t *sw, const item_t *it)
{
    const char *pt = sweep_point_label(sw, it->point);
    snprintf(buf, len, "run %s%s%s%s seed %llu", scn_variant_name(sweep_scn(sw, 0), it->variant),
             *pt ? " [" : "", pt, *pt ? "]" : "", (unsigned long long)it->seed);
}

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
    char pcap[300];                 /* its file name, "" for none */
    char run[300];                  /* "run <variant> seed <N>", for messages */
    rep_missings_t missing;         /* what could not be written; moved into the results */
} writers_t;

/* Records that `output` could not be written and says so on stderr. */
static void writer_failed(rep_missings_t *m, const char *what, const char *output,
                          const char *err)
{
    fprintf(stderr, "sim: %s: %s\n", what, err);
    rep_missing_add(m, REP_MISSING_WRITE_FAILED, output, "%s", err);
}

static void writers_attach(writers_t *w, sweep_t *sw, scn_run_t *r, const opts_t *o,
                           const item_t *it, const char *dir)
{
    memset(w, 0, sizeof *w);
    if (!dir) return;
    scn_t *s = sweep_scn(sw, it->point);
    const char *vname = scn_variant_name(s, it->variant);
    const sweep_run_t *ru = it->run >= 0 ? sweep_run_at(sw, (size_t)it->run) : NULL;
    item_name(w->run, sizeof w->run, sw, it);
    if (!o->no_plots) rep_plots_attach(r, NULL);
    w->plots = !o->no_plots;
    /* trace-<variant>[-seed<N>].pcap: several variants and seeds share the folder; with a
     * grid, trace-<variant>-<run id>.pcap (summary.json maps ids to grid points) */
    if (sweep_axis_count(sw) && ru)
        snprintf(w->pcap, sizeof w->pcap, "trace-%s-%s.pcap", vname, ru->id);
    else if (o->seeds > 1)
        snprintf(w->pcap, sizeof w->pcap, "trace-%s-seed%llu.pcap", vname,
                 (unsigned long long)it->seed);
    else
        snprintf(w->pcap, sizeof w->pcap, "trace-%s.pcap", vname);
    char path[4400], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, w->pcap);
    if (!it->real && (!o->no_pcap || !o->no_plots)) {  /* hop recorder: the hops plot */
        w->cap = rep_capture_new(r, o->no_pcap ? NULL : path, o->trace_flow, err, sizeof err);
        if (!w->cap && !o->no_pcap) writer_failed(&w->missing, "trace pcap", w->pcap, err);
        else if (!w->cap) fprintf(stderr, "sim: hop recorder: %s\n", err);
    }
    /* pictures: the first seed at the first grid point of each variant (a sweep's other
     * runs draw none: they would write the same ladder-<variant> and topology-<variant>
     * files, concurrently under --jobs, and which run's ladder stayed would be chance) */
    if (!o->no_pictures && !it->real && it->point == 0 &&
        it->seed == (o->has_seed ? o->seed : scn_seed(s))) {
        w->draw = draw_rec_attach(r, err, sizeof err);
        if (!w->draw) fprintf(stderr, "sim: %s\n", err);
    }
    if (g_db) {
        w->db = rep_db_run_begin(g_db, s, r, vname, it->seed, g_run_group, err, sizeof err);
        if (!w->db) {
            char out[400];
            snprintf(out, sizeof out, "results.db: %s", w->run);
            writer_failed(&w->missing, "results.db", out, err);
        } else if (ru) {
            rep_db_ident_t id = { ru->id, sweep_key(sw), sweep_hash(sw), LB_VERSION,
                                  sweep_overrides(sw, it->point), (int64_t)ru->index,
                                  o->shard };
            rep_db_run_identify(w->db, &id);
        }
    }
}

/* Finishes the writers of one run; what could not be written goes to v->missing. */
static void writers_finish(writers_t *w, scn_run_t *r, rep_variant_t *v)
{
    char err[512];
    if (w->plots) rep_plots_collect(r, v);
    if (w->cap) {
        rep_capture_collect(w->cap, r, v);
        if (rep_capture_close(w->cap, err, sizeof err))
            writer_failed(&w->missing, "trace pcap", w->pcap, err);
        rep_capture_free(w->cap);
        w->cap = NULL;
    }
    /* what failed so far goes with the results stored in results.db */
    for (size_t i = 0; i < w->missing.n; i++) lb_vec_push(&v->missing, w->missing.v[i]);
    w->missing.n = 0;
    if (w->db) {
        char *text = rep_variant_serialize(v);
        rep_db_run_set_result(w->db, text);
        free(text);
    }
    if (w->db && rep_db_run_end(w->db, r, v->verdicts, v->n_verdicts, err, sizeof err)) {
        char out[400];
        snprintf(out, sizeof out, "results.db: %s", w->run);
        writer_failed(&w->missing, "results.db", out, err);
    }
    w->db = NULL;
    for (size_t i = 0; i < w->missing.n; i++) lb_vec_push(&v->missing, w->missing.v[i]);
    lb_vec_free(&w->missing);
}

/* ---- running: work items are (variant, seed) pairs ---- */

static bool g_unreachable;          /* a real run reached nothing (EXIT_UNREACHABLE) */

static const draw_render_opts_t g_render = {0, &g_interrupted};

/* A picture that could not be drawn or written: said on stderr and listed in summary.json's
 * `missing` (write-failed: exit status 4; a helper that timed out: skipped). */
static void picture_failed(rep_missings_t *m, int rc, const char *what, const char *err)
{
    fprintf(stderr, "sim: pictures: %s\n", err);
    if (m)
        rep_missing_add(m, rc == LB_EIO ? REP_MISSING_WRITE_FAILED : REP_MISSING_SKIPPED,
                        what, "pictures: %s", err);
}

/* Renders picture <stem> of dir (an interrupt skips it quietly); failures go to m. */
static void picture_render(const char *dir, const char *stem, rep_missings_t *m)
{
    char err[512];
    int rc = draw_render_file(dir, stem, &g_render, err, sizeof err);
    if (rc && rc != LB_ESTATE) picture_failed(m, rc, stem, err);
}

/* Says once what was missing to draw the pictures. */
static void pictures_check(void)
{
    char err[512];
    if (g_interrupted) fprintf(stderr, "sim: interrupted: pictures skipped\n");
    else if (draw_render_check(err, sizeof err)) fprintf(stderr, "sim: %s\n", err);
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
        if (rc == EXIT_OK && i == 0) picture_render(dir, "topology", NULL);
        if (rc == EXIT_OK && nidx > 1) picture_render(dir, stem, NULL);
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

/* A stop while loading and validating (phase 1, nothing written yet): loading returns
 * LB_EINTR within milliseconds and main exits 130; should anything take longer than
 * STOP_GRACE_NS (releasing a very large scenario, a loop without a check), a watchdog
 * timer ends the process with 130 anyway. In phase 2 there is no watchdog: the runs stop
 * at their next check and their results are written, marked incomplete. */
#define STOP_GRACE_NS 700000000L
static volatile sig_atomic_t g_loading = 1;
static timer_t g_watchdog;
static bool g_have_watchdog;

static void on_signal(int sig)
{
    g_interrupted = 1;
    g_signal = sig;
    g_stop_writing = 1;
    scn_request_stop();
    if (g_loading && g_have_watchdog) {
        struct itimerspec its = { { 0, 0 }, { 0, STOP_GRACE_NS } };
        timer_settime(g_watchdog, 0, &its, NULL);       /* async-signal-safe (POSIX) */
    }
}

static void on_watchdog(int sig)
{
    (void)sig;
    if (!g_loading) return;
    static const char msg[] = "sim: interrupted while loading and validating; nothing written\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    _exit(EXIT_INTERRUPTED);
}

/* What became of each item. */
enum { ITEM_PENDING, ITEM_DONE, ITEM_LOST };

/* Runs one item in this process into *out. Returns EXIT_OK, EXIT_INTERRUPTED (stopped
 * while building: no result), or EXIT_INTERNAL when the run cannot be built (it was
 * validated before). Outputs that could not be written are in out->missing. */
static int run_item(sweep_t *sw, const opts_t *o, const item_t *it, const char *dir, bool tty,
                    rep_variant_t *out)
{
    scn_t *s = sweep_scn(sw, it->point);
    scn_run_t *r;
    scn_diag_t d;
    const char *vname = scn_variant_name(s, it->variant);
    int brc = scn_run_new(s, it->variant, it->seed, &r, &d);
    if (brc == LB_EINTR) return EXIT_INTERRUPTED;
    if (brc) {                                          /* validated before: internal */
        scn_diag_print(&d, stderr);
        return EXIT_INTERNAL;
    }
    if (o->trace_flow) {
        trace_print_header(o->trace_flow);
        scn_run_set_trace(r, o->trace_flow, stdout);
    }
    writers_t w;
    writers_attach(&w, sw, r, o, it, dir);
    char label[600];
    const char *pt = sweep_point_label(sw, it->point);
    snprintf(label, sizeof label, "%s/%s%s%s%s seed %llu", scn_name(s), vname, *pt ? " [" : "",
             pt, *pt ? "]" : "", (unsigned long long)it->seed);
    progress_t pg = {label, 0};
    real_plan_t *plan = NULL;
    if (it->real) {
        real_opts_t ro;
        real_opts_of(o, &ro);
        char *err;
        if (real_plan_new(o->bindings, r, &ro, &plan, &err)) {   /* validated before */
            fprintf(stderr, "%s\n", err);
            lb_free(err);
            scn_run_free(r);
            return EXIT_INTERNAL;
        }
        if (!o->quiet && !o->check) {
            uint64_t nreq;
            size_t nck, ntg;
            real_plan_counts(plan, &nreq, &nck, &ntg);
            char dur[32];
            fprintf(stderr, "%s/%s: on real sockets for up to %s: %zu health checkers "
                    "probing %zu targets%s\n", scn_name(s), vname,
                    sim_time_str(scn_run_duration(r), dur), nck, ntg,
                    o->probes_only ? "" : ", and the traffic");
        }
        if (real_plan_execute(plan)) {
            real_plan_free(plan);
            scn_run_free(r);
            return EXIT_INTERNAL;
        }
        g_unreachable |= real_plan_unreachable(plan);
    } else {
        scn_run_execute(r, tty ? progress_cb : NULL, &pg);
    }
    progress_end(&pg);
    scn_verdict_t *vd = NULL;
    size_t nv = o->probes_only ? 0 : scn_run_check(r, &vd);
    rep_variant_collect(out, r, vname, it->seed, vd, nv);
    if (it->run >= 0) {
        size_t na = sweep_axis_count(sw);
        const char **keys = lb_calloc(na + 1, sizeof *keys), **vals = lb_calloc(na + 1, sizeof *vals);
        for (size_t a = 0; a < na; a++) {
            keys[a] = sweep_axis_key(sw, a);
            vals[a] = sweep_point_value(sw, it->point, a);
        }
        rep_variant_set_run(out, sweep_run_at(sw, (size_t)it->run)->id, keys, vals, na);
        lb_free(keys);
        lb_free(vals);
    }
    if (plan) {
        lb_free(out->probes);
        out->n_probes = real_plan_probes(plan, &out->probes);
        out->delayed = real_plan_delayed(plan);
        rep_variant_show_probes(out);
        real_plan_free(plan);
    } else if (o->compare) {
        rep_variant_show_probes(out);
    }
    writers_finish(&w, r, out);
    char err[512];
    if (w.draw && draw_rec_write(w.draw, s, it->variant, r, out, dir, err, sizeof err))
        picture_failed(&out->missing, LB_EIO, vname, err);
    scn_run_free(r);
    if (w.draw) {                   /* the ladders' replay: after the run is freed */
        int drc = draw_rec_finish(w.draw, s, it->variant, it->seed, dir, &g_render, err,
                                  sizeof err);
        if (drc && drc != LB_ESTATE) picture_failed(&out->missing, drc, vname, err);
        draw_rec_free(w.draw);
    }
    return EXIT_OK;
}

/* ---- --jobs: worker processes ----
 * The parent deals the items out one at a time, over a socket pair per worker: it sends
 * "i\n"; the worker runs items[i] (writing its pcap and its results.db rows itself) and
 * answers "i\t<json>\n" (rep_variant_serialize), then reads the next index. The parent
 * shutting down its sending side (SHUT_WR) tells the worker to exit.
 *
 *   parent                                    worker
 *   worker_spawn: socketpair, fork   ---->    reads "i\n"; EOF: exits 0
 *   deal: sends "i\n"                          run_item, sends "i\t{...}\n"
 *   poll: a line -> res[i], deal the next      signalled: sends its (incomplete) result,
 *   EOF -> waitpid -> worker_ended:              exits 130
 *     the item it held is lost (killed by a signal, say): reported, not waited for;
 *     a new worker takes the items left
 *
 * Signals: whichever process gets SIGINT or SIGTERM, the whole run stops and every run cut
 * short is marked incomplete: the parent forwards the signal it got to every worker; a
 * worker signalled alone exits 130, which the parent takes as its own interrupt. Reads,
 * writes and poll retry on EINTR, so a signal never cuts a result short. */
typedef struct worker {
    pid_t pid;                      /* 0: none (ended) */
    int fd;                         /* the parent's end of the socket pair; -1: closed */
    long item;                      /* the item it runs; -1: none */
    bool no_more;                   /* told to exit (SHUT_WR) */
    char *buf;                      /* result bytes not yet parsed */
    size_t len, cap;
} worker_t;

static bool send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* The worker's life; never returns. */
static void worker_main(int fd, sweep_t *sw, const opts_t *o, const item_t *items, size_t n,
                        const char *dir)
{
    char line[32];
    size_t len = 0;
    int rc = EXIT_OK;
    for (;;) {
        ssize_t r = read(fd, line + len, sizeof line - 1 - len);
        if (r < 0 && errno == EINTR) {
            if (g_interrupted) break;
            continue;
        }
        if (r <= 0) break;                      /* no more items */
        len += (size_t)r;
        char *nl = memchr(line, '\n', len);
        if (!nl) {
            if (len < sizeof line - 1) continue;
            rc = EXIT_INTERNAL;
            break;
        }
        *nl = '\0';
        char *end;
        unsigned long long i = strtoull(line, &end, 10);
        len = 0;                                /* the parent sends one index at a time */
        if (end == line || *end || i >= n) {
            rc = EXIT_INTERNAL;
            break;
        }
        rep_variant_t v;
        if ((rc = run_item(sw, o, &items[i], dir, false, &v)) != EXIT_OK) break;
        char *text = rep_variant_serialize(&v), head[32];
        int hl = snprintf(head, sizeof head, "%llu\t", i);
        bool sent = send_all(fd, head, (size_t)hl) && send_all(fd, text, strlen(text)) &&
                    send_all(fd, "\n", 1);
        free(text);
        rep_variant_free(&v);
        if (!sent || g_interrupted) break;
    }
    fflush(NULL);
    _exit(rc != EXIT_OK ? rc : g_interrupted ? EXIT_INTERRUPTED : EXIT_OK);
}

typedef struct pool {
    sweep_t *sw;
    const opts_t *o;
    const item_t *items;
    size_t n, next;                 /* items; the next one to deal */
    const char *dir;
    rep_variant_t *res;
    unsigned char *state;           /* ITEM_* per item */
    char **why;                     /* per lost item: what happened (lb_strdup) */
    worker_t *w;
    int nw;
    bool stop;                      /* deal nothing more (set on an interrupt or a failure) */
    int rc;
} pool_t;

/* Starts worker j. 0, or -1 (message on stderr). */
static int worker_spawn(pool_t *p, int j)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
        perror("sim: socketpair");
        return -1;
    }
    fflush(NULL);
    pid_t parent = getpid(), pid = fork();
    if (pid < 0) {
        perror("sim: fork");
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        /* a parent killed outright (-9) takes its workers along: they stop their run */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(EXIT_INTERRUPTED);
        close(sv[0]);
        for (int k = 0; k < p->nw; k++)         /* the other workers' sockets: not ours */
            if (p->w[k].fd >= 0) close(p->w[k].fd);
        worker_main(sv[1], p->sw, p->o, p->items, p->n, p->dir);
    }
    close(sv[1]);
    worker_t *w = &p->w[j];
    w->pid = pid;
    w->fd = sv[0];
    w->item = -1;
    w->no_more = false;
    w->len = 0;
    return 0;
}

/* Gives worker w the next item, or tells it there is none (after an interrupt too). */
static void deal(pool_t *p, worker_t *w)
{
    if (w->no_more || w->fd < 0) return;
    if (g_interrupted) p->stop = true;
    if (p->next < p->n && !p->stop) {
        char cmd[32];
        int l = snprintf(cmd, sizeof cmd, "%zu\n", p->next);
        if (send_all(w->fd, cmd, (size_t)l)) w->item = (long)p->next++;
        return;                                 /* else it died: its EOF follows */
    }
    shutdown(w->fd, SHUT_WR);
    w->no_more = true;
}

/* Takes the complete result lines out of w's buffer. */
static void take_lines(pool_t *p, worker_t *w)
{
    char *start = w->buf, *nl;
    while ((nl = memchr(start, '\n', w->len - (size_t)(start - w->buf)))) {
        *nl = '\0';
        char *tab = strchr(start, '\t');
        char *end;
        unsigned long long i = strtoull(start, &end, 10);
        if (!tab || end != tab || w->item < 0 || i != (unsigned long long)w->item ||
            rep_variant_deserialize(tab + 1, &p->res[i])) {
            fprintf(stderr, "sim: garbled result from worker process %d\n", (int)w->pid);
            p->rc = exit_worse(p->rc, EXIT_INTERNAL);
            kill(w->pid, SIGKILL);              /* its item is reported lost at its end */
            w->len = 0;
            return;
        }
        p->state[i] = ITEM_DONE;
        w->item = -1;
        start = nl + 1;
        deal(p, w);
    }
    w->len -= (size_t)(start - w->buf);
    memmove(w->buf, start, w->len);
}

/* Worker w's socket reached its end: reaps it, reports an item it held as lost, takes a
 * worker signalled alone as an interrupt of the whole run, and starts a new worker for
 * the items left. */
static void worker_ended(pool_t *p, int j)
{
    worker_t *w = &p->w[j];
    close(w->fd);
    w->fd = -1;
    int st = 0;
    while (waitpid(w->pid, &st, 0) < 0 && errno == EINTR) {}
    bool intr = WIFEXITED(st) && WEXITSTATUS(st) == EXIT_INTERRUPTED;
    if (intr && !g_interrupted) {               /* only the worker was signalled */
        g_signal = SIGINT;
        g_interrupted = 1;
        scn_request_stop();
    }
    char how[160] = "";                         /* what became of the process */
    if (WIFSIGNALED(st))
        snprintf(how, sizeof how, "was killed by signal %d (%s)", WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else if (WEXITSTATUS(st) != EXIT_OK && !intr)
        snprintf(how, sizeof how, "exited with status %d", WEXITSTATUS(st));
    if (w->item >= 0 && !intr) {
        size_t i = (size_t)w->item;
        char why[256];
        snprintf(why, sizeof why, "its worker process (pid %d) %s", (int)w->pid,
                 how[0] ? how : "ended without sending its result");
        char name[600];
        item_name(name, sizeof name, p->sw, &p->items[i]);
        fprintf(stderr, "sim: run %s/%s died: %s; its results are lost\n",
                scn_name(sweep_scn(p->sw, 0)), name + 4, why);
        p->state[i] = ITEM_LOST;
        p->why[i] = lb_strdup(why);
        p->rc = exit_worse(p->rc, EXIT_INTERNAL);
    } else if (how[0]) {
        fprintf(stderr, "sim: worker process %d %s between runs; no results were lost\n",
                (int)w->pid, how);
    }
    w->pid = 0;
    w->item = -1;
    if (g_interrupted) p->stop = true;
    if (p->next < p->n && !p->stop) {
        if (worker_spawn(p, j) == 0) deal(p, w);
        else p->rc = exit_worse(p->rc, EXIT_INTERNAL);
    }
}

/* Runs items[0..n) in o->jobs worker processes (at most n). Fills res[i] and state[i]
 * (ITEM_DONE; ITEM_LOST with why[i]; ITEM_PENDING: never started, after an interrupt).
 * Returns EXIT_OK or EXIT_INTERNAL (a run was lost, a worker could not start). */
static int run_parallel(sweep_t *sw, const opts_t *o, const item_t *items, size_t n,
                        const char *dir, rep_variant_t *res, unsigned char *state, char **why)
{
    pool_t p = {.sw = sw, .o = o, .items = items, .n = n, .dir = dir, .res = res,
                .state = state, .why = why, .rc = EXIT_OK};
    p.nw = o->jobs < (int)n ? o->jobs : (int)n;
    p.w = lb_calloc((size_t)p.nw, sizeof *p.w);
    for (int j = 0; j < p.nw; j++) p.w[j].fd = -1, p.w[j].item = -1;
    for (int j = 0; j < p.nw; j++) {
        if (worker_spawn(&p, j)) {
            p.rc = EXIT_INTERNAL;
            break;
        }
        deal(&p, &p.w[j]);
    }
    struct pollfd *pf = lb_calloc((size_t)p.nw, sizeof *pf);
    bool forwarded = false;
    for (;;) {
        if (g_interrupted && !forwarded) {
            forwarded = true;
            for (int j = 0; j < p.nw; j++)
                if (p.w[j].pid > 0) {
                    kill(p.w[j].pid, g_signal ? g_signal : SIGINT);
                    if (p.w[j].item < 0) deal(&p, &p.w[j]);    /* idle: tell it to exit */
                }
        }
        int open_fds = 0;
        for (int j = 0; j < p.nw; j++) {
            pf[j] = (struct pollfd){p.w[j].fd, POLLIN, 0};
            open_fds += p.w[j].fd >= 0;
        }
        if (!open_fds) break;
        if (poll(pf, (nfds_t)p.nw, -1) < 0) {
            if (errno == EINTR) continue;
            perror("sim: poll");                /* cannot wait for them: end them */
            p.stop = true;
            for (int j = 0; j < p.nw; j++)
                if (p.w[j].fd >= 0) {
                    kill(p.w[j].pid, SIGKILL);
                    worker_ended(&p, j);        /* its item: lost */
                }
            p.rc = exit_worse(p.rc, EXIT_INTERNAL);
            break;
        }
        for (int j = 0; j < p.nw; j++) {
            worker_t *w = &p.w[j];
            if (w->fd < 0 || !pf[j].revents) continue;
            if (w->cap - w->len < 65536) {
                w->cap = w->cap ? 2 * w->cap : 131072;
                w->buf = lb_realloc(w->buf, w->cap);
            }
            ssize_t r = read(w->fd, w->buf + w->len, w->cap - w->len);
            if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (r > 0) {
                w->len += (size_t)r;
                take_lines(&p, w);
                continue;
            }
            worker_ended(&p, j);                /* EOF (or a broken socket) */
        }
    }
    for (int j = 0; j < p.nw; j++) lb_free(p.w[j].buf);
    lb_free(p.w);
    lb_free(pf);
    return p.rc;
}

/* ---- --out DIR: one writer per results folder ----
 * DIR/<scenario>/ holds fixed file names (summary.json, plots, report.html, pcaps), so two
 * processes writing there at once would replace each other's files (results.db alone
 * takes concurrent runs). Each process takes a POSIX record lock on DIR/<scenario>/.lock
 * for its whole life (rep_dir_lock); a second one is refused with the holder's pid
 * before anything is run or written. */
typedef struct outdir { char path[4096]; int lock; } outdir_t;

/* How long a shard waits for its folder's lock (a replacement pod on a network file
 * system can find the lock of the pod it replaces still held until the server notices
 * that pod's end: NFSv4's default lease is 90 s). */
#define SHARD_LOCK_WAIT_S 180

/* Creates and locks o->out/<scenario> for each scenario (a shard: DIR/<scenario>/sweep-
 * <key>/shard-I-of-N, DIR being --out or results -- a changed sweep never meets the
 * folders of the one before -- waiting up to SHARD_LOCK_WAIT_S for another holder).
 * EXIT_OK, EXIT_INPUT (in use), EXIT_INTERRUPTED or EXIT_OUTPUT (cannot create it);
 * messages on stderr. */
static int outdirs_take(sweep_t **sws, size_t nfiles, const opts_t *o, outdir_t *od)
{
    for (size_t f = 0; f < nfiles; f++) {
        const char *name = scn_name(sweep_scn(sws[f], 0));
        if (o->shard)
            snprintf(od[f].path, sizeof od[f].path, "%s/%s/sweep-%s/shard-%ld-of-%ld",
                     o->out ? o->out : "results", name, sweep_key(sws[f]), o->shard_i,
                     o->shard_n);
        else
            snprintf(od[f].path, sizeof od[f].path, "%s/%s", o->out, name);
        od[f].lock = -1;
        for (size_t g = 0; g < f; g++)          /* the same folder twice: one lock */
            if (!strcmp(od[g].path, od[f].path)) od[f].lock = -2;
        if (od[f].lock == -2) continue;
        if (rep_mkdirs(od[f].path)) {
            fprintf(stderr, "sim: cannot create %s: %s\n", od[f].path, strerror(errno));
            return EXIT_OUTPUT;
        }
        char err[4600];
        int rc = rep_dir_lock(od[f].path, o->shard ? SHARD_LOCK_WAIT_S : 0, &g_interrupted,
                              &od[f].lock, err, sizeof err);
        if (rc == LB_ESTATE) return EXIT_INTERRUPTED;
        if (rc == LB_EEXIST) {
            fprintf(stderr, "sim: %s; use another --out, or wait until it ends\n", err);
            return EXIT_INPUT;
        }
        if (rc) {
            fprintf(stderr, "sim: %s\n", err);
            return EXIT_OUTPUT;
        }
        if (err[0]) fprintf(stderr, "sim: %s\n", err);
    }
    return EXIT_OK;
}

static void outdirs_release(outdir_t *od, size_t nfiles)
{
    for (size_t f = 0; od && f < nfiles; f++)
        if (od[f].lock >= 0) close(od[f].lock);
}

/* ---- one scenario: run its items, print, write ---- */

/* A shard takes the runs already complete in its results.db (resume after a failure or a
 * preemption): their stored results, matched to the items by run id. */
typedef struct resume {
    const sweep_t *sw;
    const item_t *items;
    size_t n;
    long *item_of_run;              /* sweep run index -> item index, -1: not this shard's */
    rep_variant_t *res;
    unsigned char *state;
    size_t taken;
} resume_t;

static void resume_cb(const char *run_key, const char *result, void *data)
{
    resume_t *r = data;
    long run = sweep_run_find(r->sw, run_key);
    long i = run >= 0 ? r->item_of_run[run] : -1;
    if (i < 0) return;                          /* not this shard's (another N) */
    rep_variant_t v;
    if (rep_variant_deserialize(result, &v)) return;    /* unreadable: run it again */
    if (r->state[i] == ITEM_DONE) rep_variant_free(&r->res[i]);     /* a later copy wins */
    else r->taken++;
    r->res[i] = v;
    r->state[i] = ITEM_DONE;
}

/* Records the sweep in results.db. A shard refuses a folder that holds runs of another
 * sweep (EXIT_INPUT, before anything is written) and takes the runs already complete
 * there into res/state. Failing to record is reported in miss. */
static int sweep_record(sweep_t *sw, const opts_t *o, const char *dir, const item_t *items,
                        size_t n, rep_variant_t *res, unsigned char *state,
                        rep_missings_t *miss, size_t *resumed)
{
    char err[512], other[64];
    *resumed = 0;
    if (o->shard) {
        int k = rep_db_foreign_runs(g_db, sweep_key(sw), other, sizeof other, err, sizeof err);
        if (k > 0) {
            fprintf(stderr, "sim: %s/results.db holds %d run%s of %s; a shard's folder holds "
                    "one sweep: use another --out, or the same scenario, variants, seeds, "
                    "overrides and grid as before\n", dir, k, k == 1 ? "" : "s",
                    other[0] ? "another sweep (key " : "no sweep (written by an older lbchain)");
            if (other[0]) fprintf(stderr, "sim: (that sweep's key is %s; this one's is %s)\n",
                                  other, sweep_key(sw));
            return EXIT_INPUT;
        }
        if (k < 0) fprintf(stderr, "sim: %s\n", err);
    }
    const char *const *paths, *const *texts;
    const size_t *lens;
    size_t nf = sweep_sources(sw, &paths, &texts, &lens);
    rep_db_sweep_t rec = { sweep_key(sw), scn_name(sweep_scn(sw, 0)), sweep_file(sw),
                           sweep_hash(sw), LB_VERSION, sweep_spec(sw),
                           (int64_t)sweep_run_count(sw), nf, paths, texts, lens };
    if (rep_db_sweep_put(g_db, &rec, err, sizeof err)) {
        fprintf(stderr, "sim: %s\n", err);
        rep_missing_add(miss, REP_MISSING_WRITE_FAILED, "results.db", "%s", err);
    }
    if (!o->shard) return EXIT_OK;
    resume_t r = { sw, items, n, lb_calloc(sweep_run_count(sw), sizeof(long)), res, state, 0 };
    for (size_t i = 0; i < sweep_run_count(sw); i++) r.item_of_run[i] = -1;
    for (size_t i = 0; i < n; i++) r.item_of_run[items[i].run] = (long)i;
    if (rep_db_results(g_db, sweep_key(sw), true, resume_cb, &r, err, sizeof err))
        fprintf(stderr, "sim: %s (every run of the shard is run again)\n", err);
    lb_free(r.item_of_run);
    *resumed = r.taken;
    return EXIT_OK;
}

/* Runs the items whose state is ITEM_PENDING (serially, or in --jobs worker processes).
 * Returns EXIT_OK or EXIT_INTERNAL. */
static int run_pending(sweep_t *sw, const opts_t *o, const item_t *items, size_t n,
                       const char *dir, bool tty, rep_variant_t *res, unsigned char *state,
                       char **why)
{
    size_t *todo = lb_calloc(n ? n : 1, sizeof *todo), nt = 0;
    for (size_t i = 0; i < n; i++)
        if (state[i] == ITEM_PENDING) todo[nt++] = i;
    int rc = EXIT_OK;
    if (o->jobs > 1 && nt > 1) {
        item_t *ti = lb_calloc(nt, sizeof *ti);
        rep_variant_t *tr = lb_calloc(nt, sizeof *tr);
        unsigned char *ts = lb_calloc(nt, sizeof *ts);
        char **tw = lb_calloc(nt, sizeof *tw);
        for (size_t k = 0; k < nt; k++) ti[k] = items[todo[k]];
        rc = run_parallel(sw, o, ti, nt, dir, tr, ts, tw);
        for (size_t k = 0; k < nt; k++) {
            res[todo[k]] = tr[k];
            state[todo[k]] = ts[k];
            why[todo[k]] = tw[k];
        }
        lb_free(ti);
        lb_free(tr);
        lb_free(ts);
        lb_free(tw);
    } else {
        for (size_t k = 0; k < nt && !g_interrupted; k++) {
            size_t i = todo[k];
            int irc = run_item(sw, o, &items[i], dir, tty, &res[i]);
            if (irc == EXIT_OK) {
                state[i] = ITEM_DONE;
            } else if (irc == EXIT_INTERRUPTED) {
                break;                  /* stopped while building: kept from starting */
            } else {
                state[i] = ITEM_LOST;
                why[i] = lb_strdup("it could not be built (internal error)");
                rc = EXIT_INTERNAL;
            }
        }
    }
    lb_free(todo);
    return rc;
}

/* Runs a sweep's items (a shard's share of them with --shard) and writes its results into
 * out_dir (NULL: results/<scenario>/<stamp>; "" with --check and no --out: nothing
 * written). Returns EXIT_OK, EXIT_INPUT (a shard's folder of another sweep), EXIT_INTERNAL
 * (a run lost) or EXIT_OUTPUT (an output could not be written). */
static int run_scenario(sweep_t *sw, const opts_t *o, const char *out_dir, size_t *failed,
                        size_t *total)
{
    scn_t *s = sweep_scn(sw, 0);
    bool tty = isatty(STDERR_FILENO) && !o->quiet && !o->check && o->jobs <= 1;
    size_t nr = sweep_run_count(sw), n = 0;
    item_t *items = lb_calloc(nr * 2 + 1, sizeof *items);
    for (size_t i = 0; i < nr; i++) {
        const sweep_run_t *ru = sweep_run_at(sw, i);
        item_t it = { ru->variant, ru->point, ru->seed, false, (long)i };
        if (o->real) {          /* per variant: the simulation (--compare), then reality */
            if (o->compare) items[n++] = it;
            it.real = true;
            it.run = -1;
        } else if (o->shard && !sweep_in_shard(i, o->shard_i, o->shard_n)) {
            continue;
        }
        items[n++] = it;
    }
    rep_variant_t *res = lb_calloc(n ? n : 1, sizeof *res);
    unsigned char *state = lb_calloc(n ? n : 1, sizeof *state);
    char **why = lb_calloc(n ? n : 1, sizeof *why);
    rep_missings_t miss = {0};                  /* what this scenario's results lack */
    int rc = EXIT_OK;
    char dir[4096] = "";
    bool write = !o->check || o->out || o->shard;
    if (write) {
        if (out_dir) snprintf(dir, sizeof dir, "%s", out_dir);
        else default_out(dir, sizeof dir, s);
        if (rep_mkdirs(dir)) {                  /* nothing could be written: nothing is run */
            fprintf(stderr, "sim: cannot create %s: %s\n", dir, strerror(errno));
            lb_free(items);
            lb_free(res);
            lb_free(state);
            lb_free(why);
            return EXIT_OUTPUT;
        }
        if (!o->no_db) {
            char path[4200], err[512];
            snprintf(path, sizeof path, "%s/results.db", dir);
            const char *slash = strrchr(dir, '/');
            snprintf(g_run_group, sizeof g_run_group, "%.255s", slash ? slash + 1 : dir);
            if (rep_db_open(path, &g_db, err, sizeof err)) {    /* the rest is still written */
                fprintf(stderr, "sim: %s\n", err);
                rep_missing_add(&miss, REP_MISSING_WRITE_FAILED, "results.db", "%s", err);
            }
        }
    }
    size_t resumed = 0;
    if (g_db) rc = sweep_record(sw, o, dir, items, n, res, state, &miss, &resumed);
    if (rc == EXIT_INPUT) {
        lb_free(items);
        lb_free(res);
        lb_free(state);
        lb_free(why);
        lb_vec_free(&miss);
        rep_db_close(g_db);
        g_db = NULL;
        return rc;
    }
    if (o->shard && !o->quiet)
        fprintf(stderr, "sim: shard %ld/%ld of sweep %s: %zu of its %zu runs%s; %zu already "
                "complete in %s/results.db\n", o->shard_i, o->shard_n, sweep_key(sw), n, nr,
                n == nr ? "" : " (index mod N)", resumed, dir);
    rc = exit_worse(rc, run_pending(sw, o, items, n, write ? dir : NULL, tty, res, state, why));
    /* in item order: what finished, and what is missing (a lost run, a run an interrupt
     * kept from starting, outputs of a run that could not be written) */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        char name[600];
        item_name(name, sizeof name, sw, &items[i]);
        if (state[i] == ITEM_LOST)
            rep_missing_add(&miss, REP_MISSING_RUN_LOST, name, "%s; its results are lost", why[i]);
        else if (state[i] == ITEM_PENDING)
            rep_missing_add(&miss, REP_MISSING_SKIPPED, name, "not run: interrupted before it "
                            "started");
        if (state[i] != ITEM_DONE) continue;
        for (size_t k = 0; k < res[i].missing.n; k++) lb_vec_push(&miss, res[i].missing.v[k]);
        res[m++] = res[i];
    }
    if (o->real && g_db && !o->compare) rep_db_attach_baselines(g_db, s, &res, &m);
    if (o->real) rep_compare_trim(res, m);
    if (!o->quiet && !o->check) {
        if (!o->probes_only) rep_print_table(stdout, s, res, m);
        if (rep_seed_stats_apply(res, m)) rep_print_seed_stats(stdout, res, m);
    }
    if (!o->quiet) rep_print_probes(stdout, res, m);
    if (!o->quiet) rep_print_netfilter(stdout, res, m);
    if (!o->quiet && o->real && !o->probes_only) rep_print_compare(stdout, res, m);
    if ((!o->quiet && !o->check) || o->explain) rep_print_explanations(stdout, res, m);
    if (!o->quiet) {
        if (!o->check) printf("\n");
        *failed += rep_print_verdicts(stdout, s, res, m);
    } else {
        for (size_t i = 0; i < m; i++)
            for (size_t k = 0; k < res[i].n_verdicts; k++) *failed += !res[i].verdicts[k].pass;
    }
    for (size_t i = 0; i < m; i++)
        if (!res[i].complete && !o->quiet) {
            char label[600];
            rep_variant_label(res, m, i, label, sizeof label);
            printf("INCOMPLETE  %s/%s seed %llu: interrupted before its duration\n",
                   scn_name(s), label, (unsigned long long)res[i].seed);
        }
    for (size_t i = 0; i < n && !o->quiet; i++)
        if (state[i] != ITEM_DONE) {
            char name[600];
            item_name(name, sizeof name, sw, &items[i]);
            printf("%-11s %s/%s: %s\n", state[i] == ITEM_LOST ? "LOST" : "NOT RUN",
                   scn_name(s), name + 4,
                   state[i] == ITEM_LOST ? why[i] : "interrupted before it started");
        }
    if (write) {
        /* plots, then report.html, then summary.json, so that each lists what failed
         * before it; a signal from here on stops gnuplot */
        char err[512];
        g_stop_writing = 0;
        if (!o->no_plots) {
            rep_plots_opts_t po = {o->plot_timeout, &g_stop_writing};
            int prc = rep_plots_write(dir, s, res, m, &po, err, sizeof err);
            if (prc) {
                fprintf(stderr, "sim: %s\n", err);
                rep_missing_add(&miss, prc == LB_EIO ? REP_MISSING_WRITE_FAILED
                                                     : REP_MISSING_SKIPPED, "plots", "%s", err);
            }
        }
        if (!o->no_pictures && m) {
            /* topology.*: the design of the first variant run, as built */
            int k = res[0].name ? scn_variant_find(s, res[0].name) : 0;
            scn_diag_t d;
            if (draw_design_write(s, k < 0 ? 0 : (size_t)k, res[0].seed, dir, "topology", &d))
                picture_failed(&miss, LB_EIO, "topology", d.msg);
            else
                picture_render(dir, "topology", &miss);
            pictures_check();
        }
        if (rep_html_write(dir, s, res, m, &miss, err, sizeof err)) {
            fprintf(stderr, "sim: %s\n", err);
            rep_missing_add(&miss, REP_MISSING_WRITE_FAILED, "report.html", "%s", err);
        }
        char shard[64];
        snprintf(shard, sizeof shard, "%ld/%ld", o->shard_i, o->shard_n);
        rep_sweep_info_t info = { LB_VERSION, sweep_hash(sw), sweep_key(sw), sweep_spec(sw),
                                  nr, o->shard ? shard : NULL };
        bool summary = rep_write_summary_sweep(dir, s, res, m, &miss, &info) == 0;
        if (!summary) rc = exit_worse(rc, EXIT_OUTPUT);
        /* a closing line on stderr naming every output lost to a failure (a skipped one --
         * no gnuplot, a slow one, an interrupt -- was reported when it happened) */
        char list[1024] = "";
        size_t len = 0, bad = 0;
        for (size_t i = 0; i < miss.n; i++) {
            if (miss.v[i].kind == REP_MISSING_SKIPPED) continue;
            rc = exit_worse(rc, miss.v[i].kind == REP_MISSING_RUN_LOST ? EXIT_INTERNAL
                                                                       : EXIT_OUTPUT);
            if (len < sizeof list)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", bad ? ", " : "",
                                        miss.v[i].output);
            bad++;
        }
        if (bad)
            fprintf(stderr, "sim: missing from %s/: %s; %s\n", dir, list,
                    summary ? "summary.json lists them under \"missing\""
                            : "summary.json could not be written either");
        if (summary && !o->quiet && !o->check) printf("\nresults: %s/\n", dir);
    }
    for (size_t i = 0; i < m; i++) {
        *total += res[i].n_verdicts;
        rep_variant_free(&res[i]);
    }
    for (size_t i = 0; i < n; i++) lb_free(why[i]);
    lb_free(why);
    lb_free(res);
    lb_free(state);
    lb_free(items);
    lb_vec_free(&miss);
    if (g_db) rep_db_close(g_db);
    g_db = NULL;
    return rc;
}

/* --emit-job: the job files for the sweep, on stdout. */
static int emit_job(const sweep_t *sw, const opts_t *o)
{
    char self[4096], out[4096], err[512];
    ssize_t l = readlink("/proc/self/exe", self, sizeof self - 1);
    snprintf(self + (l > 0 ? l : 0), sizeof self - (size_t)(l > 0 ? l : 0), "%s",
             l > 0 ? "" : "sim");
    const char *base = o->out ? o->out : "results";
    if (base[0] == '/' || !getcwd(out, sizeof out)) snprintf(out, sizeof out, "%s", base);
    else {
        size_t k = strlen(out);
        snprintf(out + k, sizeof out - k, "/%s", base);
    }
    sweep_emit_opts_t eo = { o->emit, o->shards, o->jobs > 1 ? o->jobs : 1, o->image, o->pvc,
                             out, self, SWEEP_EMIT_BACKOFF_PER_INDEX, o->pass.v, o->pass.n };
    if (sweep_emit(sw, &eo, stdout, err, sizeof err)) {
        fprintf(stderr, "sim: --emit-job %s: %s\n", o->emit, err);
        return EXIT_INPUT;
    }
    if (fflush(stdout)) {
        fprintf(stderr, "sim: --emit-job: cannot write: %s\n", strerror(errno));
        return EXIT_OUTPUT;
    }
    if (!o->quiet)
        fprintf(stderr, "sim: %s for sweep %s: %zu runs in %ld shards (%s)\n",
                !strcmp(o->emit, "k8s") ? "Kubernetes manifest" : "Slurm script",
                sweep_key(sw), sweep_run_count(sw), o->shards,
                !strcmp(o->emit, "k8s") ? "kubectl apply -f FILE" : "bash FILE");
    return EXIT_OK;
}

/* --merge OUT_DIR SHARD_DIR... */
static int merge(const opts_t *o, char **dirs, size_t n)
{
    if (!n) {
        fprintf(stderr, "sim: --merge %s: which shards? give their folders (or results.db "
                "files) after it\n", o->merge);
        return EXIT_INPUT;
    }
    sweep_merge_opts_t mo = { o->merge_batch ? (size_t)o->merge_batch
                                             : SWEEP_MERGE_ATTACH_DEFAULT,
                              o->plot_timeout, o->no_plots, o->quiet, o->check, o->explain,
                              &g_stop_writing };
    return sweep_merge(o->merge, (const char *const *)dirs, n, &mo);
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
    struct sigaction wa = {0};
    wa.sa_handler = on_watchdog;
    sigemptyset(&wa.sa_mask);
    sigaction(SIGALRM, &wa, NULL);
    struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGALRM };
    g_have_watchdog = timer_create(CLOCK_MONOTONIC, &sev, &g_watchdog) == 0;
    if (o.list_types) {
        list_types();
        return EXIT_OK;
    }
    if (o.merge) {
        rc = merge(&o, argv + optind, (size_t)(argc - optind));
        lb_vec_free(&o.pass);
        return g_interrupted ? exit_worse(rc, EXIT_INTERRUPTED) : rc;
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_INPUT;
    }
    size_t nfiles = (size_t)(argc - optind);
    if ((o.shard || o.emit) && nfiles != 1) {
        fprintf(stderr, "sim: %s takes one scenario (a sweep is one scenario); got %zu\n",
                o.shard ? "--shard" : "--emit-job", nfiles);
        return EXIT_INPUT;
    }
    if (o.shard) {
        char err[512];
        if (sweep_shard_resolve(o.shard_arg, o.shards, &o.shard_i, &o.shard_n, err,
                                sizeof err)) {
            fprintf(stderr, "sim: %s\n", err);
            return EXIT_INPUT;
        }
    }
    if (o.real) {
        scn_diag_t d;
        if (real_bindings_load(o.real, &o.bindings, &d)) {
            scn_diag_print(&d, stderr);
            return EXIT_INPUT;
        }
    }
    sweep_t **sws = lb_calloc(nfiles, sizeof *sws);
    sweep_opts_t so = { o.variants.v, o.variants.n, o.has_seed, o.seed, (size_t)o.seeds,
                        o.sets.v, o.sets.n, o.axes.v, o.axes.n, o.no_expect, stderr };
    /* Phase 1: load and validate everything; nothing is written on bad input. */
    for (size_t f = 0; f < nfiles && rc == EXIT_OK; f++) {
        scn_diag_t d;
        int lrc = sweep_new(argv[optind + f], &so, &sws[f], &d);
        if (lrc) {
            rc = load_failed(lrc, &d, argv[optind + f]);
            break;
        }
        rc = validate(sws[f], &o);
    }
    if (rc == EXIT_OK && g_interrupted) {          /* a signal just after validation */
        fprintf(stderr, "sim: interrupted before the first run; nothing written\n");
        rc = EXIT_INTERRUPTED;
    }
    if (rc == EXIT_INTERRUPTED) exit(rc);          /* releasing it all could take long */
    g_loading = 0;
    outdir_t *od = NULL;
    bool one_shot = o.dump_node || o.validate_only || o.draw || o.describe || o.render_dir ||
                    o.flow_fate || o.emit;
    if (rc == EXIT_OK && o.dump_node) {
        rc = dump_iptables(sweep_scn(sws[0], 0), &o, sweep_run_at(sws[0], 0)->variant);
    } else if (rc == EXIT_OK && o.validate_only) {
        if (!o.quiet)
            for (size_t f = 0; f < nfiles; f++) {
                idxvec_t vs = {0};
                sweep_variants(sws[f], &vs);
                size_t np = sweep_point_count(sws[f]);
                char at[64] = "";
                if (np > 1) snprintf(at, sizeof at, " at %zu grid points", np);
                printf("%s: %zu variant%s%s valid\n", sweep_file(sws[f]), vs.n,
                       vs.n == 1 ? "" : "s", at);
                lb_vec_free(&vs);
            }
    } else if (rc == EXIT_OK && o.draw) {
        for (size_t f = 0; f < nfiles && rc == EXIT_OK; f++) {
            idxvec_t vs = {0};
            sweep_variants(sws[f], &vs);
            rc = draw_only(sweep_scn(sws[f], 0), &o, vs.v, vs.n);
            lb_vec_free(&vs);
        }
    } else if (rc == EXIT_OK && (o.describe || o.render_dir || o.flow_fate)) {
        rc = real_chain(sweep_scn(sws[0], 0), &o, sweep_run_at(sws[0], 0)->variant);
    } else if (rc == EXIT_OK && o.emit) {
        rc = emit_job(sws[0], &o);
    } else if (rc == EXIT_OK && (o.out || o.shard)) {
        /* Phase 1b: --out DIR/<scenario> (a shard's .../sweep-<key>/shard-I-of-N) is ours
         * alone, or nothing is run. */
        od = lb_calloc(nfiles, sizeof *od);
        rc = outdirs_take(sws, nfiles, &o, od);
    }
    if (rc == EXIT_OK && !one_shot) {
        /* Phase 2: run. A scenario whose outputs fail does not stop the next one. */
        size_t failed = 0, total = 0;
        for (size_t f = 0; f < nfiles && !g_interrupted; f++)
            rc = exit_worse(rc, run_scenario(sws[f], &o, od ? od[f].path : NULL, &failed,
                                             &total));
        if (o.check && !g_interrupted)
            printf("expectations: %zu passed, %zu failed\n", total - failed, failed);
        if (g_interrupted) rc = EXIT_INTERRUPTED;
        if (g_unreachable) {
            fprintf(stderr, "sim: real mode reached nothing: every request and probe failed "
                    "before a connection was made (exit status %d)\n", EXIT_UNREACHABLE);
            rc = exit_worse(rc, EXIT_UNREACHABLE);
        }
        /* a shard's expectations are judged by --merge, unless --check asks */
        if (failed && (!o.shard || o.check)) rc = exit_worse(rc, EXIT_EXPECT);
    }
    outdirs_release(od, nfiles);
    lb_free(od);
    for (size_t f = 0; f < nfiles; f++) sweep_free(sws[f]);
    lb_free(sws);
    lb_vec_free(&o.variants);
    lb_vec_free(&o.sets);
    lb_vec_free(&o.checkers);
    lb_vec_free(&o.axes);
    lb_vec_free(&o.pass);
    real_bindings_free(o.bindings);
    return rc;
}
