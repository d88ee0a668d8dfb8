/* db.c -- results.db (SQLite): the schema, a run's recorder (a sink that inserts every
 * request, probe, health transition and drop into a private temporary database through
 * prepared statements) and the copy of that buffer into the shared file in one short
 * write transaction. Schema and column meanings: docs/RESULTS-DB.md.
 *
 * Life of a run's rows:
 *
 *   rep_db_run_begin   buffer = sqlite3_open("")  (private temp db: pages stay in a
 *        |             REP_DB_BUFFER_CACHE_KIB cache, beyond that they spill to an unlinked
 *        |             file, so a killed process leaves nothing), BEGIN, sink attached
 *   sink callbacks     one prepared INSERT per table, reused for every row
 *        |
 *   rep_db_run_end     series/counters/expectations into the buffer; COMMIT;
 *                      ATTACH the file AS results; BEGIN IMMEDIATE (waits for other
 *                      writers up to the busy timeout); INSERT INTO results.runs;
 *                      INSERT INTO results.T SELECT <run id>, ... FROM main.T; COMMIT;
 *                      DETACH; close the buffer
 *
 * The recorder detaches its sink from the run (scn_run_remove_sink) when the run ends or
 * is discarded, before it is freed: no callback reaches a freed recorder.
 * Every SQL text here is built from the constant table descriptions below; values from
 * scenarios only ever travel as bound parameters. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include "db.h"
#include "db_int.h"
#include "explain.h"
#include "http.h"
#include "metrics.h"
#include "plots.h"

/* ---- schema ----------------------------------------------------------------------------- */


static const col_t requests_cols[] = {
    {"source", "TEXT NOT NULL"}, {"t_start_s", "REAL NOT NULL"}, {"t_end_s", "REAL NOT NULL"},
    {"class", "TEXT NOT NULL"}, {"status", "INTEGER"}, {"outcome", "TEXT NOT NULL"},
    {"flow", "INTEGER"}, {"upstream_flow", "INTEGER"}, {"req_id", "INTEGER"},
    {"path", "TEXT"},
    /* real mode (schema 2): when it actually left, libcurl's phase times from then */
    {"t_sent_s", "REAL"}, {"dns_s", "REAL"}, {"connect_s", "REAL"}, {"tls_s", "REAL"},
    {"ttfb_s", "REAL"}, {"total_s", "REAL"}, {0, 0}};
static const col_t probes_cols[] = {
    {"checker", "TEXT NOT NULL"}, {"target", "TEXT NOT NULL"}, {"t_s", "REAL NOT NULL"},
    {"ok", "INTEGER NOT NULL"}, {"status", "INTEGER"}, {"reason", "TEXT"},
    {"flow", "INTEGER"}, {0, 0}};
static const col_t health_cols[] = {
    {"checker", "TEXT NOT NULL"}, {"target", "TEXT NOT NULL"}, {"t_s", "REAL NOT NULL"},
    {"from_state", "TEXT NOT NULL"}, {"to_state", "TEXT NOT NULL"}, {"reason", "TEXT"},
    {0, 0}};
static const col_t drops_cols[] = {
    {"t_s", "REAL NOT NULL"}, {"node", "TEXT NOT NULL"}, {"reason", "TEXT NOT NULL"},
    {"detail", "TEXT"}, {"flow", "INTEGER"}, {"src", "TEXT NOT NULL"},
    {"dst", "TEXT NOT NULL"}, {"sport", "INTEGER"}, {"dport", "INTEGER"},
    {"proto", "TEXT NOT NULL"}, {"tcp_flags", "TEXT"}, {0, 0}};
static const col_t series_cols[] = {
    {"source", "TEXT NOT NULL"}, {"t_s", "REAL NOT NULL"}, {"class", "TEXT NOT NULL"},
    {"count", "INTEGER NOT NULL"}, {0, 0}};
static const col_t counters_cols[] = {
    {"name", "TEXT NOT NULL"}, {"t_s", "REAL NOT NULL"}, {"value", "INTEGER NOT NULL"},
    {0, 0}};
static const col_t expectations_cols[] = {
    {"expect", "TEXT NOT NULL"}, {"pass", "INTEGER NOT NULL"}, {"value", "REAL"},
    {"detail", "TEXT"}, {0, 0}};
/* schema 3: what summary.json, the plots and report.html need of the run, as
 * rep_variant_serialize writes it, so they can be rebuilt from the file (--merge) */
static const col_t run_results_cols[] = {{"result", "TEXT NOT NULL"}, {0, 0}};

const struct table db_tables[T_COUNT] = {
    [T_REQUESTS] = {"requests", requests_cols},
    [T_PROBES] = {"probes", probes_cols},
    [T_HEALTH] = {"health", health_cols},
    [T_DROPS] = {"drops", drops_cols},
    [T_SERIES] = {"series", series_cols},
    [T_COUNTERS] = {"counters", counters_cols},
    [T_EXPECTATIONS] = {"expectations", expectations_cols},
    [T_RESULTS] = {"run_results", run_results_cols},
};

static const char runs_sql[] =
    "CREATE TABLE IF NOT EXISTS runs ("
    "id INTEGER PRIMARY KEY, run_group TEXT, scenario TEXT NOT NULL, scenario_file TEXT,"
    " variant TEXT NOT NULL, variant_description TEXT, seed INTEGER NOT NULL,"
    " duration_s REAL NOT NULL, t_end_s REAL NOT NULL, bucket_s REAL NOT NULL,"
    " status TEXT NOT NULL CHECK (status IN ('complete', 'incomplete')),"
    " events INTEGER NOT NULL, requests INTEGER NOT NULL,"
    " mode TEXT NOT NULL DEFAULT 'sim' CHECK (mode IN ('sim', 'real')), bindings TEXT,"
    " run_key TEXT, sweep_key TEXT, sweep_index INTEGER, scenario_hash TEXT,"
    " lbchain_version TEXT, overrides TEXT)";
