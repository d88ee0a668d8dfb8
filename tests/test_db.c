/* test_db.c -- results.db: the schema, the exact rows of a small scenario run through the
 * C API (requests incl. a 404, a refused and a dropped connection, an App Gateway whose
 * probes get 404 and mark its member down), an interrupted run, determinism, two processes
 * writing one file at once, a writer waiting for another's transaction, a process killed
 * before its run ended, and bad paths. */
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <sqlite3.h>
#include "db.h"
#include "plots.h"

/* client and web in a vnet (client 203.0.113.10, web .11); web serves /ok only and drops
 * SYNs to port 82; an App Gateway (one instance) probes web's /health every second, gets
 * 404 and marks it down after the second failure (t = 1.0004 s), so from then on requests
 * through it get 502. Four traffic sources, 13 requests in all. */
static const char scenario_yaml[] =
    "name: dbtest\n"
    "seed: 7\n"
    "duration: 10s\n"
    "nodes:\n"
    "  client: { type: host }\n"
    "  web:\n"
    "    type: host\n"
    "    iptables: [\"-A INPUT -p tcp --dport 82 -j DROP\"]\n"
    "cloud:\n"
    "  vnet: { type: vnet, attach: [client, web] }\n"
    "  appgw: { type: azure-app-gateway, vnet: vnet, instances: 1, backends: [203.0.113.11],\n"
    "           probe: { path: /health, interval: 1s, timeout: 1s, unhealthy-threshold: 2 } }\n"
    "apps:\n"
    "  site: { type: http-server, on: web, locations: [ { path: /ok, match: exact } ] }\n"
    "traffic:\n"
    "  direct:  { type: http-client, from: client, to: web, path: [/ok, /missing], rate: 1/s,\n"
    "             arrival: constant, requests: 4, keepalive: false }\n"
    "  refused: { type: http-client, from: client, to: web, port: 81, rate: 1/s,\n"
    "             arrival: constant, requests: 2, keepalive: false }\n"
    "  dropped: { type: http-client, from: client, to: web, port: 82, rate: 1/s,\n"
    "             arrival: constant, requests: 1, keepalive: false, connect-timeout: 1500ms }\n"
    "  viagw:   { type: http-client, from: client, to: appgw, path: /ok, rate: 1/s,\n"
    "             arrival: constant, requests: 6, keepalive: false }\n"
    "variants:\n"
    "  as-built: {}\n"
    "  healthy:\n"
    "    description: the gateway probes a path that exists\n"
    "    set: { cloud.appgw.probe.path: /ok }\n"
    "expect:\n"
    "  \"*\":\n"
    "    - \"direct.status_4xx_ratio == 0.5\"\n"
    "    - \"refused.refused_ratio == 1\"\n"
    "    - \"viagw.status_2xx_ratio > 0.9\"\n";

static char dir[64];
static char path[128];

static void setup(void)
{
    elem_register_builtin();
    snprintf(dir, sizeof dir, "/tmp/lbchain-dbtest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/results.db", dir);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(p);
}

static void teardown(void)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static scn_t *load(void)
{
    scn_t *s = NULL;
    scn_diag_t d;
    int rc = scn_load_string(scenario_yaml, "dbtest.yaml", &s, &d, NULL);
    if (rc) scn_diag_print(&d, stderr);
    ck_assert_int_eq(rc, 0);
    return s;
}

/* ---- queries on the file through a connection of our own ---- */

/* sql prepared on a read-only connection of its own to the file (asserting it prepares);
 * finalize the statement, then close *db. */
