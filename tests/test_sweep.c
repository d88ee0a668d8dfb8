/* test_sweep.c -- sweeps: the grid's canonical order and labels, run ids (stable, and
 * different whenever the variant, seed, overrides or version differ; the order --set
 * options are given in does not matter), the scenario content hash (the same files hash
 * the same wherever they are, a changed included file changes it), a sweep rebuilt from
 * what results.db stores, shards (every run in exactly one), the shard index from the
 * command line, a Kubernetes Indexed Job or a Slurm array, and the job files: the
 * Kubernetes manifest parsed as YAML (kinds, completion mode, completions, the failure
 * policy) and its ConfigMap mounted back into a folder giving the same sweep. */
#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "report.h"
#include "sweep.h"

static char tmp[64];

static int rm_entry(const char *p, const struct stat *st, int f, struct FTW *w)
{
    (void)st; (void)f; (void)w;
    return remove(p);
}

static void setup(void)
{
    elem_register_builtin();
    snprintf(tmp, sizeof tmp, "/tmp/lbchain-sweeptest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmp));
}

static void teardown(void)
{
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    scn_ignore_expectations(false);
}

static sweep_t *load(const char *file, const sweep_opts_t *o)
{
    sweep_t *sw = NULL;
    scn_diag_t d;
    int rc = sweep_new(file, o, &sw, &d);
    if (rc) scn_diag_print(&d, stderr);
    ck_assert_int_eq(rc, 0);
    return sw;
}

static void put(const char *dir, const char *rel, const char *text, size_t len)
{
    char *path = lb_sprintf("%s/%s", dir, rel);
    char *sl = strrchr(path, '/');
    *sl = '\0';
    ck_assert_int_eq(rep_mkdirs(path), 0);
    *sl = '/';
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    fclose(f);
    lb_free(path);
}

/* Writes sw's scenario files under dir; returns the scenario file's path there. */
static char *copy_sources(const sweep_t *sw, const char *dir)
{
    for (size_t i = 0; i < sweep_source_count(sw); i++) {
        size_t len;
        const char *t = sweep_source_text(sw, i, &len);
        put(dir, sweep_source_path(sw, i), t, len);
    }
    return lb_sprintf("%s/%s", dir, sweep_source_path(sw, 0));
}

/* ---- the grid and run ids -------------------------------------------------------------- */

START_TEST(grid_order_and_labels)
{
    const char *axes[] = {"traffic.browse.rate=40/s,60/s,80/s", "links.0.latency=1ms,2ms"};
    sweep_opts_t o = { .seeds = 2, .axes = axes, .n_axes = 2 };
    sweep_t *sw = load("scenarios/core-nat.yaml", &o);
    ck_assert_uint_eq(sweep_point_count(sw), 6);
    ck_assert_uint_eq(sweep_run_count(sw), 2 * 6 * 2);     /* variants x points x seeds */
    ck_assert_str_eq(sweep_point_label(sw, 0), "traffic.browse.rate=40/s links.0.latency=1ms");
    ck_assert_str_eq(sweep_point_label(sw, 1), "traffic.browse.rate=40/s links.0.latency=2ms");
    ck_assert_str_eq(sweep_point_label(sw, 5), "traffic.browse.rate=80/s links.0.latency=2ms");
    /* the overrides a run id hashes: in key order, whatever the order of the axes */
    ck_assert_str_eq(sweep_overrides(sw, 5), "links.0.latency=2ms\ntraffic.browse.rate=80/s");
    /* canonical order: variant, then point, then seed */
    const sweep_run_t *r = sweep_run_at(sw, 5);
    ck_assert_uint_eq(r->variant, 0);
    ck_assert_uint_eq(r->point, 2);
    ck_assert_uint_eq(r->seed, 43);
    ck_assert_uint_eq(sweep_run_at(sw, 12)->variant, 1);
    ck_assert_ptr_ne(sweep_scn(sw, 4), sweep_scn(sw, 0));      /* one scenario per point */
    /* ids: distinct, 16 hex digits, found again */
    for (size_t i = 0; i < sweep_run_count(sw); i++) {
        const char *id = sweep_run_at(sw, i)->id;
        ck_assert_uint_eq(strlen(id), SWEEP_ID_HEX);
        ck_assert_int_eq(sweep_run_find(sw, id), (long)i);
        for (size_t k = 0; k < i; k++) ck_assert_str_ne(sweep_run_at(sw, k)->id, id);
    }
    ck_assert_int_eq(sweep_run_find(sw, "0123456789abcdef"), -1);
    ck_assert_int_eq(sweep_run_find(sw, "not an id"), -1);
    sweep_free(sw);
}
END_TEST

START_TEST(run_ids_stable)
{
    char a[SWEEP_ID_HEX + 1], b[SWEEP_ID_HEX + 1];
    sweep_run_id("0.1.0", "h", "v", 42, "k=1", a);
    sweep_run_id("0.1.0", "h", "v", 42, "k=1", b);
    ck_assert_str_eq(a, b);
    const char *other[][5] = {{"0.2.0", "h", "v", "42", "k=1"}, {"0.1.0", "g", "v", "42", "k=1"},
                              {"0.1.0", "h", "w", "42", "k=1"}, {"0.1.0", "h", "v", "43", "k=1"},
                              {"0.1.0", "h", "v", "42", "k=2"}, {"0.1.0", "h", "v", "42", ""}};
    for (size_t i = 0; i < sizeof other / sizeof other[0]; i++) {
        sweep_run_id(other[i][0], other[i][1], other[i][2], strtoull(other[i][3], NULL, 10),
                     other[i][4], b);
        ck_assert_str_ne(a, b);
    }
    /* separators: "ab"+"c" is not "a"+"bc" */
    sweep_run_id("0.1.0", "h", "ab", 1, "c", a);
    sweep_run_id("0.1.0", "h", "a", 1, "bc", b);
    ck_assert_str_ne(a, b);
    /* the same command line twice, and --set in another order: the same ids */
    const char *s1[] = {"traffic.browse.rate=70/s", "traffic.browse.connect-timeout=2s"};
    const char *s2[] = {"traffic.browse.connect-timeout=2s", "traffic.browse.rate=70/s"};
    sweep_opts_t o1 = { .sets = s1, .n_sets = 2 }, o2 = { .sets = s2, .n_sets = 2 };
    sweep_t *x = load("scenarios/core-nat.yaml", &o1), *y = load("scenarios/core-nat.yaml", &o2);
    ck_assert_str_eq(sweep_key(x), sweep_key(y));
    for (size_t i = 0; i < sweep_run_count(x); i++)
        ck_assert_str_eq(sweep_run_at(x, i)->id, sweep_run_at(y, i)->id);
    /* a later --set of the same key wins, and only it counts */
    const char *s3[] = {"traffic.browse.rate=5/s", "traffic.browse.rate=70/s",
                        "traffic.browse.connect-timeout=2s"};
    sweep_opts_t o3 = { .sets = s3, .n_sets = 3 };
    sweep_t *z = load("scenarios/core-nat.yaml", &o3);
    ck_assert_str_eq(sweep_run_at(z, 0)->id, sweep_run_at(x, 0)->id);
    /* a run of a sweep has the id of the same run alone: -v, --seed */
    const char *v[] = {"no-masquerade"};
    sweep_opts_t o4 = { .variants = v, .n_variants = 1, .has_seed = true, .seed = 42,
                        .sets = s1, .n_sets = 2 };
    sweep_t *w = load("scenarios/core-nat.yaml", &o4);
    ck_assert_uint_eq(sweep_run_count(w), 1);
    ck_assert_str_eq(sweep_run_at(w, 0)->id, sweep_run_at(x, 1)->id);
    ck_assert_str_ne(sweep_key(w), sweep_key(x));          /* another sweep, though */
    sweep_free(x);
    sweep_free(y);
    sweep_free(z);
    sweep_free(w);
}
END_TEST

/* ---- bad sweep options: exit status 2 with the position in the argument ---------------- */

START_TEST(bad_options)
{
    static const struct { const char *axis, *set, *want; } cases[] = {
        {"traffic.browse.rate", NULL, "<command line>:1:1: --sweep expects KEY=V1,V2,..."},
        {"traffic.browse.rate=50/s,,60/s", NULL,
         "<command line>:1:26: --sweep traffic.browse.rate: empty value"},
        {"traffic.browse.rate=50/s,50/s", NULL,
         "<command line>:1:26: --sweep traffic.browse.rate: value '50/s' is given twice"},
        {"traffic.browse.rate=50/s,fast", NULL,
         "<command line>:1:26: --sweep traffic.browse.rate, value 2: rate: expected a rate"},
        {"nodes.nat.iptables=[\"-j ACCEPT\",[x", NULL, "--sweep nodes.nat.iptables: unbalanced"},
        {"traffic.browse.rate=50/s", "traffic.browse.rate=1/s",
         "--sweep traffic.browse.rate: the key is also fixed with --set"},
        {"traffic.nope.rate=1/s", NULL, "cannot set 'traffic.nope.rate'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sweep_opts_t o = { .axes = &cases[i].axis, .n_axes = 1, .sets = &cases[i].set,
                           .n_sets = cases[i].set ? 1 : 0 };
        sweep_t *sw = NULL;
        scn_diag_t d;
        ck_assert_int_eq(sweep_new("scenarios/core-nat.yaml", &o, &sw, &d), LB_EINVAL);
        ck_assert_ptr_null(sw);
        char *got = lb_sprintf("%s:%d:%d: %s", d.file, d.line, d.col, d.msg);
        if (!strstr(got, cases[i].want))
            ck_abort_msg("case %zu: got '%s', want '%s'", i, got, cases[i].want);
        lb_free(got);
    }
    const char *v = "nope";
    sweep_opts_t o = { .variants = &v, .n_variants = 1 };
    sweep_t *sw = NULL;
    scn_diag_t d;
    ck_assert_int_eq(sweep_new("scenarios/core-nat.yaml", &o, &sw, &d), LB_EINVAL);
    ck_assert_str_eq(d.msg, "no variant 'nope'; variants are: masquerade no-masquerade");
}
END_TEST

/* ---- the content hash -------------------------------------------------------------------- */

START_TEST(content_hash)
{
    sweep_opts_t o = { .seeds = 1 };
    sweep_t *sw = load("scenarios/aks-probe-404.yaml", &o);
    /* the scenario file and every file it includes (variants' too), relative paths */
    ck_assert_uint_eq(sweep_source_count(sw), 8);
    ck_assert_str_eq(sweep_source_path(sw, 0), "aks-probe-404.yaml");
    bool health = false;
    for (size_t i = 0; i < sweep_source_count(sw); i++)
        health |= !strcmp(sweep_source_path(sw, i), "k8s/health-route.yaml");
    ck_assert(health);
    ck_assert_uint_eq(strlen(sweep_hash(sw)), SWEEP_HASH_HEX);
    /* the same files elsewhere: the same hash, key and ids */
    char *d1 = lb_sprintf("%s/a", tmp), *d2 = lb_sprintf("%s/b/c", tmp);
    char *f1 = copy_sources(sw, d1), *f2 = copy_sources(sw, d2);
    sweep_t *c1 = load(f1, &o);
    ck_assert_str_eq(sweep_hash(c1), sweep_hash(sw));
    ck_assert_str_eq(sweep_key(c1), sweep_key(sw));
    ck_assert_str_eq(sweep_run_at(c1, 1)->id, sweep_run_at(sw, 1)->id);
    /* one byte more in an included file: another scenario */
    char *inc = lb_sprintf("%s/k8s/health-route.yaml", d2);
    FILE *f = fopen(inc, "a");
    ck_assert_ptr_nonnull(f);
    fputs("\n", f);
    fclose(f);
    sweep_t *c2 = load(f2, &o);
    ck_assert_str_ne(sweep_hash(c2), sweep_hash(sw));
    ck_assert_str_ne(sweep_key(c2), sweep_key(sw));
    ck_assert_str_ne(sweep_run_at(c2, 0)->id, sweep_run_at(sw, 0)->id);
    sweep_free(sw);
    sweep_free(c1);
    sweep_free(c2);
    lb_free(d1);
    lb_free(d2);
    lb_free(f1);
    lb_free(f2);
    lb_free(inc);
}
END_TEST

/* What results.db keeps of a sweep loads into the same sweep (the merge's view). */
START_TEST(from_stored)
{
    const char *axes[] = {"cloud.appgw.probe.interval=5s,10s"};
    const char *sets[] = {"duration=60s"};
    const char *v[] = {"with-health-route"};
    sweep_opts_t o = { .seeds = 3, .axes = axes, .n_axes = 1, .sets = sets, .n_sets = 1,
                       .variants = v, .n_variants = 1, .no_expect = true };
    sweep_t *sw = load("scenarios/aks-probe-404.yaml", &o);
    const char *const *paths, *const *texts;
    const size_t *lens;
    size_t n = sweep_sources(sw, &paths, &texts, &lens);
    sweep_t *back = NULL;
    scn_diag_t d;
    ck_assert_int_eq(sweep_from_stored(sweep_spec(sw), "scenarios/aks-probe-404.yaml", paths,
                                       texts, lens, n, NULL, &back, &d), 0);
    ck_assert_str_eq(sweep_key(back), sweep_key(sw));
    ck_assert_str_eq(sweep_hash(back), sweep_hash(sw));
    ck_assert_str_eq(sweep_file(back), "scenarios/aks-probe-404.yaml");    /* its name */
    ck_assert_uint_eq(sweep_run_count(back), 6);
    for (size_t i = 0; i < 6; i++)
        ck_assert_str_eq(sweep_run_at(back, i)->id, sweep_run_at(sw, i)->id);
    sweep_free(back);
    /* a path leaving the folder, a definition of another format: refused */
    const char *bad[] = {"../x.yaml"};
    ck_assert_int_eq(sweep_from_stored(sweep_spec(sw), NULL, bad, texts, lens, 1, NULL, &back,
                                       &d), LB_EPARSE);
    ck_assert_int_eq(sweep_from_stored("{\"format\": 9}", NULL, paths, texts, lens, n, NULL,
                                       &back, &d), LB_EPARSE);
    ck_assert_ptr_null(back);
    sweep_free(sw);
}
END_TEST

/* ---- shards -------------------------------------------------------------------------------- */

START_TEST(shards_partition)
{
    for (long n = 1; n <= 7; n++) {
        size_t total = 0;
        for (size_t idx = 0; idx < 20; idx++) {
            int in = 0;
            for (long i = 0; i < n; i++) in += sweep_in_shard(idx, i, n);
            ck_assert_int_eq(in, 1);                /* every run in exactly one shard */
            total += (size_t)in;
        }
        ck_assert_uint_eq(total, 20);
    }
}
END_TEST

START_TEST(shard_from_environment)
{
    long i, n;
    char err[512];
    unsetenv("JOB_COMPLETION_INDEX");
    unsetenv("SLURM_ARRAY_TASK_ID");
    ck_assert_int_eq(sweep_shard_resolve("2/5", 0, &i, &n, err, sizeof err), 0);
    ck_assert(i == 2 && n == 5);
    ck_assert_int_eq(sweep_shard_resolve("2", 4, &i, &n, err, sizeof err), 0);
    ck_assert(i == 2 && n == 4);
    ck_assert_int_eq(sweep_shard_resolve("2", 0, &i, &n, err, sizeof err), LB_EINVAL);
    ck_assert_int_eq(sweep_shard_resolve("5/5", 0, &i, &n, err, sizeof err), LB_EINVAL);
    ck_assert_int_eq(sweep_shard_resolve("1/0", 0, &i, &n, err, sizeof err), LB_EINVAL);
    ck_assert_int_eq(sweep_shard_resolve("-1/3", 0, &i, &n, err, sizeof err), LB_EINVAL);
    ck_assert_int_eq(sweep_shard_resolve("1/3", 4, &i, &n, err, sizeof err), LB_EINVAL);
    ck_assert_int_eq(sweep_shard_resolve(NULL, 4, &i, &n, err, sizeof err), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "JOB_COMPLETION_INDEX"));
    /* Kubernetes: the index from the pod, N from --shards */
    setenv("JOB_COMPLETION_INDEX", "3", 1);
    ck_assert_int_eq(sweep_shard_resolve(NULL, 4, &i, &n, err, sizeof err), 0);
    ck_assert(i == 3 && n == 4);
    ck_assert_int_eq(sweep_shard_resolve(NULL, 0, &i, &n, err, sizeof err), LB_EINVAL);
    ck_assert_int_eq(sweep_shard_resolve(NULL, 3, &i, &n, err, sizeof err), LB_EINVAL);
    setenv("JOB_COMPLETION_INDEX", "x", 1);
    ck_assert_int_eq(sweep_shard_resolve(NULL, 4, &i, &n, err, sizeof err), LB_EINVAL);
    unsetenv("JOB_COMPLETION_INDEX");
    /* Slurm: --array=4-6 gives shards 0..2 of 3; with --shards the task id is the shard */
    setenv("SLURM_ARRAY_TASK_ID", "5", 1);
    setenv("SLURM_ARRAY_TASK_COUNT", "3", 1);
    setenv("SLURM_ARRAY_TASK_MIN", "4", 1);
    setenv("SLURM_ARRAY_TASK_MAX", "6", 1);
    ck_assert_int_eq(sweep_shard_resolve(NULL, 0, &i, &n, err, sizeof err), 0);
    ck_assert(i == 1 && n == 3);
    ck_assert_int_eq(sweep_shard_resolve(NULL, 8, &i, &n, err, sizeof err), 0);
    ck_assert(i == 5 && n == 8);
    /* --array=1,5,7 (a resubmitted subset): not consecutive, --shards needed */
    setenv("SLURM_ARRAY_TASK_MIN", "1", 1);
    setenv("SLURM_ARRAY_TASK_MAX", "7", 1);
    ck_assert_int_eq(sweep_shard_resolve(NULL, 0, &i, &n, err, sizeof err), LB_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "--shards"));
    ck_assert_int_eq(sweep_shard_resolve(NULL, 8, &i, &n, err, sizeof err), 0);
    ck_assert(i == 5 && n == 8);
    unsetenv("SLURM_ARRAY_TASK_ID");
    unsetenv("SLURM_ARRAY_TASK_COUNT");
    unsetenv("SLURM_ARRAY_TASK_MIN");
    unsetenv("SLURM_ARRAY_TASK_MAX");
}
END_TEST