/* The columns of runs after id, in order (the insert below and --merge's copy). */
const char *const db_runs_cols[] = {
    "run_group", "scenario", "scenario_file", "variant", "variant_description", "seed",
    "duration_s", "t_end_s", "bucket_s", "status", "events", "requests", "mode", "bindings",
    "run_key", "sweep_key", "sweep_index", "scenario_hash", "lbchain_version", "overrides",
    NULL};
static const char runs_insert_sql[] =
    "INSERT INTO results.runs (run_group, scenario, scenario_file, variant,"
    " variant_description, seed, duration_s, t_end_s, bucket_s, status, events, requests,"
    " mode, bindings, run_key, sweep_key, sweep_index, scenario_hash, lbchain_version,"
    " overrides) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
/* Schema 3: the sweeps whose runs the file holds and their scenarios' files. */
static const char sweeps_sql[] =
    "CREATE TABLE IF NOT EXISTS sweeps (key TEXT PRIMARY KEY, scenario TEXT NOT NULL,"
    " scenario_file TEXT, scenario_hash TEXT NOT NULL, lbchain_version TEXT NOT NULL,"
    " definition TEXT NOT NULL, runs INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS scenario_files (scenario_hash TEXT NOT NULL,"
    " path TEXT NOT NULL, main INTEGER NOT NULL, content BLOB NOT NULL,"
    " PRIMARY KEY (scenario_hash, path));"
    "CREATE INDEX IF NOT EXISTS runs_key ON runs (run_key)";
/* From schema 1 to 2: real mode's columns (existing rows are simulations). */
static const char migrate_1_2_sql[] =
    "ALTER TABLE runs ADD COLUMN mode TEXT NOT NULL DEFAULT 'sim'"
    " CHECK (mode IN ('sim', 'real'));"
    "ALTER TABLE runs ADD COLUMN bindings TEXT;"
    "ALTER TABLE requests ADD COLUMN t_sent_s REAL;"
    "ALTER TABLE requests ADD COLUMN dns_s REAL;"
    "ALTER TABLE requests ADD COLUMN connect_s REAL;"
    "ALTER TABLE requests ADD COLUMN tls_s REAL;"
    "ALTER TABLE requests ADD COLUMN ttfb_s REAL;"
    "ALTER TABLE requests ADD COLUMN total_s REAL;"
    "UPDATE schema_version SET version = 2";
/* From schema 2 to 3: run ids and sweeps (existing runs have none); the new tables are
 * created as in a new file. */
static const char migrate_2_3_sql[] =
    "ALTER TABLE runs ADD COLUMN run_key TEXT;"
    "ALTER TABLE runs ADD COLUMN sweep_key TEXT;"
    "ALTER TABLE runs ADD COLUMN sweep_index INTEGER;"
    "ALTER TABLE runs ADD COLUMN scenario_hash TEXT;"
    "ALTER TABLE runs ADD COLUMN lbchain_version TEXT;"
    "ALTER TABLE runs ADD COLUMN overrides TEXT;"
    "UPDATE schema_version SET version = 3";

/* A big run's transaction grows the -wal file; after a checkpoint it is truncated back to
 * this many bytes (SQLite keeps it at its largest size otherwise). */
#define WAL_SIZE_LIMIT "67108864"

/* ---- handles ------------------------------------------------------------------------------ */

struct rep_db {
    char *path;
    int64_t last_run_id;
};

struct rep_db_run {
    rep_db_t *db;
    scn_run_t *run;                 /* the run its sink is attached to; NULL: detached */
    sqlite3 *buf;
    sqlite3_stmt *ins[T_COUNT];
    metrics_t *m;
    explain_t *ex;                  /* for the upstream flow of a proxied request */
    uint64_t rows;
    bool failed;                    /* an insert failed: msg holds why */
    char msg[256];
    /* the runs row */
    char *scenario, *scenario_file, *variant, *variant_description, *run_group;
    uint64_t seed;
    sim_time_t duration;
    /* its place in a sweep (rep_db_run_identify); NULLs when none */
    char *run_key, *sweep_key, *scenario_hash, *version, *overrides;
    int64_t sweep_index;            /* -1: none */
    bool replace_incomplete;
    char *result;                   /* rep_db_run_set_result's text; NULL: none */
};


static double secs(sim_time_t t) { return (double)t / (double)SIM_S; }

/* SQLite's message for db's last error, with the operating system's reason when a system
 * call failed: "database or disk is full (No space left on device)". The unix VFS turns a
 * write that hit ENOSPC into SQLITE_FULL and keeps no errno for it (os_unix.c unixWrite);
 * the other source of SQLITE_FULL, PRAGMA max_page_count, is never set here. The text
 * lives until the next call (one thread uses the handles). */
const char *db_sql_msg(sqlite3 *db)
{
    static char buf[600];
    int e = sqlite3_system_errno(db);
    if (!e && (sqlite3_extended_errcode(db) & 0xff) == SQLITE_FULL) e = ENOSPC;
    if (e) snprintf(buf, sizeof buf, "%s (%s)", sqlite3_errmsg(db), strerror(e));
    else snprintf(buf, sizeof buf, "%s", sqlite3_errmsg(db));
    return buf;
}

/* Runs SQL without results. 0 or the SQLite code. */
int db_exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL);
}

/* "CREATE TABLE [IF NOT EXISTS] T (...)", "INSERT INTO T VALUES (?...)" or the copy
 * "INSERT INTO results.T (run_id, cols) SELECT ?1, cols FROM main.T ORDER BY rowid".
 * Caller frees. */
