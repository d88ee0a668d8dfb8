/* db_sweep.c -- results.db and sweeps (include/sweep.h): a sweep's definition and its
 * scenario's files recorded with its runs; the stored results of runs read back (a
 * resumed shard's finished runs, a merged sweep's summary); a shard's file read without
 * writing to it; and shard files merged into one through ATTACH, a batch of files at a
 * time. Schema: docs/RESULTS-DB.md. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sqlite3.h>
#include "db.h"
#include "db_int.h"

/* A connection to path (read-write, or read-only), with the busy timeout; NULL with a
 * message in err. */
static sqlite3 *connect_to(const char *path, bool ro, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, ro ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE,
                             NULL);
    if (rc != SQLITE_OK) {
        lb_errf(err, errlen, "%s: %s", path, db ? db_sql_msg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, REP_DB_BUSY_TIMEOUT_MS);
    return db;
}

static const char *col_str(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : NULL;
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    const char *t = col_str(st, i);
    return t ? lb_strdup(t) : NULL;
}

static void bind_str(sqlite3_stmt *st, int i, const char *s)
{
    if (s) sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else sqlite3_bind_null(st, i);
}

/* ---- recording a sweep ------------------------------------------------------------------------ */

int rep_db_sweep_put(rep_db_t *h, const rep_db_sweep_t *sw, char *err, size_t errlen)
{
    sqlite3 *db = connect_to(rep_db_path(h), false, err, errlen);
    if (!db) return LB_EIO;
    sqlite3_stmt *st = NULL;
    int rc = db_exec(db, "BEGIN IMMEDIATE");
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO sweeps (key, scenario, scenario_file,"
                                " scenario_hash, lbchain_version, definition, runs)"
                                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_str(st, 1, sw->key);
        bind_str(st, 2, sw->scenario);
        bind_str(st, 3, sw->scenario_file);
        bind_str(st, 4, sw->scenario_hash);
        bind_str(st, 5, sw->version);
        bind_str(st, 6, sw->spec);
        sqlite3_bind_int64(st, 7, sw->runs);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO scenario_files (scenario_hash, path,"
                                " main, content) VALUES (?1, ?2, ?3, ?4)", -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < sw->n_files; i++) {
        bind_str(st, 1, sw->scenario_hash);
        bind_str(st, 2, sw->paths[i]);
        sqlite3_bind_int(st, 3, i == 0);
        sqlite3_bind_blob(st, 4, sw->texts[i], (int)sw->lens[i], SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK) rc = db_exec(db, "COMMIT");
    if (rc != SQLITE_OK) {
        lb_errf(err, errlen, "%s: recording the sweep: %s", rep_db_path(h), db_sql_msg(db));
        if (!sqlite3_get_autocommit(db)) db_exec(db, "ROLLBACK");
    }
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : LB_EIO;
}

int rep_db_foreign_runs(rep_db_t *h, const char *key, char *other, size_t len, char *err,
                        size_t errlen)
{
    if (other && len) other[0] = '\0';
    sqlite3 *db = connect_to(rep_db_path(h), true, err, errlen);
    if (!db) return LB_EIO;
    sqlite3_stmt *st = NULL;
    int n = 0;
    int rc = sqlite3_prepare_v2(db, "SELECT count(*), max(coalesce(sweep_key, ''))"
                                " FROM runs WHERE sweep_key IS NOT ?1", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) == SQLITE_ROW) {
            n = sqlite3_column_int(st, 0);
            if (n && other) snprintf(other, len, "%s", col_str(st, 1) ? col_str(st, 1) : "");
        } else {
            rc = sqlite3_errcode(db);
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) lb_errf(err, errlen, "%s: %s", rep_db_path(h), db_sql_msg(db));
    sqlite3_close(db);
    return rc == SQLITE_OK ? n : LB_EIO;
}

/* ---- stored results ------------------------------------------------------------------------- */

int rep_db_results(rep_db_t *h, const char *sweep_key, bool complete_only,
                   rep_db_result_cb cb, void *data, char *err, size_t errlen)
{
    /* read-write: the last connection to close removes the WAL files (a read-only one
     * cannot), as after a run */
    sqlite3 *db = connect_to(rep_db_path(h), false, err, errlen);
    if (!db) return LB_EIO;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT r.run_key, x.result, r.status = 'complete'"
                                " FROM runs r JOIN run_results x ON x.run_id = r.id"
                                " WHERE r.sweep_key = ?1 AND r.run_key IS NOT NULL"
                                " AND (?2 = 0 OR r.status = 'complete') ORDER BY r.id",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(st, 1, sweep_key, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 2, complete_only);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            cb(col_str(st, 0), col_str(st, 1) ? col_str(st, 1) : "", data);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) lb_errf(err, errlen, "%s: reading stored results: %s",
                                 rep_db_path(h), db_sql_msg(db));
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : LB_EIO;
}