/* ---- job files ------------------------------------------------------------------------------- */

static const scn_node_t *at(const scn_node_t *n, const char *path)
{
    char *p = lb_strdup(path), *save = NULL;
    for (char *c = strtok_r(p, ".", &save); c && n; c = strtok_r(NULL, ".", &save)) {
        if (c[0] >= '0' && c[0] <= '9') n = scn_node_at(n, (size_t)atoi(c));
        else n = scn_node_get(n, c);
    }
    lb_free(p);
    return n;
}

static const char *str_at(const scn_node_t *n, const char *path)
{
    const scn_node_t *x = at(n, path);
    if (!x) ck_abort_msg("no %s in the manifest", path);
    return scn_node_str(x);
}

static char *emit(const sweep_t *sw, const sweep_emit_opts_t *eo)
{
    char *text = NULL, err[512] = "";
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    int rc = sweep_emit(sw, eo, f, err, sizeof err);
    fclose(f);
    if (rc) ck_abort_msg("sweep_emit: %s", err);
    return text;
}

START_TEST(k8s_manifest)
{
    const char *axes[] = {"traffic.browse.rate=10/s,20/s"};
    sweep_opts_t o = { .seeds = 5, .axes = axes, .n_axes = 1 };
    sweep_t *sw = load("scenarios/aks-dsr.yaml", &o);
    const char *args[] = {"--seeds", "5", "--sweep", "traffic.browse.rate=10/s,20/s"};
    sweep_emit_opts_t eo = { "k8s", 7, 2, "registry.example/lbchain:0.1", "sweep-results",
                             NULL, NULL, SWEEP_EMIT_BACKOFF_PER_INDEX, args, 4 };
    char *text = emit(sw, &eo);
    scn_docs_t *docs = NULL;
    scn_diag_t d;
    if (scn_docs_load_string(text, "job.yaml", &docs, &d)) {
        scn_diag_print(&d, stderr);
        ck_abort_msg("the manifest is not YAML");
    }
    ck_assert_uint_eq(scn_docs_count(docs), 2);
    const scn_node_t *cm = scn_docs_at(docs, 0), *job = scn_docs_at(docs, 1);
    ck_assert_str_eq(str_at(cm, "kind"), "ConfigMap");
    ck_assert_str_eq(str_at(job, "apiVersion"), "batch/v1");
    ck_assert_str_eq(str_at(job, "kind"), "Job");
    ck_assert_str_eq(str_at(job, "spec.completionMode"), "Indexed");
    ck_assert_str_eq(str_at(job, "spec.completions"), "7");
    ck_assert_str_eq(str_at(job, "spec.parallelism"), "7");
    ck_assert_str_eq(str_at(job, "spec.backoffLimitPerIndex"), "3");
    ck_assert_str_eq(str_at(job, "spec.template.spec.restartPolicy"), "Never");
    /* bad input fails its index at once; a disruption is not a failure */
    ck_assert_str_eq(str_at(job, "spec.podFailurePolicy.rules.0.action"), "FailIndex");
    ck_assert_str_eq(str_at(job, "spec.podFailurePolicy.rules.0.onExitCodes.containerName"), "sim");
    ck_assert_str_eq(str_at(job, "spec.podFailurePolicy.rules.0.onExitCodes.operator"), "In");
    ck_assert_uint_eq(scn_node_len(at(job, "spec.podFailurePolicy.rules.0.onExitCodes.values")), 1);
    ck_assert_str_eq(str_at(job, "spec.podFailurePolicy.rules.0.onExitCodes.values.0"), "2");
    ck_assert_str_eq(str_at(job, "spec.podFailurePolicy.rules.1.action"), "Ignore");
    ck_assert_str_eq(str_at(job, "spec.podFailurePolicy.rules.1.onPodConditions.0.type"),
                     "DisruptionTarget");
    const scn_node_t *c = at(job, "spec.template.spec.containers.0");
    ck_assert_str_eq(str_at(c, "name"), "sim");
    ck_assert_str_eq(str_at(c, "image"), "registry.example/lbchain:0.1");
    ck_assert_str_eq(str_at(c, "resources.requests.cpu"), "2");
    /* the results volume is the PVC, where --out points */
    ck_assert_str_eq(str_at(job, "spec.template.spec.volumes.1.persistentVolumeClaim.claimName"),
                     "sweep-results");
    ck_assert_str_eq(str_at(c, "volumeMounts.1.mountPath"), "/results");
    const scn_node_t *a = at(c, "args");
    size_t na = scn_node_len(a);
    ck_assert_str_eq(scn_node_str(scn_node_at(a, 0)), "--shard");     /* index from the pod */
    ck_assert_str_eq(scn_node_str(scn_node_at(a, 1)), "--shards");
    ck_assert_str_eq(scn_node_str(scn_node_at(a, 2)), "7");
    ck_assert_str_eq(scn_node_str(scn_node_at(a, 3)), "--out");
    ck_assert_str_eq(scn_node_str(scn_node_at(a, 4)), "/results");
    ck_assert_str_eq(scn_node_str(scn_node_at(a, na - 1)), "/scenario/aks-dsr.yaml");
    /* the ConfigMap mounted at /scenario gives the files back, byte for byte, where they
     * were: a sweep loaded from there is the same sweep */
    const scn_node_t *items = at(job, "spec.template.spec.volumes.0.configMap.items");
    ck_assert_str_eq(str_at(job, "spec.template.spec.volumes.0.configMap.name"),
                     str_at(cm, "metadata.name"));
    ck_assert_uint_eq(scn_node_len(items), sweep_source_count(sw));
    char *mnt = lb_sprintf("%s/scenario", tmp);
    for (size_t i = 0; i < scn_node_len(items); i++) {
        const scn_node_t *it = scn_node_at(items, i);
        const char *data = scn_node_str(scn_node_get(at(cm, "data"), str_at(it, "key")));
        size_t len;
        ck_assert_str_eq(data, sweep_source_text(sw, i, &len));
        put(mnt, str_at(it, "path"), data, strlen(data));
    }
    char *main_file = lb_sprintf("%s/%s", tmp, scn_node_str(scn_node_at(a, na - 1)) + 1);
    sweep_t *pod = load(main_file, &o);
    ck_assert_str_eq(sweep_key(pod), sweep_key(sw));
    ck_assert_str_eq(scn_node_str(scn_node_at(a, 5)), "--jobs");
    ck_assert_str_eq(scn_node_str(scn_node_at(a, 6)), "2");
    ck_assert_uint_eq(na, 7 + 4 + 1);
    for (size_t k = 0; k < 4; k++)                      /* the sweep options, as given */
        ck_assert_str_eq(scn_node_str(scn_node_at(a, 7 + k)), args[k]);
    sweep_free(pod);
    lb_free(main_file);
    lb_free(mnt);
    scn_docs_free(docs);
    free(text);
    /* no image or PVC, or a PVC name Kubernetes refuses: an error, nothing written */
    char err[512];
    FILE *f = fopen("/dev/null", "w");
    sweep_emit_opts_t bad = eo;
    bad.image = NULL;
    ck_assert_int_eq(sweep_emit(sw, &bad, f, err, sizeof err), LB_EINVAL);
    bad = eo;
    bad.pvc = "Not_A_Name";
    ck_assert_int_eq(sweep_emit(sw, &bad, f, err, sizeof err), LB_EINVAL);
    fclose(f);
    sweep_free(sw);
}
END_TEST