enum { SQL_CREATE_FILE, SQL_CREATE_BUF, SQL_INSERT_BUF, SQL_COPY };
static char *table_sql(const struct table *t, int kind)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f) abort();
    switch (kind) {
    case SQL_CREATE_FILE:
        fprintf(f, "CREATE TABLE IF NOT EXISTS %s (run_id INTEGER NOT NULL REFERENCES runs(id)"
                " ON DELETE CASCADE", t->name);
        for (const col_t *c = t->cols; c->name; c++) fprintf(f, ", %s %s", c->name, c->decl);
        fprintf(f, ")");
        break;
    case SQL_CREATE_BUF:
        fprintf(f, "CREATE TABLE %s (", t->name);
        for (const col_t *c = t->cols; c->name; c++)
            fprintf(f, "%s%s", c == t->cols ? "" : ", ", c->name);
        fprintf(f, ")");
        break;
    case SQL_INSERT_BUF:
        fprintf(f, "INSERT INTO %s VALUES (", t->name);
        for (const col_t *c = t->cols; c->name; c++) fprintf(f, "%s?", c == t->cols ? "" : ", ");
        fprintf(f, ")");
        break;
    case SQL_COPY:
        fprintf(f, "INSERT INTO results.%s (run_id", t->name);
        for (const col_t *c = t->cols; c->name; c++) fprintf(f, ", %s", c->name);
        fprintf(f, ") SELECT ?1");
        for (const col_t *c = t->cols; c->name; c++) fprintf(f, ", %s", c->name);
        fprintf(f, " FROM main.%s ORDER BY rowid", t->name);
        break;
    }
    fclose(f);
    char *out = lb_strdup(s);   /* one allocator for everything the caller frees */
    free(s);
    return out;
}

/* ---- the file ------------------------------------------------------------------------------ */

/* Creates what is missing and checks the version, in one write transaction. */
static int create_schema(sqlite3 *db, const char *path, char *err, size_t errlen)
{
    int rc = db_exec(db, "BEGIN IMMEDIATE");
    if (rc == SQLITE_OK)
        rc = db_exec(db, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
    if (rc != SQLITE_OK) goto sqlerr;
    sqlite3_stmt *st;
    rc = sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL);
    if (rc != SQLITE_OK) goto sqlerr;
    int64_t have = -1;
    if (sqlite3_step(st) == SQLITE_ROW) have = sqlite3_column_int64(st, 0);
    rc = sqlite3_finalize(st);
    if (rc != SQLITE_OK) goto sqlerr;
    if (have == 1) {
        rc = db_exec(db, migrate_1_2_sql);
        if (rc != SQLITE_OK) goto sqlerr;
        have = 2;
    }
    if (have == 2) {
        rc = db_exec(db, migrate_2_3_sql);
        if (rc != SQLITE_OK) goto sqlerr;
        have = 3;
    }
    if (have >= 0 && have != REP_DB_SCHEMA_VERSION) {
        db_exec(db, "ROLLBACK");
        lb_errf(err, errlen, "%s: results database has schema version %" PRId64
                "; this program writes version %d (use another file)", path, have,
                REP_DB_SCHEMA_VERSION);
        return LB_EIO;
    }
    rc = db_exec(db, runs_sql);
    for (int i = 0; i < T_COUNT && rc == SQLITE_OK; i++) {
        char *sql = table_sql(&db_tables[i], SQL_CREATE_FILE);
        rc = db_exec(db, sql);
        lb_free(sql);
        if (rc != SQLITE_OK) break;
        sql = lb_sprintf("CREATE INDEX IF NOT EXISTS %s_run ON %s (run_id)", db_tables[i].name,
                         db_tables[i].name);
        rc = db_exec(db, sql);
        lb_free(sql);
    }
    if (rc == SQLITE_OK) rc = db_exec(db, sweeps_sql);
    /* one row per (scenario, variant) ever run into this file, with its description */
    if (rc == SQLITE_OK)
        rc = db_exec(db, "CREATE VIEW IF NOT EXISTS variants AS SELECT scenario, variant AS name, "
                      "max(variant_description) AS description, count(*) AS runs, "
                      "sum(status = 'complete') AS complete_runs FROM runs "
                      "GROUP BY scenario, variant");
    if (rc == SQLITE_OK && have < 0) {
        char *sql = lb_sprintf("INSERT INTO schema_version VALUES (%d)", REP_DB_SCHEMA_VERSION);
        rc = db_exec(db, sql);
        lb_free(sql);
    }
    if (rc == SQLITE_OK) rc = db_exec(db, "COMMIT");
    if (rc == SQLITE_OK) return 0;
sqlerr:
    lb_errf(err, errlen, "%s: %s", path, db_sql_msg(db));
    if (!sqlite3_get_autocommit(db)) db_exec(db, "ROLLBACK");
    return LB_EIO;
}

/* PRAGMA journal_mode=WAL. Switching a new file needs it to itself, and SQLite answers
 * SQLITE_BUSY at once rather than wait (another process opening the same new file may hold
 * a lock and wait for this one), so this retries for up to the busy timeout. */
static int set_wal(sqlite3 *db)
{
    int waited_ms = 0, step_ms = 1, rc;
    while ((rc = db_exec(db, "PRAGMA journal_mode=WAL")) == SQLITE_BUSY &&
           waited_ms < REP_DB_BUSY_TIMEOUT_MS) {
        struct timespec ts = { 0, step_ms * 1000000L };
        nanosleep(&ts, NULL);
        waited_ms += step_ms;
        if (step_ms < 64) step_ms *= 2;
    }
    return rc;
}

