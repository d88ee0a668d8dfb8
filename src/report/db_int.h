/* db_int.h -- results.db's table layout and SQLite helpers, shared by db.c (the schema, a
 * run's recorder) and db_sweep.c (sweeps, stored results, merging shard files); private
 * to src/report. */
#ifndef DB_INT_H
#define DB_INT_H

#include <sqlite3.h>

typedef struct col { const char *name, *decl; } col_t;

/* Per-run tables: the file's version has a leading run_id column (foreign key to runs.id,
 * indexed); a run's buffer has the same columns without it. */
enum { T_REQUESTS, T_PROBES, T_HEALTH, T_DROPS, T_SERIES, T_COUNTERS, T_EXPECTATIONS,
       T_RESULTS, T_COUNT };
struct table { const char *name; const col_t *cols; };
extern const struct table db_tables[T_COUNT];
/* The columns of runs after id, NULL-terminated. */
extern const char *const db_runs_cols[];

/* Runs SQL without results. 0 or the SQLite code. */
int db_exec(sqlite3 *db, const char *sql);
/* SQLite's message for db's last error, with the system's reason ("database or disk is
 * full (No space left on device)"); valid until the next call. */
const char *db_sql_msg(sqlite3 *db);

#endif