/* Texts a plain literal block would not carry as they are -- a first line starting with a
 * space, several final newlines, none, a tab, CRLF line ends -- come back byte for byte. */
START_TEST(k8s_awkward_text)
{
    static const char *const texts[] = {
        "  # indented first line\nname: odd\nduration: 1s\t# tab\nnodes: { a: { type: host } }\n\n\n",
        "name: odd\nduration: 1s\nnodes: { a: { type: host } }",
        "name: odd\r\nduration: 1s\r\nnodes: { a: { type: host } }\r\n",
    };
    char *file = lb_sprintf("%s/odd.yaml", tmp);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        put(tmp, "odd.yaml", texts[i], strlen(texts[i]));
        sweep_opts_t o = {0};
        sweep_t *sw = load(file, &o);
        sweep_emit_opts_t eo = { "k8s", 2, 1, "img", "pvc", NULL, NULL, 1, NULL, 0 };
        char *text = emit(sw, &eo);
        scn_docs_t *docs = NULL;
        scn_diag_t d;
        ck_assert_int_eq(scn_docs_load_string(text, "job.yaml", &docs, &d), 0);
        const scn_node_t *data = at(scn_docs_at(docs, 0), "data");
        ck_assert_str_eq(scn_node_str(scn_node_get(data, "00-odd.yaml")), texts[i]);
        scn_docs_free(docs);
        free(text);
        sweep_free(sw);
    }
    lb_free(file);
}
END_TEST