int rep_db_open(const char *path, rep_db_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!path || !*path || strcmp(path, ":memory:") == 0) {
        lb_errf(err, errlen, "results database: expected a file path, got '%s'",
                path ? path : "(null)");
        return LB_EINVAL;
    }
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        lb_errf(err, errlen, "%s: cannot open results database: %s", path,
                db ? db_sql_msg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return LB_EIO;
    }
    sqlite3_busy_timeout(db, REP_DB_BUSY_TIMEOUT_MS);
    /* The schema first: in a new file (rollback journal) its pages go to the file once,
     * where in WAL mode they would sit in the WAL as well until a checkpoint -- on a
     * nearly full disk that is the difference between results.db and nothing. Then WAL:
     * readers never block the writer and a writer's transaction is short; the mode is
     * stored in the file, so every later connection gets it. On a file system without
     * shared memory SQLite keeps its rollback journal, which is just as safe (slower). */
    int ret = create_schema(db, path, err, errlen);
    if (ret == 0 && (rc = set_wal(db)) != SQLITE_OK) {
        lb_errf(err, errlen, "%s: %s", path, db_sql_msg(db));
        ret = LB_EIO;
    }
    sqlite3_close(db);
    if (ret) return ret;
    rep_db_t *h = lb_calloc(1, sizeof *h);
    h->path = lb_strdup(path);
    *out = h;
    return 0;
}

void rep_db_close(rep_db_t *db)
{
    if (!db) return;
    lb_free(db->path);
    lb_free(db);
}

const char *rep_db_path(const rep_db_t *db) { return db->path; }
int64_t rep_db_last_run_id(const rep_db_t *db) { return db->last_run_id; }
uint64_t rep_db_run_rows(const rep_db_run_t *dr) { return dr->rows; }

/* ---- recording ----------------------------------------------------------------------------- */

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else sqlite3_bind_null(st, i);
}

/* Integer, NULL when 0 (no status, no flow). */
static void bind_nz(sqlite3_stmt *st, int i, int64_t v)
{
    if (v) sqlite3_bind_int64(st, i, v);
    else sqlite3_bind_null(st, i);
}

/* Steps a bound insert and resets it; the first failure is kept and stops recording. */
static void insert_row(rep_db_run_t *dr, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        dr->rows++;
        return;
    }
    dr->failed = true;
    snprintf(dr->msg, sizeof dr->msg, "buffering rows: %s", db_sql_msg(dr->buf));
}

static void on_request(void *data, const m_request_t *q)
{
    rep_db_run_t *dr = data;
    if (dr->failed) return;
    sqlite3_stmt *st = dr->ins[T_REQUESTS];
    const char *src = metrics_source_name(dr->m, q->source);
    bind_text(st, 1, src ? src : "");
    sqlite3_bind_double(st, 2, secs(q->t_start));
    sqlite3_bind_double(st, 3, secs(q->t_end));
    bind_text(st, 4, m_class_name(q->cls));
    bind_nz(st, 5, q->status);
    bind_text(st, 6, http_outcome_name(q->outcome));
    bind_nz(st, 7, (int64_t)q->flow);
    bind_nz(st, 8, (int64_t)explain_flow_up(dr->ex, q->flow));
    bind_nz(st, 9, (int64_t)q->req_id);
    bind_text(st, 10, q->path);
    const m_phases_t *ph = q->phases;
    const sim_time_t pv[6] = {ph ? ph->t_sent : 0, ph ? ph->dns : 0, ph ? ph->connect : 0,
                              ph ? ph->tls : 0, ph ? ph->ttfb : 0, ph ? ph->total : 0};
    for (int i = 0; i < 6; i++) {
        if (ph) sqlite3_bind_double(st, 11 + i, secs(pv[i]));
        else sqlite3_bind_null(st, 11 + i);
    }
    insert_row(dr, st);
}

static void on_probe(void *data, const m_probe_t *p)
{
    rep_db_run_t *dr = data;
    if (dr->failed) return;
    sqlite3_stmt *st = dr->ins[T_PROBES];
    bind_text(st, 1, p->checker ? p->checker : "");
    bind_text(st, 2, p->target ? p->target : "");
    sqlite3_bind_double(st, 3, secs(p->t));
    sqlite3_bind_int(st, 4, p->ok);
    bind_nz(st, 5, p->status);
    bind_text(st, 6, p->reason);
    bind_nz(st, 7, (int64_t)p->flow);
    insert_row(dr, st);
}

static void on_health(void *data, const m_health_t *h)
{
    rep_db_run_t *dr = data;
    if (dr->failed) return;
    sqlite3_stmt *st = dr->ins[T_HEALTH];
    bind_text(st, 1, h->checker ? h->checker : "");
    bind_text(st, 2, h->target ? h->target : "");
    sqlite3_bind_double(st, 3, secs(h->t));
    bind_text(st, 4, h->from ? h->from : "");
    bind_text(st, 5, h->to ? h->to : "");
    bind_text(st, 6, h->reason);
    insert_row(dr, st);
}