/* ---- a shard's file ------------------------------------------------------------------------- */

void rep_db_shard_free(rep_db_shard_t *s)
{
    for (size_t i = 0; i < s->sweeps.n; i++) {
        rep_db_sweep_rec_t *w = &s->sweeps.v[i];
        lb_free(w->key);
        lb_free(w->scenario);
        lb_free(w->scenario_file);
        lb_free(w->scenario_hash);
        lb_free(w->version);
        lb_free(w->spec);
    }
    lb_vec_free(&s->sweeps);
    for (size_t i = 0; i < s->runs.n; i++) {
        lb_free(s->runs.v[i].run_key);
        lb_free(s->runs.v[i].sweep_key);
        lb_free(s->runs.v[i].variant);
    }
    lb_vec_free(&s->runs);
    for (size_t i = 0; i < s->files.n; i++) {
        lb_free(s->files.v[i].path);
        lb_free(s->files.v[i].text);
    }
    lb_vec_free(&s->files);
    memset(s, 0, sizeof *s);
}

int rep_db_shard_read(const char *path, rep_db_shard_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    sqlite3 *db = connect_to(path, true, err, errlen);
    if (!db) return LB_EIO;
    sqlite3_stmt *st = NULL;
    int ret = 0;
    int sr = SQLITE_DONE;
    int rc = sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) out->schema = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_OK || out->schema <= 0) {
        lb_errf(err, errlen, "%s: not a results database (%s)", path,
                rc != SQLITE_OK ? db_sql_msg(db) : "no schema version");
        sqlite3_close(db);
        return LB_EINVAL;
    }
    if (out->schema != REP_DB_SCHEMA_VERSION) {
        lb_errf(err, errlen, "%s: results database of schema version %d; this lbchain merges "
                "version %d (%s)", path, out->schema, REP_DB_SCHEMA_VERSION,
                out->schema < REP_DB_SCHEMA_VERSION ? "an older lbchain wrote it, without run ids "
                "or sweeps" : "a newer lbchain wrote it");
        sqlite3_close(db);
        return LB_EINVAL;
    }
    rc = sqlite3_prepare_v2(db, "SELECT key, scenario, scenario_file, scenario_hash,"
                            " lbchain_version, definition, runs FROM sweeps ORDER BY rowid",
                            -1, &st, NULL);
    while (rc == SQLITE_OK && (sr = sqlite3_step(st)) == SQLITE_ROW) {
        rep_db_sweep_rec_t w = { col_dup(st, 0), col_dup(st, 1), col_dup(st, 2),
                                 col_dup(st, 3), col_dup(st, 4), col_dup(st, 5),
                                 sqlite3_column_int64(st, 6) };
        lb_vec_push(&out->sweeps, w);
    }
    if (rc == SQLITE_OK && sr != SQLITE_DONE) rc = sr;
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "SELECT id, run_key, sweep_key, status = 'complete',"
                                " variant, seed, t_end_s FROM runs ORDER BY id", -1, &st, NULL);
    while (rc == SQLITE_OK && (sr = sqlite3_step(st)) == SQLITE_ROW) {
        rep_db_shard_run_t r = { sqlite3_column_int64(st, 0), col_dup(st, 1), col_dup(st, 2),
                                 sqlite3_column_int(st, 3) != 0, col_dup(st, 4),
                                 (uint64_t)sqlite3_column_int64(st, 5),
                                 sqlite3_column_double(st, 6) };
        lb_vec_push(&out->runs, r);
    }
    if (rc == SQLITE_OK && sr != SQLITE_DONE) rc = sr;
    sqlite3_finalize(st);
    st = NULL;
    if (rc == SQLITE_OK && out->sweeps.n)
        rc = sqlite3_prepare_v2(db, "SELECT path, content FROM scenario_files WHERE"
                                " scenario_hash = ?1 ORDER BY main DESC, path", -1, &st, NULL);
    if (rc == SQLITE_OK && st) {
        sqlite3_bind_text(st, 1, out->sweeps.v[0].scenario_hash, -1, SQLITE_STATIC);
        while ((sr = sqlite3_step(st)) == SQLITE_ROW) {
            size_t len = (size_t)sqlite3_column_bytes(st, 1);
            const void *b = sqlite3_column_blob(st, 1);
            rep_db_file_t f = { col_dup(st, 0), lb_malloc(len + 1), len };
            if (len) memcpy(f.text, b, len);
            f.text[len] = '\0';
            lb_vec_push(&out->files, f);
        }
        if (sr != SQLITE_DONE) rc = sr;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        lb_errf(err, errlen, "%s: %s", path, db_sql_msg(db));
        rep_db_shard_free(out);
        ret = LB_EIO;
    }
    sqlite3_close(db);
    return ret;
}