static sqlite3_stmt *q_prepare(const char *sql, sqlite3 **db)
{
    ck_assert_int_eq(sqlite3_open_v2(path, db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(*db, sql, -1, &st, NULL);
    if (rc) fprintf(stderr, "%s: %s\n", sql, sqlite3_errmsg(*db));
    ck_assert_int_eq(rc, SQLITE_OK);
    return st;
}

static int64_t q_int(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st = q_prepare(sql, &db);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_type(st, 0) == SQLITE_NULL ? -999 : sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static double q_dbl(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st = q_prepare(sql, &db);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    double v = sqlite3_column_type(st, 0) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* All rows of a query, "|"-separated columns, ";"-separated rows, into a static buffer. */
static const char *q_rows(const char *sql)
{
    static char out[8192];
    sqlite3 *db;
    sqlite3_stmt *st = q_prepare(sql, &db);
    size_t len = 0;
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            const char *t = (const char *)sqlite3_column_text(st, c);
            len += (size_t)snprintf(out + len, sizeof out - len, "%s%s", c ? "|" : "",
                                    t ? t : "NULL");
            ck_assert_uint_lt(len, sizeof out);
        }
        len += (size_t)snprintf(out + len, sizeof out - len, ";");
        ck_assert_uint_lt(len, sizeof out);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/* ---- running ---- */

/* The results file opened (asserting it opens). */
static rep_db_t *db_open(void)
{
    rep_db_t *db;
    char err[256];
    ck_assert_int_eq(rep_db_open(path, &db, err, sizeof err), 0);
    return db;
}

/* A sink that stops the run after `stop_after` requests (0: never) and counts what the
 * metrics hooks saw. */
typedef struct stopper { scn_run_t *r; int stop_after, requests, probes, health; } stopper_t;
static void st_request(void *data, const m_request_t *q)
{
    (void)q;
    stopper_t *s = data;
    if (++s->requests == s->stop_after) scn_run_stop(s->r);
}
static void st_probe(void *data, const m_probe_t *p) { (void)p; ((stopper_t *)data)->probes++; }
static void st_health(void *data, const m_health_t *h) { (void)h; ((stopper_t *)data)->health++; }

/* Runs variant v of s with a recorder on db; returns the run id (asserting success). */
static int64_t run_variant(rep_db_t *db, scn_t *s, size_t v, const char *group,
                           stopper_t *stop)
{
    scn_run_t *r;
    scn_diag_t d;
    ck_assert_int_eq(scn_run_new(s, v, scn_seed(s), &r, &d), 0);
    char err[256] = "";
    rep_db_run_t *dr = rep_db_run_begin(db, s, r, scn_variant_name(s, v), scn_seed(s), group,
                                        err, sizeof err);
    ck_assert_msg(dr != NULL, "%s", err);
    if (stop) {
        stop->r = r;
        scn_sink_t sk = { .m = { st_request, st_probe, st_health, stop } };
        ck_assert_int_eq(scn_run_add_sink(r, &sk), 0);
    }
    scn_run_execute(r, NULL, NULL);
    scn_verdict_t *vd = NULL;
    size_t nv = scn_run_check(r, &vd);
    int rc = rep_db_run_end(dr, r, vd, nv, err, sizeof err);
    ck_assert_msg(rc == 0, "%s", err);
    lb_free(vd);
    scn_run_free(r);
    return rep_db_last_run_id(db);
}

/* ---- schema ---- */

START_TEST(schema_created)
{
    rep_db_t *db = db_open();
    ck_assert_str_eq(rep_db_path(db), path);
    ck_assert_int_eq(rep_db_last_run_id(db), 0);
    rep_db_close(db);
    rep_db_close(db_open());                                        /* idempotent */
    ck_assert_str_eq(q_rows("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"),
                     "counters;drops;expectations;health;probes;requests;run_results;runs;"
                     "scenario_files;schema_version;series;sweeps;");
    ck_assert_str_eq(q_rows("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT"
                            " NULL ORDER BY name"),
                     "counters_run;drops_run;expectations_run;health_run;probes_run;"
                     "requests_run;run_results_run;runs_key;series_run;");
    ck_assert_str_eq(q_rows("SELECT version FROM schema_version"), "3;");
    ck_assert_str_eq(q_rows("PRAGMA journal_mode"), "wal;");
    ck_assert_str_eq(q_rows("SELECT group_concat(name, ',') FROM pragma_table_info('runs')"),
                     "id,run_group,scenario,scenario_file,variant,variant_description,seed,"
                     "duration_s,t_end_s,bucket_s,status,events,requests,mode,bindings,"
                     "run_key,sweep_key,sweep_index,scenario_hash,lbchain_version,overrides;");
    ck_assert_str_eq(q_rows("SELECT group_concat(name, ',') FROM pragma_table_info('sweeps')"),
                     "key,scenario,scenario_file,scenario_hash,lbchain_version,definition,runs;");
    ck_assert_str_eq(
        q_rows("SELECT group_concat(name, ',') FROM pragma_table_info('scenario_files')"),
        "scenario_hash,path,main,content;");
    ck_assert_str_eq(
        q_rows("SELECT group_concat(name, ',') FROM pragma_table_info('run_results')"),
        "run_id,result;");
    ck_assert_str_eq(q_rows("SELECT group_concat(name, ',') FROM pragma_table_info('requests')"),
                     "run_id,source,t_start_s,t_end_s,class,status,outcome,flow,upstream_flow,"
                     "req_id,path,t_sent_s,dns_s,connect_s,tls_s,ttfb_s,total_s;");
    ck_assert_str_eq(q_rows("SELECT group_concat(name, ',') FROM pragma_table_info('probes')"),
                     "run_id,checker,target,t_s,ok,status,reason,flow;");
    ck_assert_str_eq(q_rows("SELECT group_concat(name, ',') FROM pragma_table_info('health')"),
                     "run_id,checker,target,t_s,from_state,to_state,reason;");
    ck_assert_str_eq(q_rows("SELECT group_concat(name, ',') FROM pragma_table_info('drops')"),
                     "run_id,t_s,node,reason,detail,flow,src,dst,sport,dport,proto,tcp_flags;");
    ck_assert_str_eq(q_rows("SELECT group_concat(name, ',') FROM pragma_table_info('series')"),
                     "run_id,source,t_s,class,count;");
    ck_assert_str_eq(q_rows("SELECT group_concat(name, ',') FROM pragma_table_info('counters')"),
                     "run_id,name,t_s,value;");
    ck_assert_str_eq(
        q_rows("SELECT group_concat(name, ',') FROM pragma_table_info('expectations')"),
        "run_id,expect,pass,value,detail;");
    ck_assert_str_eq(q_rows("SELECT \"table\", \"from\", \"to\", on_delete"
                            " FROM pragma_foreign_key_list('drops')"),
                     "runs|run_id|id|CASCADE;");
}
END_TEST

/* ---- content ---- */

START_TEST(content_exact)
{
    scn_t *s = load();
    rep_db_t *db = db_open();
    int64_t id = run_variant(db, s, 0, "g1", NULL);
    ck_assert_int_eq(id, 1);
    rep_db_close(db);
    scn_free(s);

    ck_assert_str_eq(q_rows("SELECT id, run_group, scenario, scenario_file, variant,"
                            " variant_description, seed, duration_s, t_end_s, bucket_s,"
                            " status, requests FROM runs"),
                     "1|g1|dbtest|dbtest.yaml|as-built||7|10.0|10.0|1.0|complete|13;");
    ck_assert_int_gt(q_int("SELECT events FROM runs"), 100);

    /* requests: 13, by source and class, with the mechanisms' statuses and outcomes */
    ck_assert_int_eq(q_int("SELECT count(*) FROM requests"), 13);
    ck_assert_str_eq(q_rows("SELECT source, class, ifnull(status, 'none'), outcome, count(*)"
                            " FROM requests GROUP BY 1, 2, 3, 4 ORDER BY 1, 2"),
                     "direct|2xx|200|ok|2;direct|4xx|404|ok|2;"
                     "dropped|connect_timeout|none|connect-timeout|1;"
                     "refused|refused|none|connect-refused|2;"
                     "viagw|2xx|200|ok|1;viagw|5xx|502|ok|5;");
    ck_assert_str_eq(q_rows("SELECT DISTINCT path FROM requests WHERE status = 404"), "/missing;");
    ck_assert_str_eq(q_rows("SELECT group_concat(req_id, ',') FROM"
                            " (SELECT req_id FROM requests WHERE source = 'viagw' ORDER BY 1)"),
                     "1,2,3,4,5,6;");
    /* the dropped request gave up after its 1.5 s connect timeout */
    ck_assert_str_eq(q_rows("SELECT t_start_s, t_end_s FROM requests WHERE source = 'dropped'"),
                     "0.0|1.5;");
    /* through the gateway: 200 until the member went down at 1.0004 s, 502 after */
    ck_assert_str_eq(q_rows("SELECT group_concat(status, ',') FROM (SELECT status FROM requests"
                            " WHERE source = 'viagw' ORDER BY t_start_s)"),
                     "200,502,502,502,502,502;");

    /* only the request the gateway passed on has an upstream flow: the gateway's
     * connection to web, opened right after the client's (flows 5 and 6) */
    ck_assert_str_eq(q_rows("SELECT source, status, flow, upstream_flow FROM requests"
                            " WHERE upstream_flow IS NOT NULL"), "viagw|200|5|6;");

    /* probes: one per second from t = 0.0004 s, every one HTTP 404 */
    ck_assert_int_eq(q_int("SELECT count(*) FROM probes"), 10);
    ck_assert_str_eq(q_rows("SELECT checker, target, ok, status, reason, count(*),"
                            " min(t_s), max(t_s) FROM probes GROUP BY 1, 2, 3, 4, 5"),
                     "appgw-0|203.0.113.11|0|404|HTTP 404|10|0.0004|9.0004;");
    ck_assert_int_eq(q_int("SELECT count(DISTINCT flow) FROM probes"), 10);
    /* health: the second failure takes the member down */
    ck_assert_str_eq(q_rows("SELECT checker, target, t_s, from_state, to_state, reason"
                            " FROM health"),
                     "appgw-0|203.0.113.11|1.0004|up|down|HTTP 404;");

    /* drops: the SYN to port 82 and its retransmission 1 s later, on the request's flow */
    ck_assert_str_eq(q_rows("SELECT t_s, node, reason, src, dst, dport, proto, tcp_flags"
                            " FROM drops ORDER BY t_s"),
                     "0.0001|web|nf-drop|203.0.113.10|203.0.113.11|82|tcp|S;"
                     "1.0001|web|nf-drop|203.0.113.10|203.0.113.11|82|tcp|S;");
    ck_assert_str_eq(q_rows("SELECT DISTINCT detail FROM drops"),
                     "filter/INPUT rule 1: -p tcp -m tcp --dport 82 -j DROP;");
    ck_assert_int_eq(q_int("SELECT count(*) FROM drops d JOIN requests q"
                           " ON q.run_id = d.run_id AND q.flow = d.flow"
                           " WHERE q.source = 'dropped'"), 2);
    ck_assert_int_eq(q_int("SELECT count(DISTINCT sport) FROM drops"), 1);

    /* series: 4 sources x 10 seconds x 10 classes, zeros included */
    ck_assert_int_eq(q_int("SELECT count(*) FROM series"), 400);
    ck_assert_int_eq(q_int("SELECT sum(count) FROM series"), 13);
    ck_assert_str_eq(q_rows("SELECT source, class, sum(count) FROM series WHERE count > 0"
                            " GROUP BY 1, 2 ORDER BY 1, 2"),
                     "direct|2xx|2;direct|4xx|2;dropped|connect_timeout|1;refused|refused|2;"
                     "viagw|2xx|1;viagw|5xx|5;");
    ck_assert_str_eq(q_rows("SELECT group_concat(count, ',') FROM (SELECT count FROM series"
                            " WHERE source = 'viagw' AND class = '5xx' ORDER BY t_s)"),
                     "0,1,1,1,1,1,0,0,0,0;");

    /* counters per bucket (non-zero only) */
    ck_assert_str_eq(q_rows("SELECT name, t_s, value FROM counters WHERE name LIKE 'drops%'"
                            " ORDER BY name, t_s"),
                     "drops|0.0|1;drops|1.0|1;drops.nf-drop|0.0|1;drops.nf-drop|1.0|1;");
    ck_assert_int_eq(q_int("SELECT sum(value) FROM counters WHERE name = 'probe.appgw-0.fail'"), 10);
    ck_assert_str_eq(q_rows("SELECT t_s, value FROM counters WHERE name = 'health.appgw-0.down'"),
                     "1.0|1;");
    ck_assert_int_eq(q_int("SELECT count(*) FROM counters WHERE value = 0"), 0);

    /* expectations with their verdicts */
    ck_assert_str_eq(q_rows("SELECT expect, pass, detail FROM expectations ORDER BY rowid"),
                     "direct.status_4xx_ratio == 0.5|1|0.5 (2/4 requests in [0s, 10s));"
                     "refused.refused_ratio == 1|1|1 (2/2 requests in [0s, 10s));"
                     "viagw.status_2xx_ratio > 0.9|0|0.1667 (1/6 requests in [0s, 10s));");
    ck_assert_double_eq_tol(q_dbl("SELECT value FROM expectations WHERE pass = 0"), 1.0 / 6, 1e-12);
    ck_assert_int_eq(q_int("SELECT count(*) FROM pragma_foreign_key_check"), 0);
}
END_TEST

/* Two variants and a repeat into one file: ids 1..3, rows kept apart, the healthy variant
 * has no transitions and only 200s through the gateway, and a repeat of the same variant
 * and seed gives the same rows. */
START_TEST(variants_and_repeat)
{
    scn_t *s = load();
    rep_db_t *db = db_open();
    ck_assert_int_eq(run_variant(db, s, 0, "g", NULL), 1);
    ck_assert_int_eq(run_variant(db, s, 1, "g", NULL), 2);
    ck_assert_int_eq(run_variant(db, s, 0, "g", NULL), 3);
    rep_db_close(db);
    scn_free(s);
    ck_assert_str_eq(q_rows("SELECT id, variant, variant_description, status FROM runs"),
                     "1|as-built||complete;"
                     "2|healthy|the gateway probes a path that exists|complete;"
                     "3|as-built||complete;");
    ck_assert_str_eq(q_rows("SELECT run_id, count(*) FROM requests GROUP BY 1"),
                     "1|13;2|13;3|13;");
    ck_assert_int_eq(q_int("SELECT count(*) FROM health WHERE run_id = 2"), 0);
    ck_assert_str_eq(q_rows("SELECT DISTINCT ok, status FROM probes WHERE run_id = 2"), "1|200;");
    ck_assert_int_eq(q_int("SELECT count(*) FROM requests WHERE run_id = 2 AND source = 'viagw'"
                           " AND status = 200"), 6);
    ck_assert_str_eq(q_rows("SELECT pass FROM expectations WHERE run_id = 2 ORDER BY rowid"),
                     "1;1;1;");
    /* determinism: runs 1 and 3 hold the same rows, table by table */
    static const char *const cmp[] = {
        ("SELECT source, t_start_s, t_end_s, class, status, outcome, flow, upstream_flow,"
         " req_id, path FROM requests WHERE run_id = %d"),
        "SELECT checker, target, t_s, ok, status, reason, flow FROM probes WHERE run_id = %d",
        "SELECT checker, target, t_s, from_state, to_state, reason FROM health WHERE run_id = %d",
        ("SELECT t_s, node, reason, detail, flow, src, dst, sport, dport, proto, tcp_flags"
         " FROM drops WHERE run_id = %d"),
        "SELECT source, t_s, class, count FROM series WHERE run_id = %d",
        "SELECT name, t_s, value FROM counters WHERE run_id = %d",
        "SELECT expect, pass, value, detail FROM expectations WHERE run_id = %d",
    };
    for (size_t i = 0; i < sizeof cmp / sizeof *cmp; i++) {
        char a[512], b[512], sql[2200];
        snprintf(a, sizeof a, cmp[i], 1);
        snprintf(b, sizeof b, cmp[i], 3);
        snprintf(sql, sizeof sql, "SELECT (SELECT count(*) FROM (%s EXCEPT %s))"
                 " + (SELECT count(*) FROM (%s EXCEPT %s))", a, b, b, a);
        ck_assert_msg(q_int(sql) == 0, "table %zu differs between two identical runs", i);
    }
    ck_assert_int_eq(q_int("SELECT (SELECT events FROM runs WHERE id = 1) -"
                           " (SELECT events FROM runs WHERE id = 3)"), 0);
}
END_TEST

/* A sink stops the run at its 5th request (t = 1.0004 s: refused, direct 200, gateway 200,
 * refused, direct 404): status incomplete, the rows it produced are there. */
START_TEST(incomplete_run)
{
    scn_t *s = load();
    rep_db_t *db = db_open();
    stopper_t st = { .stop_after = 5 };
    run_variant(db, s, 0, NULL, &st);
    rep_db_close(db);
    scn_free(s);
    ck_assert_int_eq(st.requests, 5);
    ck_assert_str_eq(q_rows("SELECT run_group IS NULL, status, t_end_s, requests FROM runs"),
                     "1|incomplete|1.0004|5;");
    ck_assert_str_eq(q_rows("SELECT source, status FROM requests ORDER BY rowid"),
                     "refused|NULL;direct|200;viagw|200;refused|NULL;direct|404;");
    ck_assert_int_eq(q_int("SELECT count(*) FROM probes"), st.probes);
    ck_assert_int_eq(q_int("SELECT count(*) FROM health"), st.health);
    ck_assert_int_ge(st.probes, 1);
    /* series reach the bucket of the stop (seconds 0 and 1) */
    ck_assert_int_eq(q_int("SELECT count(*) FROM series"), 4 * 2 * 10);
    ck_assert_int_eq(q_int("SELECT sum(count) FROM series"), 5);
    ck_assert_int_eq(q_int("SELECT count(*) FROM expectations"), 3);
}
END_TEST

/* ---- several processes ---- */

/* In a child: open the file, write `runs` runs of variant 0 with group `group`. Exit code
 * 0 when every call succeeded. Uses no Check assertions (a child must not report). */
static int child_write(const char *group, int runs, int gate_fd)
{
    char c;
    if (gate_fd >= 0 && read(gate_fd, &c, 1) != 1) return 10;
    scn_t *s;
    scn_diag_t d;
    if (scn_load_string(scenario_yaml, "dbtest.yaml", &s, &d, NULL)) return 11;
    rep_db_t *db;
    char err[256];
    if (rep_db_open(path, &db, err, sizeof err)) {
        fprintf(stderr, "child %s: %s\n", group, err);
        return 12;
    }
    for (int i = 0; i < runs; i++) {
        scn_run_t *r;
        if (scn_run_new(s, 0, scn_seed(s), &r, &d)) return 13;
        rep_db_run_t *dr = rep_db_run_begin(db, s, r, "as-built", scn_seed(s), group, err,
                                            sizeof err);
        if (!dr) return 14;
        scn_run_execute(r, NULL, NULL);
        scn_verdict_t *vd;
        size_t nv = scn_run_check(r, &vd);
        if (rep_db_run_end(dr, r, vd, nv, err, sizeof err)) {
            fprintf(stderr, "child %s: %s\n", group, err);
            return 15;
        }
        lb_free(vd);
        scn_run_free(r);
    }
    rep_db_close(db);
    scn_free(s);
    return 0;
}

static int wait_child(pid_t pid)
{
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
}

/* Two processes create the same new file and append 8 runs each, released at once. */
START_TEST(two_processes)
{
    enum { RUNS = 8 };
    int gate[2];
    ck_assert_int_eq(pipe(gate), 0);
    pid_t pid[2];
    for (int k = 0; k < 2; k++) {
        pid[k] = fork();
        ck_assert_int_ge(pid[k], 0);
        if (pid[k] == 0) {
            close(gate[1]);
            _exit(child_write(k ? "child-b" : "child-a", RUNS, gate[0]));
        }
    }
    close(gate[0]);
    ck_assert_int_eq(write(gate[1], "go", 2), 2);
    close(gate[1]);
    ck_assert_int_eq(wait_child(pid[0]), 0);
    ck_assert_int_eq(wait_child(pid[1]), 0);
    ck_assert_str_eq(q_rows("SELECT run_group, count(*), min(status), max(status) FROM runs"
                            " GROUP BY 1 ORDER BY 1"),
                     "child-a|8|complete|complete;child-b|8|complete|complete;");
    ck_assert_int_eq(q_int("SELECT count(*) FROM (SELECT run_id FROM requests GROUP BY run_id"
                           " HAVING count(*) = 13)"), 2 * RUNS);
    ck_assert_int_eq(q_int("SELECT count(*) FROM requests"), 2 * RUNS * 13);
    ck_assert_int_eq(q_int("SELECT count(*) FROM probes"), 2 * RUNS * 10);
    ck_assert_int_eq(q_int("SELECT count(*) FROM drops"), 2 * RUNS * 2);
    ck_assert_int_eq(q_int("SELECT count(*) FROM series"), 2 * RUNS * 400);
    ck_assert_int_eq(q_int("SELECT count(*) FROM expectations"), 2 * RUNS * 3);
    ck_assert_int_eq(q_int("SELECT count(*) FROM schema_version"), 1);
    ck_assert_str_eq(q_rows("PRAGMA integrity_check"), "ok;");
    ck_assert_int_eq(q_int("SELECT count(*) FROM pragma_foreign_key_check"), 0);
}
END_TEST

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Another connection holds the write lock for 0.4 s: the child's run_end waits for it
 * (busy timeout) and then succeeds. The child is forked before that connection is opened
 * (an SQLite connection must not cross a fork). */
START_TEST(waits_for_other_writer)
{
    rep_db_close(db_open());
    int gate[2], res[2];
    ck_assert_int_eq(pipe(gate), 0);
    ck_assert_int_eq(pipe(res), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(gate[1]);
        close(res[0]);
        int rc = child_write("waiter", 1, gate[0]);
        double t = wall();
        if (write(res[1], &t, sizeof t) != sizeof t) rc = 20;
        _exit(rc);
    }
    close(gate[0]);
    close(res[1]);
    sqlite3 *other;
    ck_assert_int_eq(sqlite3_open(path, &other), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    ck_assert_int_eq(write(gate[1], "g", 1), 1);
    close(gate[1]);
    usleep(400000);
    double t_commit = wall();
    ck_assert_int_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    double t_done = 0;
    ck_assert_int_eq(read(res[0], &t_done, sizeof t_done), sizeof t_done);
    close(res[0]);
    ck_assert_int_eq(wait_child(pid), 0);
    ck_assert_msg(t_done >= t_commit, "the child finished while another held the lock");
    ck_assert_int_eq(q_int("SELECT count(*) FROM requests"), 13);
    ck_assert_int_eq(q_int("SELECT count(*) FROM runs"), 1);
}
END_TEST

/* A process killed (SIGKILL) after executing a run but before its end leaves nothing in
 * the file and no buffer file behind; the file stays consistent. */
START_TEST(killed_before_end)
{
    scn_t *s = load();
    rep_db_t *db;
    char err[256];
    ck_assert_int_eq(rep_db_open(path, &db, err, sizeof err), 0);
    run_variant(db, s, 0, "before", NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setenv("SQLITE_TMPDIR", dir, 1);
        scn_run_t *r;
        scn_diag_t d;
        if (scn_run_new(s, 0, 7, &r, &d)) _exit(1);
        rep_db_run_t *dr = rep_db_run_begin(db, s, r, "as-built", 7, "killed", err, sizeof err);
        if (!dr) _exit(2);
        scn_run_execute(r, NULL, NULL);
        if (rep_db_run_rows(dr) != 13 + 10 + 1 + 2) _exit(3);
        raise(SIGKILL);
        _exit(4);
    }
    ck_assert_int_eq(wait_child(pid), 100 + SIGKILL);
    rep_db_close(db);
    scn_free(s);
    ck_assert_str_eq(q_rows("SELECT id, run_group FROM runs"), "1|before;");
    ck_assert_int_eq(q_int("SELECT count(*) FROM requests"), 13);
    ck_assert_str_eq(q_rows("PRAGMA integrity_check"), "ok;");
    DIR *dd = opendir(dir);
    ck_assert_ptr_nonnull(dd);
    struct dirent *e;
    while ((e = readdir(dd)))
        ck_assert_msg(e->d_name[0] == '.' || strncmp(e->d_name, "results.db", 10) == 0,
                      "left behind: %s", e->d_name);
    closedir(dd);
}
END_TEST

/* ---- bad input ---- */

START_TEST(bad_paths)
{
    rep_db_t *db = (rep_db_t *)1;
    char err[256] = "";
    ck_assert_int_eq(rep_db_open("/nonexistent-lbchain-dir/r.db", &db, err, sizeof err), LB_EIO);
    ck_assert_ptr_null(db);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent-lbchain-dir/r.db"));
    ck_assert_int_eq(rep_db_open("", &db, err, sizeof err), LB_EINVAL);
    ck_assert_int_eq(rep_db_open(NULL, &db, err, sizeof err), LB_EINVAL);
    ck_assert_int_eq(rep_db_open(":memory:", &db, NULL, 0), LB_EINVAL);
    err[0] = '\0';
    ck_assert_int_eq(rep_db_open(dir, &db, err, sizeof err), LB_EIO);      /* a directory */
    ck_assert_str_ne(err, "");
    /* a file that is not a database */
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 200; i++) fputs("this is not an SQLite file\n", f);
    fclose(f);
    ck_assert_int_eq(rep_db_open(path, &db, err, sizeof err), LB_EIO);
    ck_assert_msg(strstr(err, "not a database"), "%s", err);
    unlink(path);
    /* a results database of another schema version is left alone */
    sqlite3 *o;
    ck_assert_int_eq(sqlite3_open(path, &o), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(o, "CREATE TABLE schema_version (version INTEGER);"
                                  " INSERT INTO schema_version VALUES (99)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(o);
    ck_assert_int_eq(rep_db_open(path, &db, err, sizeof err), LB_EIO);
    ck_assert_msg(strstr(err, "schema version 99"), "%s", err);
    ck_assert_int_eq(q_int("SELECT count(*) FROM sqlite_master"), 1);
}
END_TEST

/* A file of schema 1 (before real mode) is upgraded in place: its runs are simulations,
 * real mode's columns are added, then schema 3's run ids and sweep tables (the old runs
 * have no id), and new runs go in next to the old ones. */
START_TEST(schema_1_upgraded)
{
    sqlite3 *o;
    ck_assert_int_eq(sqlite3_open(path, &o), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(o,
        "CREATE TABLE schema_version (version INTEGER NOT NULL);"
        "INSERT INTO schema_version VALUES (1);"
        "CREATE TABLE runs (id INTEGER PRIMARY KEY, run_group TEXT, scenario TEXT NOT NULL,"
        " scenario_file TEXT, variant TEXT NOT NULL, variant_description TEXT,"
        " seed INTEGER NOT NULL, duration_s REAL NOT NULL, t_end_s REAL NOT NULL,"
        " bucket_s REAL NOT NULL, status TEXT NOT NULL, events INTEGER NOT NULL,"
        " requests INTEGER NOT NULL);"
        "INSERT INTO runs VALUES (1, 'g', 'old', NULL, 'v', '', 1, 1, 1, 1, 'complete', 0, 1);"
        "CREATE TABLE requests (run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
        " source TEXT NOT NULL, t_start_s REAL NOT NULL, t_end_s REAL NOT NULL,"
        " class TEXT NOT NULL, status INTEGER, outcome TEXT NOT NULL, flow INTEGER,"
        " upstream_flow INTEGER, req_id INTEGER, path TEXT);"
        "INSERT INTO requests VALUES (1, 'c', 0, 0.5, '2xx', 200, 'ok', 1, NULL, 1, '/');",
        NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(o);
    rep_db_close(db_open());
    ck_assert_str_eq(q_rows("SELECT version FROM schema_version"), "3;");
    ck_assert_str_eq(q_rows("SELECT id, mode, bindings IS NULL, run_key IS NULL FROM runs"),
                     "1|sim|1|1;");
    ck_assert_str_eq(q_rows("SELECT path, t_sent_s IS NULL, ttfb_s IS NULL FROM requests"),
                     "/|1|1;");
    scn_t *sc = load();
    rep_db_t *db = db_open();
    run_variant(db, sc, 0, "after", NULL);   /* a new run goes in next to the old one */
    rep_db_close(db);
    scn_free(sc);
    ck_assert_int_eq(q_int("SELECT count(*) FROM runs WHERE mode = 'sim'"), 2);
}
END_TEST

/* The file disappears between open and end: run_end reports it, nothing crashes. Also: no
 * sink slot left, and a discarded run. */
START_TEST(bad_states)
{
    scn_t *s = load();
    rep_db_t *db;
    char err[256] = "";
    ck_assert_int_eq(rep_db_open(path, &db, err, sizeof err), 0);
    unlink(path);
    scn_run_t *r;
    scn_diag_t d;
    ck_assert_int_eq(scn_run_new(s, 0, 7, &r, &d), 0);
    rep_db_run_t *dr = rep_db_run_begin(db, s, r, "as-built", 7, NULL, err, sizeof err);
    ck_assert_ptr_nonnull(dr);
    scn_run_execute(r, NULL, NULL);
    ck_assert_int_eq(rep_db_run_end(dr, r, NULL, 0, err, sizeof err), LB_EIO);
    ck_assert_msg(strstr(err, "no such table"), "%s", err);
    ck_assert_int_eq(rep_db_last_run_id(db), 0);
    scn_run_free(r);

    /* every sink slot taken */
    ck_assert_int_eq(scn_run_new(s, 0, 7, &r, &d), 0);
    scn_sink_t none = { .data = NULL };
    for (int i = 0; i < SCN_MAX_SINKS; i++) ck_assert_int_eq(scn_run_add_sink(r, &none), 0);
    err[0] = '\0';
    ck_assert_ptr_null(rep_db_run_begin(db, s, r, "as-built", 7, NULL, err, sizeof err));
    ck_assert_str_ne(err, "");
    scn_run_free(r);

    /* discarded before executing: the run still executes, nothing is written */
    rep_db_close(db);
    unlink(path);
    ck_assert_int_eq(rep_db_open(path, &db, err, sizeof err), 0);
    ck_assert_int_eq(scn_run_new(s, 0, 7, &r, &d), 0);
    dr = rep_db_run_begin(db, s, r, "as-built", 7, NULL, err, sizeof err);
    ck_assert_ptr_nonnull(dr);
    rep_db_run_discard(dr);
    scn_run_execute(r, NULL, NULL);
    ck_assert_int_eq(metrics_requests(scn_run_metrics(r), -1, M_ALL_CLASSES,
                                      (m_window_t){ 0, SIM_TIME_MAX }), 13);
    scn_run_free(r);
    rep_db_close(db);
    scn_free(s);
    ck_assert_int_eq(q_int("SELECT count(*) FROM runs"), 0);
}
END_TEST


/* ---- results rebuilt from the file ---- */

/* Collects what the rebuild callback hands back. */
typedef struct got { rep_variant_t v[4]; char key[4][32]; size_t n; } got_t;
static void got_cb(const char *key, const char *result, void *data)
{
    got_t *g = data;
    ck_assert_uint_lt(g->n, 4);
    snprintf(g->key[g->n], sizeof g->key[0], "%s", key);
    ck_assert_int_eq(rep_variant_deserialize(result, &g->v[g->n++]), 0);
}

static char *slurp(const char *file)
{
    FILE *f = fopen(file, "rb");
    ck_assert_ptr_nonnull(f);
    char *buf = lb_calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* summary.json (and what the plots and report read) rebuilt from results.db alone is the
 * summary.json written when the runs ended, byte for byte; the stored results agree with
 * the rows (outcomes per class); an incomplete run comes back only when asked for. */
START_TEST(summary_rebuilt_from_db)
{
    scn_t *s = load();
    rep_db_t *db = db_open();
    rep_variant_t v[2];
    const char *keys[] = {"0000000000000001", "0000000000000002"};
    for (size_t i = 0; i < 2; i++) {
        scn_run_t *r;
        scn_diag_t d;
        ck_assert_int_eq(scn_run_new(s, i, scn_seed(s), &r, &d), 0);
        char err[256] = "";
        rep_db_run_t *dr = rep_db_run_begin(db, s, r, scn_variant_name(s, i), scn_seed(s), "g",
                                            err, sizeof err);
        ck_assert_ptr_nonnull(dr);
        rep_db_ident_t id = { keys[i], "sweepkey", "hash", "0.1.0", "k=v", (int64_t)i, false };
        rep_db_run_identify(dr, &id);
        rep_plots_attach(r, NULL);
        scn_run_execute(r, NULL, NULL);
        scn_verdict_t *vd = NULL;
        size_t nv = scn_run_check(r, &vd);
        rep_variant_collect(&v[i], r, scn_variant_name(s, i), scn_seed(s), vd, nv);
        const char *k[] = {"cloud.appgw.probe.interval"}, *val[] = {"1s"};
        rep_variant_set_run(&v[i], keys[i], k, val, 1);
        rep_plots_collect(r, &v[i]);
        char *text = rep_variant_serialize(&v[i]);
        rep_db_run_set_result(dr, text);
        free(text);
        ck_assert_int_eq(rep_db_run_end(dr, r, v[i].verdicts, v[i].n_verdicts, err, sizeof err), 0);
        scn_run_free(r);
    }
    char d1[128], d2[128];
    snprintf(d1, sizeof d1, "%s/now", dir);
    snprintf(d2, sizeof d2, "%s/again", dir);
    ck_assert_int_eq(rep_mkdirs(d1), 0);
    ck_assert_int_eq(rep_mkdirs(d2), 0);
    rep_sweep_info_t info = { "0.1.0", "hash", "sweepkey", "{\"format\":1}", 2, NULL };
    ck_assert_int_eq(rep_write_summary_sweep(d1, s, v, 2, NULL, &info), 0);
    got_t g = {0};
    char err[256];
    ck_assert_int_eq(rep_db_results(db, "sweepkey", true, got_cb, &g, err, sizeof err), 0);
    ck_assert_uint_eq(g.n, 2);
    ck_assert_str_eq(g.key[0], keys[0]);
    ck_assert_str_eq(g.v[1].run_id, keys[1]);
    ck_assert_str_eq(g.v[1].point, "cloud.appgw.probe.interval=1s");
    ck_assert_ptr_nonnull(g.v[0].plot);                 /* the plots' series came back too */
    ck_assert_int_eq(rep_write_summary_sweep(d2, s, g.v, 2, NULL, &info), 0);
    char f1[160], f2[160];
    snprintf(f1, sizeof f1, "%s/summary.json", d1);
    snprintf(f2, sizeof f2, "%s/summary.json", d2);
    char *a = slurp(f1), *b = slurp(f2);
    ck_assert_str_eq(a, b);
    ck_assert_ptr_nonnull(strstr(a, "\"run_id\":\t\"0000000000000001\""));
    /* the stored results agree with the rows */
    for (int c = 0; c < M_CLASS_COUNT; c++) {
        char *sql = lb_sprintf("SELECT count(*) FROM requests q JOIN runs r ON r.id = q.run_id "
                               "WHERE r.run_key = '%s' AND q.class = '%s'", keys[0],
                               m_class_name(c));
        ck_assert_int_eq(q_int(sql), (int64_t)g.v[0].by_class[c]);
        lb_free(sql);
    }
    ck_assert_str_eq(q_rows("SELECT run_key, sweep_key, sweep_index, scenario_hash,"
                            " lbchain_version, overrides FROM runs ORDER BY id"),
                     "0000000000000001|sweepkey|0|hash|0.1.0|k=v;"
                     "0000000000000002|sweepkey|1|hash|0.1.0|k=v;");
    for (size_t i = 0; i < 2; i++) {
        rep_variant_free(&v[i]);
        rep_variant_free(&g.v[i]);
    }
    lb_free(a);
    lb_free(b);
    /* an interrupted run: stored, not given back as complete; a resumed run replaces it */
    scn_run_t *r;
    scn_diag_t d;
    ck_assert_int_eq(scn_run_new(s, 0, scn_seed(s), &r, &d), 0);
    rep_db_run_t *dr = rep_db_run_begin(db, s, r, "as-built", 9, "g", err, sizeof err);
    rep_db_ident_t id = { "0000000000000009", "sweepkey", "hash", "0.1.0", "", 2, false };
    rep_db_run_identify(dr, &id);
    rep_db_run_set_result(dr, "{\"name\":\"as-built\",\"run_id\":\"0000000000000009\"}");
    stopper_t stop = { r, 2, 0, 0, 0 };
    scn_sink_t sk = { .m = { st_request, st_probe, st_health, &stop } };
    ck_assert_int_eq(scn_run_add_sink(r, &sk), 0);
    scn_run_execute(r, NULL, NULL);
    ck_assert_int_eq(rep_db_run_end(dr, r, NULL, 0, err, sizeof err), 0);
    scn_run_free(r);
    memset(&g, 0, sizeof g);
    ck_assert_int_eq(rep_db_results(db, "sweepkey", true, got_cb, &g, err, sizeof err), 0);
    ck_assert_uint_eq(g.n, 2);
    for (size_t i = 0; i < g.n; i++) rep_variant_free(&g.v[i]);
    memset(&g, 0, sizeof g);
    ck_assert_int_eq(rep_db_results(db, "sweepkey", false, got_cb, &g, err, sizeof err), 0);
    ck_assert_uint_eq(g.n, 3);
    for (size_t i = 0; i < g.n; i++) rep_variant_free(&g.v[i]);
    ck_assert_int_eq(q_int("SELECT count(*) FROM runs WHERE run_key = '0000000000000009' AND "
                           "status = 'incomplete'"), 1);
    ck_assert_int_eq(scn_run_new(s, 0, scn_seed(s), &r, &d), 0);
    dr = rep_db_run_begin(db, s, r, "as-built", 9, "g", err, sizeof err);
    id.replace_incomplete = true;
    rep_db_run_identify(dr, &id);
    scn_run_execute(r, NULL, NULL);
    ck_assert_int_eq(rep_db_run_end(dr, r, NULL, 0, err, sizeof err), 0);
    scn_run_free(r);
    ck_assert_str_eq(q_rows("SELECT status FROM runs WHERE run_key = '0000000000000009'"),
                     "complete;");
    ck_assert_int_eq(q_int("SELECT count(*) FROM requests WHERE run_id NOT IN "
                           "(SELECT id FROM runs)"), 0);        /* its rows went with it */
    /* the sweep's record: once, whoever records it again; another sweep's runs counted */
    const char *paths[] = {"s.yaml"}, *texts[] = {"name: s\n"};
    size_t lens[] = {8};
    rep_db_sweep_t sw = { "sweepkey", "dbtest", "s.yaml", "hash", "0.1.0", "{}", 3, 1, paths,
                          texts, lens };
    ck_assert_int_eq(rep_db_sweep_put(db, &sw, err, sizeof err), 0);
    ck_assert_int_eq(rep_db_sweep_put(db, &sw, err, sizeof err), 0);
    ck_assert_str_eq(q_rows("SELECT key, runs FROM sweeps"), "sweepkey|3;");
    ck_assert_str_eq(q_rows("SELECT path, main, CAST(content AS TEXT) FROM scenario_files"),
                     "s.yaml|1|name: s\n;");
    char other[64];
    ck_assert_int_eq(rep_db_foreign_runs(db, "sweepkey", other, sizeof other, err, sizeof err), 0);
    ck_assert_int_eq(rep_db_foreign_runs(db, "another", other, sizeof other, err, sizeof err), 3);
    ck_assert_str_eq(other, "sweepkey");
    rep_db_close(db);
    scn_free(s);
}
END_TEST

/* ---- throughput (slow): bench-chain with every request recorded ---- */

START_TEST(throughput_bench_chain)
{
    scn_t *s;
    scn_diag_t d;
    ck_assert_int_eq(scn_load("scenarios/bench-chain.yaml", &s, &d, NULL), 0);
    ck_assert_int_eq(scn_override(s, "duration=10s", &d), 0);
    rep_db_t *db;
    char err[256];
    ck_assert_int_eq(rep_db_open(path, &db, err, sizeof err), 0);
    scn_run_t *r;
    ck_assert_int_eq(scn_run_new(s, 0, 1, &r, &d), 0);
    double t0 = wall();
    scn_run_execute(r, NULL, NULL);
    double t_plain = wall() - t0;
    uint64_t nreq = metrics_requests(scn_run_metrics(r), -1, M_ALL_CLASSES,
                                     (m_window_t){ 0, SIM_TIME_MAX });
    scn_run_free(r);
    ck_assert_int_eq(scn_run_new(s, 0, 1, &r, &d), 0);
    rep_db_run_t *dr = rep_db_run_begin(db, s, r, "keepalive", 1, NULL, err, sizeof err);
    ck_assert_ptr_nonnull(dr);
    t0 = wall();
    scn_run_execute(r, NULL, NULL);
    double t_rec = wall() - t0;
    uint64_t rows = rep_db_run_rows(dr);
    t0 = wall();
    ck_assert_int_eq(rep_db_run_end(dr, r, NULL, 0, err, sizeof err), 0);
    double t_end = wall() - t0;
    scn_run_free(r);
    rep_db_close(db);
    scn_free(s);
    ck_assert_uint_eq(rows, nreq);
    ck_assert_int_eq(q_int("SELECT count(*) FROM requests"), (int64_t)nreq);
    ck_assert_int_eq(q_int("SELECT requests FROM runs"), (int64_t)nreq);
    double over = t_rec - t_plain;
    printf("db: %" PRIu64 " requests; run %.2f s without / %.2f s with the recorder "
           "(%.0f rows/s recorded), run_end %.2f s (%.0f rows/s copied)\n", nreq, t_plain,
           t_rec, over > 0 ? (double)rows / over : 0.0, t_end, (double)rows / t_end);
}
END_TEST

Suite *suite_db(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("db");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, schema_created);
    tcase_add_test(tc, content_exact);
    tcase_add_test(tc, variants_and_repeat);
    tcase_add_test(tc, incomplete_run);
    tcase_add_test(tc, two_processes);
    tcase_add_test(tc, waits_for_other_writer);
    tcase_add_test(tc, killed_before_end);
    tcase_add_test(tc, bad_paths);
    tcase_add_test(tc, bad_states);
    tcase_add_test(tc, schema_1_upgraded);
    tcase_add_test(tc, summary_rebuilt_from_db);
    suite_add_tcase(s, tc);
    TCase *slow = tcase_create("db-throughput");
    tcase_add_checked_fixture(slow, setup, teardown);
    tcase_set_tags(slow, "slow");
    tcase_set_timeout(slow, 60);
    tcase_add_test(slow, throughput_bench_chain);
    suite_add_tcase(s, slow);
    return s;
}