static void on_drop(void *data, sim_time_t t, const char *where, const pkt_t *p,
                    const char *reason, const char *detail)
{
    rep_db_run_t *dr = data;
    if (dr->failed) return;
    sqlite3_stmt *st = dr->ins[T_DROPS];
    char src[16], dst[16], fl[8], pr[8];
    bool ports = p->proto == NET_PROTO_TCP || p->proto == NET_PROTO_UDP;
    sqlite3_bind_double(st, 1, secs(t));
    bind_text(st, 2, where ? where : "network");
    bind_text(st, 3, reason ? reason : "");
    bind_text(st, 4, detail);
    bind_nz(st, 5, (int64_t)p->flow);
    bind_text(st, 6, lb_ip_str(p->src, src));
    bind_text(st, 7, lb_ip_str(p->dst, dst));
    if (ports) {
        sqlite3_bind_int(st, 8, p->sport);
        sqlite3_bind_int(st, 9, p->dport);
    } else {
        sqlite3_bind_null(st, 8);
        sqlite3_bind_null(st, 9);
    }
    const char *proto = p->proto == NET_PROTO_TCP ? "tcp" : p->proto == NET_PROTO_UDP ? "udp"
                      : p->proto == NET_PROTO_ICMP ? "icmp" : NULL;
    if (!proto) {
        snprintf(pr, sizeof pr, "%u", p->proto);
        proto = pr;
    }
    bind_text(st, 10, proto);
    if (p->proto == NET_PROTO_TCP) {       /* the order pkt_str prints them in */
        int k = 0;
        if (p->tcp_flags & TCP_SYN) fl[k++] = 'S';
        if (p->tcp_flags & TCP_FIN) fl[k++] = 'F';
        if (p->tcp_flags & TCP_RST) fl[k++] = 'R';
        if (p->tcp_flags & TCP_PSH) fl[k++] = 'P';
        if (p->tcp_flags & TCP_ACK) fl[k++] = '.';
        fl[k] = '\0';
        bind_text(st, 11, fl);
    } else {
        sqlite3_bind_null(st, 11);
    }
    insert_row(dr, st);
}

/* Detaches the sink: nothing the run does afterwards reaches dr. */
static void detach(rep_db_run_t *dr)
{
    if (dr->run) scn_run_remove_sink(dr->run, dr);
    dr->run = NULL;
}

static void run_free(rep_db_run_t *dr)
{
    detach(dr);
    for (int i = 0; i < T_COUNT; i++) sqlite3_finalize(dr->ins[i]);
    sqlite3_close(dr->buf);      /* the temp database and its file go with it */
    lb_free(dr->scenario);
    lb_free(dr->scenario_file);
    lb_free(dr->variant);
    lb_free(dr->variant_description);
    lb_free(dr->run_group);
    lb_free(dr->run_key);
    lb_free(dr->sweep_key);
    lb_free(dr->scenario_hash);
    lb_free(dr->version);
    lb_free(dr->overrides);
    lb_free(dr->result);
    lb_free(dr);
}

static char *dup_or_null(const char *s) { return s ? lb_strdup(s) : NULL; }

void rep_db_run_identify(rep_db_run_t *dr, const rep_db_ident_t *id)
{
    if (!dr || !id) return;
    lb_free(dr->run_key);
    lb_free(dr->sweep_key);
    lb_free(dr->scenario_hash);
    lb_free(dr->version);
    lb_free(dr->overrides);
    dr->run_key = dup_or_null(id->run_key);
    dr->sweep_key = dup_or_null(id->sweep_key);
    dr->scenario_hash = dup_or_null(id->scenario_hash);
    dr->version = dup_or_null(id->version);
    dr->overrides = dup_or_null(id->overrides);
    dr->sweep_index = id->sweep_index;
    dr->replace_incomplete = id->replace_incomplete;
}

void rep_db_run_set_result(rep_db_run_t *dr, const char *text)
{
    if (!dr) return;
    lb_free(dr->result);
    dr->result = dup_or_null(text);
}

void rep_db_run_discard(rep_db_run_t *dr)
{
    if (dr) run_free(dr);
}

rep_db_run_t *rep_db_run_begin(rep_db_t *db, scn_t *s, scn_run_t *r, const char *variant,
                               uint64_t seed, const char *run_group, char *err,
                               size_t errlen)
{
    rep_db_run_t *dr = lb_calloc(1, sizeof *dr);
    dr->db = db;
    dr->m = scn_run_metrics(r);
    dr->ex = scn_run_explain(r);
    dr->scenario = lb_strdup(scn_name(s));
    dr->scenario_file = scn_file(s) ? lb_strdup(scn_file(s)) : NULL;
    dr->variant = lb_strdup(variant ? variant : scn_run_variant(r));
    int vi = scn_variant_find(s, dr->variant);
    dr->variant_description = lb_strdup(vi >= 0 ? scn_variant_description(s, (size_t)vi) : "");
    dr->run_group = run_group ? lb_strdup(run_group) : NULL;
    dr->seed = seed;
    dr->duration = scn_run_duration(r);
    dr->sweep_index = -1;

    /* "" opens a private temporary database (sqlite.org/inmemorydb.html#temp_db) */
    int rc = sqlite3_open_v2("", &dr->buf, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                             SQLITE_OPEN_NOMUTEX, NULL);    /* one thread uses it */
    if (rc == SQLITE_OK) {
        char *sql = lb_sprintf("PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF;"
                               " PRAGMA cache_size=-%d", REP_DB_BUFFER_CACHE_KIB);
        rc = db_exec(dr->buf, sql);
        lb_free(sql);
    }
    for (int i = 0; i < T_COUNT && rc == SQLITE_OK; i++) {
        char *sql = table_sql(&db_tables[i], SQL_CREATE_BUF);
        rc = db_exec(dr->buf, sql);
        lb_free(sql);
        if (rc != SQLITE_OK) break;
        sql = table_sql(&db_tables[i], SQL_INSERT_BUF);
        rc = sqlite3_prepare_v3(dr->buf, sql, -1, SQLITE_PREPARE_PERSISTENT, &dr->ins[i], NULL);
        lb_free(sql);
    }
    if (rc == SQLITE_OK) rc = db_exec(dr->buf, "BEGIN");
    if (rc != SQLITE_OK) {
        lb_errf(err, errlen, "results database buffer: %s",
                dr->buf ? db_sql_msg(dr->buf) : sqlite3_errstr(rc));
        run_free(dr);
        return NULL;
    }
    scn_sink_t sink = {
        .m = { .request = on_request, .probe = on_probe, .health = on_health, .data = dr },
        .drop = on_drop,
        .data = dr,
    };
    if (scn_run_add_sink(r, &sink)) {
        lb_errf(err, errlen, "results database: no sink slot left on the run (at most %d)",
                SCN_MAX_SINKS);
        run_free(dr);
        return NULL;
    }
    dr->run = r;
    return dr;
}