START_TEST(slurm_script)
{
    sweep_opts_t o = { .seeds = 4 };
    sweep_t *sw = load("scenarios/core-nat.yaml", &o);
    const char *args[] = {"--seeds", "4", "--set", "traffic.browse.rate=it's 5/s"};
    sweep_emit_opts_t eo = { "slurm", 6, 2, NULL, NULL, "/shared/results", "/opt/lbchain/sim",
                             0, args, 4 };
    char *text = emit(sw, &eo);
    ck_assert_ptr_nonnull(strstr(text, "#!/bin/bash\n"));
    ck_assert_ptr_nonnull(strstr(text, "#SBATCH --array=0-5\n"));
    ck_assert_ptr_nonnull(strstr(text, "#SBATCH --cpus-per-task=2\n"));
    char *out = lb_sprintf("#SBATCH --output=/shared/results/core-nat/sweep-%s/logs/shard-%%a.out\n",
                           sweep_key(sw));
    ck_assert_ptr_nonnull(strstr(text, out));
    lb_free(out);
    ck_assert_ptr_nonnull(strstr(text, "exec '/opt/lbchain/sim' --shard --shards 6 --jobs 2 "
                                       "--out '/shared/results' '--seeds' '4' '--set' "
                                       "'traffic.browse.rate=it'\\''s 5/s' '/"));
    ck_assert_ptr_nonnull(strstr(text, "--dependency=\"afterany:${array%%;*}\""));
    char *merge = lb_sprintf("--merge /shared/results/core-nat/sweep-%s/merged "
                             "/shared/results/core-nat/sweep-%s/shard-*-of-6\n", sweep_key(sw),
                             sweep_key(sw));
    ck_assert_ptr_nonnull(strstr(text, merge));
    lb_free(merge);
    free(text);
    char err[512];
    FILE *f = fopen("/dev/null", "w");
    eo.out = "/shared/my results";
    ck_assert_int_eq(sweep_emit(sw, &eo, f, err, sizeof err), LB_EINVAL);
    eo.out = "/shared/results";
    eo.shards = 0;
    ck_assert_int_eq(sweep_emit(sw, &eo, f, err, sizeof err), LB_EINVAL);
    fclose(f);
    sweep_free(sw);
}
END_TEST

Suite *suite_sweep(void)
{
    Suite *s = suite_create("sweep");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, grid_order_and_labels);
    tcase_add_test(tc, run_ids_stable);
    tcase_add_test(tc, bad_options);
    tcase_add_test(tc, content_hash);
    tcase_add_test(tc, from_stored);
    tcase_add_test(tc, shards_partition);
    tcase_add_test(tc, shard_from_environment);
    tcase_add_test(tc, k8s_manifest);
    tcase_add_test(tc, k8s_awkward_text);
    tcase_add_test(tc, slurm_script);
    suite_add_tcase(s, tc);
    return s;
}