/* ---- merging ---------------------------------------------------------------------------------- */

/* "file:PATH?mode=ro" with PATH escaped as a URI (sqlite.org/uri.html); caller frees. */
static char *ro_uri(const char *path)
{
    LB_VEC(char) u = {0};
    const char *head = "file:";
    lb_vec_reserve(&u, strlen(path) * 3 + 16);
    memcpy(u.v, head, 5);
    u.n = 5;
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if (*c == '%' || *c == '?' || *c == '#' || *c < 0x21 || *c >= 0x7f)
            u.n += (size_t)sprintf(u.v + u.n, "%%%02X", *c);
        else
            u.v[u.n++] = (char)*c;
    }
    memcpy(u.v + u.n, "?mode=ro", 9);
    return u.v;
}

/* The SQL copying shard `alias`'s picked runs (runs, then every per-run table, rows in
 * their order) into main. ?1 is the shard's index in temp.pick. Caller frees. */
static char *copy_sql(const char *alias)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f) abort();
    fprintf(f, "INSERT INTO main.runs (id");
    for (size_t i = 0; db_runs_cols[i]; i++) fprintf(f, ", %s", db_runs_cols[i]);
    fprintf(f, ") SELECT p.new_id");
    for (size_t i = 0; db_runs_cols[i]; i++) fprintf(f, ", r.%s", db_runs_cols[i]);
    fprintf(f, " FROM %s.runs r JOIN temp.pick p ON p.shard = ?1 AND p.old_id = r.id"
            " ORDER BY p.new_id;\n", alias);
    for (int t = 0; t < T_COUNT; t++) {
        fprintf(f, "INSERT INTO main.%s (run_id", db_tables[t].name);
        for (const col_t *c = db_tables[t].cols; c->name; c++) fprintf(f, ", %s", c->name);
        fprintf(f, ") SELECT p.new_id");
        for (const col_t *c = db_tables[t].cols; c->name; c++) fprintf(f, ", x.%s", c->name);
        fprintf(f, " FROM %s.%s x JOIN temp.pick p ON p.shard = ?1 AND p.old_id = x.run_id"
                " ORDER BY p.new_id, x.rowid;\n", alias, db_tables[t].name);
    }
    fprintf(f, "INSERT OR IGNORE INTO main.sweeps SELECT * FROM %s.sweeps WHERE key = ?2;\n"
            "INSERT OR IGNORE INTO main.scenario_files SELECT f.* FROM %s.scenario_files f"
            " JOIN %s.sweeps w ON w.scenario_hash = f.scenario_hash WHERE w.key = ?2;\n",
            alias, alias, alias);
    fclose(f);
    char *out = lb_strdup(s);
    free(s);
    return out;
}

/* Runs every statement of sql with ?1 = shard, ?2 = key. SQLite code. */
static int run_script(sqlite3 *db, const char *sql, int64_t shard, const char *key)
{
    const char *tail = sql;
    int rc = SQLITE_OK;
    while (rc == SQLITE_OK && tail && *tail) {
        sqlite3_stmt *st = NULL;
        rc = sqlite3_prepare_v2(db, tail, -1, &st, &tail);
        if (rc != SQLITE_OK || !st) break;
        if (sqlite3_bind_parameter_count(st) >= 1) sqlite3_bind_int64(st, 1, shard);
        if (sqlite3_bind_parameter_count(st) >= 2) sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        sqlite3_finalize(st);
    }
    return rc;
}