/* ---- the end of a run ------------------------------------------------------------------------ */

/* Per-second series (every source x bucket x class, zeros included, so a series has no
 * gaps), counters per bucket (non-zero only) and the verdicts, into the buffer. Buckets
 * past the time the run reached are left out. */
static void add_aggregates(rep_db_run_t *dr, scn_run_t *r, const scn_verdict_t *v, size_t nv)
{
    const metrics_t *m = dr->m;
    sim_time_t w = metrics_bucket_width(m);
    size_t nb = metrics_bucket_count(m);
    size_t reached = (size_t)(scn_run_end_time(r) / w) + 1;
    if (reached < nb) nb = reached;
    sqlite3_stmt *st = dr->ins[T_SERIES];
    for (size_t s = 0; s < metrics_source_count(m) && !dr->failed; s++)
        for (size_t b = 0; b < nb && !dr->failed; b++)
            for (int c = 0; c < M_CLASS_COUNT && !dr->failed; c++) {
                bind_text(st, 1, metrics_source_name(m, (int)s));
                sqlite3_bind_double(st, 2, secs((sim_time_t)b * w));
                bind_text(st, 3, m_class_name(c));
                sqlite3_bind_int64(st, 4, (int64_t)metrics_bucket(m, (int)s, b, c));
                insert_row(dr, st);
            }
    st = dr->ins[T_COUNTERS];
    const char *name;
    for (size_t i = 0; (name = metrics_counter_name(m, i)) && !dr->failed; i++)
        for (size_t b = 0; b < nb && !dr->failed; b++) {
            m_window_t win = { (sim_time_t)b * w, (sim_time_t)(b + 1) * w };
            int64_t val = metrics_counter(m, name, win);
            if (!val) continue;
            bind_text(st, 1, name);
            sqlite3_bind_double(st, 2, secs((sim_time_t)b * w));
            sqlite3_bind_int64(st, 3, val);
            insert_row(dr, st);
        }
    st = dr->ins[T_EXPECTATIONS];
    for (size_t i = 0; i < nv && !dr->failed; i++) {
        bind_text(st, 1, v[i].text ? v[i].text : "");
        sqlite3_bind_int(st, 2, v[i].pass);
        if (isnan(v[i].value)) sqlite3_bind_null(st, 3);
        else sqlite3_bind_double(st, 3, v[i].value);
        bind_text(st, 4, v[i].detail);
        insert_row(dr, st);
    }
    if (dr->result && !dr->failed) {
        bind_text(dr->ins[T_RESULTS], 1, dr->result);
        insert_row(dr, dr->ins[T_RESULTS]);
    }
}

/* The runs row and the copy of every buffered table, inside the caller's transaction. */
static int copy_run(rep_db_run_t *dr, scn_run_t *r, int64_t *run_id)
{
    const metrics_t *m = dr->m;
    m_window_t all = { 0, SIM_TIME_MAX };
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(dr->buf, runs_insert_sql, -1, &st, NULL);
    if (rc != SQLITE_OK) return rc;
    bind_text(st, 1, dr->run_group);
    bind_text(st, 2, dr->scenario);
    bind_text(st, 3, dr->scenario_file);
    bind_text(st, 4, dr->variant);
    bind_text(st, 5, dr->variant_description);
    sqlite3_bind_int64(st, 6, (int64_t)dr->seed);
    sqlite3_bind_double(st, 7, secs(dr->duration));
    sqlite3_bind_double(st, 8, secs(scn_run_end_time(r)));
    sqlite3_bind_double(st, 9, secs(metrics_bucket_width(m)));
    bind_text(st, 10, scn_run_complete(r) ? "complete" : "incomplete");
    sqlite3_bind_int64(st, 11, (int64_t)sim_events_run(scn_run_sim(r)));
    sqlite3_bind_int64(st, 12, (int64_t)metrics_requests(m, -1, M_ALL_CLASSES, all));
    bind_text(st, 13, scn_run_mode(r));
    bind_text(st, 14, scn_run_bindings(r));
    bind_text(st, 15, dr->run_key);
    bind_text(st, 16, dr->sweep_key);
    if (dr->sweep_index >= 0) sqlite3_bind_int64(st, 17, dr->sweep_index);
    else sqlite3_bind_null(st, 17);
    bind_text(st, 18, dr->scenario_hash);
    bind_text(st, 19, dr->version);
    bind_text(st, 20, dr->overrides);
    if (dr->replace_incomplete && dr->run_key) {
        /* a resumed shard: this run replaces an interrupted attempt at it */
        sqlite3_stmt *del;
        rc = sqlite3_prepare_v2(dr->buf, "DELETE FROM results.runs WHERE run_key = ?1 AND "
                                "status = 'incomplete'", -1, &del, NULL);
        if (rc != SQLITE_OK) {
            sqlite3_finalize(st);
            return rc;
        }
        sqlite3_bind_text(del, 1, dr->run_key, -1, SQLITE_STATIC);
        rc = sqlite3_step(del);
        sqlite3_finalize(del);
        if (rc != SQLITE_DONE) {
            sqlite3_finalize(st);
            return rc;
        }
    }
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return rc;
    *run_id = sqlite3_last_insert_rowid(dr->buf);
    for (int i = 0; i < T_COUNT; i++) {
        char *sql = table_sql(&db_tables[i], SQL_COPY);
        rc = sqlite3_prepare_v2(dr->buf, sql, -1, &st, NULL);
        lb_free(sql);
        if (rc != SQLITE_OK) return rc;
        sqlite3_bind_int64(st, 1, *run_id);
        rc = sqlite3_step(st);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE) return rc;
    }
    return SQLITE_OK;
}

int rep_db_run_end(rep_db_run_t *dr, scn_run_t *r, const scn_verdict_t *v, size_t nv,
                   char *err, size_t errlen)
{
    if (!dr) {
        lb_errf(err, errlen, "results database: no run to end (rep_db_run_begin failed)");
        return LB_EINVAL;
    }
    rep_db_t *db = dr->db;
    detach(dr);                          /* the run's sink records nothing more */
    add_aggregates(dr, r, v, nv);
    if (dr->failed) {
        lb_errf(err, errlen, "%s: %s", db->path, dr->msg);
        run_free(dr);
        return LB_EIO;
    }
    for (int i = 0; i < T_COUNT; i++) {  /* statements must be done before ATTACH/DETACH */
        sqlite3_finalize(dr->ins[i]);
        dr->ins[i] = NULL;
    }
    int ret = 0;
    int64_t run_id = 0;
    bool attached = false;
    sqlite3_stmt *st = NULL;
    /* the busy handler covers every step on the file, ATTACH (reading its schema) too */
    sqlite3_busy_timeout(dr->buf, REP_DB_BUSY_TIMEOUT_MS);
    int rc = db_exec(dr->buf, "COMMIT");
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(dr->buf, "ATTACH DATABASE ? AS results", -1,
                                                 &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, db->path, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(dr->buf);
        sqlite3_finalize(st);
        attached = rc == SQLITE_OK;
    }
    if (rc == SQLITE_OK) {
        /* WAL + NORMAL: a commit is atomic and the file consistent after a crash; only
         * the last transactions may be lost on power failure (sqlite.org/pragma.html) */
        rc = db_exec(dr->buf, "PRAGMA foreign_keys=ON; PRAGMA results.synchronous=NORMAL;"
                           " PRAGMA results.journal_size_limit=" WAL_SIZE_LIMIT);
    }
    if (rc == SQLITE_OK) rc = db_exec(dr->buf, "BEGIN IMMEDIATE");
    if (rc == SQLITE_OK) rc = copy_run(dr, r, &run_id);
    if (rc == SQLITE_OK) rc = db_exec(dr->buf, "COMMIT");
    if (rc != SQLITE_OK) {
        lb_errf(err, errlen, "%s: writing the run: %s", db->path, db_sql_msg(dr->buf));
        if (!sqlite3_get_autocommit(dr->buf)) db_exec(dr->buf, "ROLLBACK");
        ret = LB_EIO;
    } else {
        db->last_run_id = run_id;
    }
    if (attached) db_exec(dr->buf, "DETACH DATABASE results");
    run_free(dr);
    return ret;
}

/* ---- reading: a simulated baseline for a real run -------------------------------------------- */

typedef struct lat { double *v; size_t n; } lat_t;

/* Nearest-rank quantile of the sorted latencies (seconds) as ns. */
static sim_time_t sorted_q(double q, void *data)
{
    const lat_t *l = data;
    size_t k = (size_t)(q * (double)l->n);
    if (k >= l->n) k = l->n - 1;
    return (sim_time_t)llround(l->v[k] * (double)SIM_S);
}

static int class_index(const char *name)
{
    for (int c = 0; c < M_CLASS_COUNT; c++)
        if (name && !strcmp(m_class_name(c), name)) return c;
    return -1;
}

/* Steps st bound with run_id as ?1 (and the rest bound by the caller). */
static sqlite3_stmt *prep(sqlite3 *db, const char *sql, int64_t run_id)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) return NULL;
    sqlite3_bind_int64(st, 1, run_id);
    return st;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