int rep_db_merge_into(const char *out_path, const char *const *shards, size_t nshards,
                      const rep_db_pick_t *picks, size_t npicks, size_t attach_max,
                      const char *sweep_key, char *err, size_t errlen)
{
    rep_db_t *h;
    if (rep_db_open(out_path, &h, err, errlen)) return LB_EIO;   /* the schema */
    rep_db_close(h);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(out_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI, NULL);
    if (rc != SQLITE_OK) {
        lb_errf(err, errlen, "%s: %s", out_path, db ? db_sql_msg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return LB_EIO;
    }
    sqlite3_busy_timeout(db, REP_DB_BUSY_TIMEOUT_MS);
    /* never more than the library allows, whatever was asked */
    int lim = sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, -1);
    if (attach_max < 1) attach_max = 1;
    if (lim > 0 && attach_max > (size_t)lim) attach_max = (size_t)lim;
    sqlite3_stmt *st = NULL;
    rc = db_exec(db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=OFF;"
                     " CREATE TEMP TABLE pick (shard INTEGER NOT NULL, old_id INTEGER NOT NULL,"
                     " new_id INTEGER PRIMARY KEY); BEGIN");
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "INSERT INTO temp.pick VALUES (?1, ?2, ?3)", -1, &st, NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < npicks; i++) {
        sqlite3_bind_int64(st, 1, (int64_t)picks[i].shard);
        sqlite3_bind_int64(st, 2, picks[i].old_id);
        sqlite3_bind_int64(st, 3, picks[i].new_id);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_OK) rc = db_exec(db, "COMMIT");
    const char *where = "preparing the merge";
    bool said = false;
    for (size_t b = 0; rc == SQLITE_OK && b < nshards; b += attach_max) {
        size_t e = b + attach_max < nshards ? b + attach_max : nshards, attached = 0;
        where = "attaching a shard";
        for (size_t k = b; rc == SQLITE_OK && k < e; k++) {
            char *uri = ro_uri(shards[k]);
            char *sql = lb_sprintf("ATTACH DATABASE ?1 AS s%zu", k - b);
            rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
            if (rc == SQLITE_OK) {
                sqlite3_bind_text(st, 1, uri, -1, SQLITE_STATIC);
                rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
                attached += rc == SQLITE_OK;
            }
            sqlite3_finalize(st);
            lb_free(sql);
            lb_free(uri);
            if (rc != SQLITE_OK) where = shards[k];
        }
        if (rc == SQLITE_OK) {
            where = "copying runs";
            rc = db_exec(db, "BEGIN");
        }
        for (size_t k = b; rc == SQLITE_OK && k < e; k++) {
            char alias[32];
            snprintf(alias, sizeof alias, "s%zu", k - b);
            char *sql = copy_sql(alias);
            rc = run_script(db, sql, (int64_t)k, sweep_key);
            lb_free(sql);
            if (rc != SQLITE_OK) where = shards[k];
        }
        if (rc == SQLITE_OK) rc = db_exec(db, "COMMIT");
        else if (!sqlite3_get_autocommit(db)) db_exec(db, "ROLLBACK");
        if (rc != SQLITE_OK) {
            lb_errf(err, errlen, "merging into %s (%s): %s", out_path, where, db_sql_msg(db));
            said = true;
        }
        for (size_t k = 0; k < attached; k++) {
            char *sql = lb_sprintf("DETACH DATABASE s%zu", k);
            db_exec(db, sql);
            lb_free(sql);
        }
    }
    if (rc != SQLITE_OK && !said)
        lb_errf(err, errlen, "merging into %s (%s): %s", out_path, where, db_sql_msg(db));
    /* closing the last connection checkpoints the WAL into the file and removes it */
    if (sqlite3_close(db) != SQLITE_OK && rc == SQLITE_OK) {
        lb_errf(err, errlen, "closing %s", out_path);
        rc = SQLITE_ERROR;
    }
    return rc == SQLITE_OK ? 0 : LB_EIO;
}