/* Fills b (zeroed, name/seed set) from run id of db. */
static void load_baseline(sqlite3 *db, int64_t id, const rep_variant_t *real, rep_variant_t *b)
{
    double bucket = 1, duration = 0, t_end = 0;
    sqlite3_stmt *st = prep(db, "SELECT bucket_s, duration_s, t_end_s FROM runs WHERE id = ?1", id);
    if (st && sqlite3_step(st) == SQLITE_ROW) {
        bucket = sqlite3_column_double(st, 0);
        duration = sqlite3_column_double(st, 1);
        t_end = sqlite3_column_double(st, 2);
    }
    sqlite3_finalize(st);
    if (!(bucket > 0)) bucket = 1;
    st = prep(db, "SELECT class, count(*) FROM requests WHERE run_id = ?1 GROUP BY class", id);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        int c = class_index(col_text(st, 0));
        uint64_t k = (uint64_t)sqlite3_column_int64(st, 1);
        if (c >= 0) b->by_class[c] += k;
        b->requests += k;
    }
    sqlite3_finalize(st);
    LB_VEC(double) lv = {0};
    st = prep(db, "SELECT t_end_s - t_start_s FROM requests WHERE run_id = ?1 AND class IN "
                  "('2xx', '3xx', '4xx', '5xx') ORDER BY 1", id);
    while (st && sqlite3_step(st) == SQLITE_ROW) lb_vec_push(&lv, sqlite3_column_double(st, 0));
    sqlite3_finalize(st);
    lat_t l = {lv.v, lv.n};
    double sum = 0;
    for (size_t i = 0; i < lv.n; i++) sum += lv.v[i];
    b->latency_p50 = lv.n ? (double)sorted_q(0.50, &l) / SIM_S : NAN;
    b->latency_p90 = lv.n ? (double)sorted_q(0.90, &l) / SIM_S : NAN;
    b->latency_p99 = lv.n ? (double)sorted_q(0.99, &l) / SIM_S : NAN;
    b->latency_mean = lv.n ? sum / (double)lv.n : NAN;
    b->n_rows = 1;
    b->rows = lb_calloc(1, sizeof *b->rows);
    b->rows[0].requests = b->requests;
    memcpy(b->rows[0].by_class, b->by_class, sizeof b->by_class);
    b->rows[0].latency_p50 = b->latency_p50;
    b->rows[0].latency_p99 = b->latency_p99;
    size_t nb = (size_t)ceil(duration / bucket);
    if (!nb) nb = 1;
    rep_plot_t *p = rep_plot_new((sim_time_t)llround(bucket * SIM_S), nb,
                                 (sim_time_t)llround(t_end * SIM_S));
    if (lv.n) rep_plot_cdf(p, sorted_q, &l);
    lb_vec_free(&lv);
    st = prep(db, "SELECT source, t_s, class, count FROM series WHERE run_id = ?1", id);
    while (st && sqlite3_step(st) == SQLITE_ROW) {
        int k = rep_plot_source(p, col_text(st, 0));
        size_t bi = (size_t)(sqlite3_column_double(st, 1) / bucket + 0.5);
        int c = class_index(col_text(st, 2));
        if (c >= 0 && bi < nb)
            p->sources.v[k].counts[bi * M_CLASS_COUNT + c] = (uint64_t)sqlite3_column_int64(st, 3);
    }
    sqlite3_finalize(st);
    st = prep(db, "SELECT checker, target, t_s, from_state, to_state FROM health "
                  "WHERE run_id = ?1 ORDER BY rowid", id);
    while (st && sqlite3_step(st) == SQLITE_ROW)
        rep_plot_health(p, col_text(st, 0), col_text(st, 1),
                        (sim_time_t)llround(sqlite3_column_double(st, 2) * SIM_S),
                        col_text(st, 3), col_text(st, 4));
    sqlite3_finalize(st);
    b->plot = p;
    b->plot_free = rep_plot_free;
    /* the backends the real run probed: their last state change, their last probe */
    b->probes = real->n_probes ? lb_calloc(real->n_probes, sizeof *b->probes) : NULL;
    for (size_t i = 0; i < real->n_probes; i++) {
        const rep_probe_t *rp = &real->probes[i];
        rep_probe_t *q = &b->probes[b->n_probes];
        char reason[128] = "";
        bool seen = false;
        snprintf(q->state, sizeof q->state, "%s", rp->initial);
        st = prep(db, "SELECT to_state FROM health WHERE run_id = ?1 AND checker = ?2 AND "
                      "target = ?3 ORDER BY rowid DESC LIMIT 1", id);
        if (st) {
            sqlite3_bind_text(st, 2, rp->checker, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, rp->target, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) snprintf(q->state, sizeof q->state, "%s", col_text(st, 0));
        }
        sqlite3_finalize(st);
        st = prep(db, "SELECT reason FROM probes WHERE run_id = ?1 AND checker = ?2 AND "
                      "target = ?3 ORDER BY rowid DESC LIMIT 1", id);
        if (st) {
            sqlite3_bind_text(st, 2, rp->checker, -1, SQLITE_STATIC);
            sqlite3_bind_text(st, 3, rp->target, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                snprintf(reason, sizeof reason, "%s", col_text(st, 0));
                seen = true;
            }
        }
        sqlite3_finalize(st);
        if (!seen) continue;            /* the simulation did not record this checker */
        snprintf(q->checker, sizeof q->checker, "%s", rp->checker);
        snprintf(q->target, sizeof q->target, "%s", rp->target);
        snprintf(q->initial, sizeof q->initial, "%s", rp->initial);
        char st_up[12];
        snprintf(st_up, sizeof st_up, "%s", q->state);
        for (char *c = st_up; *c; c++) *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
        snprintf(q->line, sizeof q->line, "%s: %s %s: %s (results.db run %lld)", rp->checker,
                 rp->target, st_up, reason, (long long)id);
        b->n_probes++;
    }
    b->show_probes = true;
}

void rep_db_attach_baselines(rep_db_t *h, const scn_t *s, rep_variant_t **pv, size_t *pn)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(h->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return;
    }
    sqlite3_busy_timeout(db, REP_DB_BUSY_TIMEOUT_MS);
    size_t n0 = *pn;
    for (size_t i = 0; i < n0; i++) {
        rep_variant_t *v = *pv;
        if (strcmp(v[i].mode, "real") || rep_compare_peer(v, *pn, i)) continue;
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT id FROM runs WHERE scenario = ?1 AND variant = ?2 "
                               "AND seed = ?3 AND mode = 'sim' AND status = 'complete' "
                               "ORDER BY id DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK)
            break;
        sqlite3_bind_text(st, 1, scn_name(s), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, v[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)v[i].seed);
        int64_t id = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (!id) continue;
        rep_variant_t b;
        memset(&b, 0, sizeof b);
        b.name = lb_strdup(v[i].name);
        snprintf(b.mode, sizeof b.mode, "sim");
        b.seed = v[i].seed;
        b.db_run = id;
        b.complete = true;
        b.verdicts = lb_calloc(1, sizeof *b.verdicts);
        load_baseline(db, id, &v[i], &b);
        *pv = lb_realloc(*pv, (*pn + 1) * sizeof **pv);
        (*pv)[(*pn)++] = b;
    }
    sqlite3_close(db);
}
