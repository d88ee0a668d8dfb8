/* emit.c -- `sim --emit-job k8s|slurm --shards N SCENARIO.yaml [sweep options]`: the files
 * that run a sweep's shards on a cluster.
 *
 * Kubernetes: a ConfigMap holding the scenario and every file it includes (mounted at
 * /scenario with the files' layout), and an Indexed Job of N completions: each pod runs
 * `sim --shard --shards N` (its index from JOB_COMPLETION_INDEX) writing into the results
 * volume (a PersistentVolumeClaim mounted at /results); backoffLimitPerIndex retries a
 * failed index, a podFailurePolicy fails an index at once on exit status 2 (bad input: a
 * retry gives the same answer) and does not count a pod's disruption (preemption,
 * eviction: DisruptionTarget) as a failure. Needs Kubernetes 1.29+ (backoffLimitPerIndex
 * and FailIndex beta and on by default; GA in 1.33).
 *
 * Slurm: a bash script, run on a login node, that submits a job array of N tasks (#SBATCH
 * --array=0-(N-1), one output file per task) and the merge as a job depending on the
 * array (afterany: the merge also runs when a task failed, and names the runs missing). */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include "sweep.h"

/* Where the pod sees the scenario's files and the results volume. */
#define K8S_SCENARIO_DIR "/scenario"
#define K8S_RESULTS_DIR "/results"
/* Kubernetes refuses a ConfigMap bigger than 1 MiB (its data, roughly). */
#define K8S_CONFIGMAP_MAX 1000000
/* A Job's name: a DNS label; an Indexed Job's pods are named <job>-<index>-<suffix>. */
#define K8S_JOB_NAME_MAX 40

/* s in YAML double quotes (JSON's escapes, which YAML shares). */
static void yq(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
        else if (*c == '\n') fputs("\\n", f);
        else if (*c == '\t') fputs("\\t", f);
        else if (*c < 0x20 || *c == 0x7f) fprintf(f, "\\u%04x", *c);
        else fputc(*c, f);
    }
    fputc('"', f);
}

/* text as a YAML value at `indent`: a literal block when that keeps it byte for byte
 * (printable text and tabs, no CR), else a double-quoted string. */
static void yblock(FILE *f, const char *text, size_t len, int indent)
{
    bool plain = len > 0 && strlen(text) == len;
    for (size_t i = 0; plain && i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        plain = !(c < 0x20 && c != '\n' && c != '\t') && c != 0x7f;
    }
    if (!plain) {
        char *t = lb_strndup(text, len);            /* a NUL byte ends it: not YAML text */
        yq(f, t);
        lb_free(t);
        fputc('\n', f);
        return;
    }
    size_t nl = 0;
    while (nl < len && text[len - 1 - nl] == '\n') nl++;
    /* explicit indentation (2): a first line starting with a space stays content */
    fprintf(f, "|2%s\n", nl == 0 ? "-" : nl == 1 ? "" : "+");
    const char *p = text, *end = text + len;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t l = e ? (size_t)(e - p) : (size_t)(end - p);
        if (l) fprintf(f, "%*s%.*s\n", indent + 2, "", (int)l, p);
        else fputc('\n', f);
        p += l + 1;
    }
}

/* A DNS-1123 label from s: lowercase letters, digits and '-', at most max characters,
 * starting and ending with a letter or digit. */
static void dns_label(char *out, size_t max, const char *s)
{
    size_t k = 0;
    for (const char *c = s; *c && k < max; c++) {
        char ch = *c >= 'A' && *c <= 'Z' ? (char)(*c - 'A' + 'a') : *c;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (!ok) ch = '-';
        if (ch == '-' && (!k || out[k - 1] == '-')) continue;
        out[k++] = ch;
    }
    while (k && out[k - 1] == '-') k--;
    out[k] = '\0';
}

/* A ConfigMap key for file i: [-._a-zA-Z0-9]+. */
static void cm_key(char *out, size_t len, size_t i, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int k = snprintf(out, len, "%02zu-", i);
    for (const char *c = base; *c && (size_t)k + 1 < len; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                  (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_';
        out[k++] = ok ? *c : '_';
    }
    out[k] = '\0';
}

static int emit_k8s(const sweep_t *sw, const sweep_emit_opts_t *o, FILE *f, char *err,
                    size_t errlen)
{
    if (!o->image || !*o->image || !o->pvc || !*o->pvc) {
        lb_errf(err, errlen, "needs --image IMAGE (a container image with sim on its PATH) "
                "and --pvc NAME (the PersistentVolumeClaim the shards write their results to)");
        return LB_EINVAL;
    }
    /* a PersistentVolumeClaim's name is a DNS subdomain (RFC 1123) */
    size_t pl = strlen(o->pvc);
    bool ok = pl <= 253 && isalnum((unsigned char)o->pvc[0]) &&
              isalnum((unsigned char)o->pvc[pl - 1]);
    for (size_t i = 0; ok && i < pl; i++)
        ok = (o->pvc[i] >= 'a' && o->pvc[i] <= 'z') || (o->pvc[i] >= '0' && o->pvc[i] <= '9') ||
             o->pvc[i] == '-' || o->pvc[i] == '.';
    if (!ok) {
        lb_errf(err, errlen, "--pvc '%s' is not a Kubernetes object name (lowercase letters, "
                "digits, '-' and '.')", o->pvc);
        return LB_EINVAL;
    }
    size_t total = 0;
    for (size_t i = 0; i < sweep_source_count(sw); i++) {
        size_t len;
        sweep_source_text(sw, i, &len);
        total += len;
    }
    if (total > K8S_CONFIGMAP_MAX) {
        lb_errf(err, errlen, "the scenario's files take %zu bytes, more than a ConfigMap holds "
                "(1 MiB): bake them into the image and point the Job's last argument at them",
                total);
        return LB_EINVAL;
    }
    const scn_t *s = sweep_scn(sw, 0);
    char scn[32], name[64];
    dns_label(scn, 20, scn_name(s));                /* "lbchain-" + 20 + "-" + 8 <= 40 */
    snprintf(name, sizeof name, "lbchain-%s%s%.8s", scn, *scn ? "-" : "", sweep_key(sw));
    assert(strlen(name) <= K8S_JOB_NAME_MAX);
    long n = o->shards;
    fprintf(f, "# lbchain sweep %s of %s: %zu runs in %ld shards (sim --emit-job k8s).\n"
            "#   kubectl apply -f THIS_FILE\n"
            "#   kubectl wait --for=condition=complete --timeout=-1s job/%s\n"
            "# Each pod runs shard JOB_COMPLETION_INDEX of %ld into the volume of PVC %s at\n"
            "# %s/%s/sweep-%s/shard-I-of-%ld/ (a shard run again skips its runs already\n"
            "# complete);\n"
            "# merge them with sim --merge (README, \"Sweeps on a cluster\").\n"
            "# Needs Kubernetes 1.29 or later: backoffLimitPerIndex and the FailIndex action\n"
            "# are beta (on by default) from 1.29 and GA in 1.33; podFailurePolicy is GA in 1.31.\n",
            sweep_key(sw), scn_name(s), sweep_run_count(sw), n, name, n, o->pvc,
            K8S_RESULTS_DIR, scn_name(s), sweep_key(sw), n);
    /* the ConfigMap: the scenario's files under keys, mounted back at their paths */
    fprintf(f, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s-scenario\n"
            "  labels:\n    app.kubernetes.io/name: lbchain\n    lbchain.io/sweep: \"%s\"\n"
            "data:\n", name, sweep_key(sw));
    for (size_t i = 0; i < sweep_source_count(sw); i++) {
        char key[300];
        size_t len;
        const char *text = sweep_source_text(sw, i, &len);
        cm_key(key, sizeof key, i, sweep_source_path(sw, i));
        fprintf(f, "  %s: ", key);
        yblock(f, text, len, 2);
    }
    fprintf(f, "---\napiVersion: batch/v1\nkind: Job\nmetadata:\n  name: %s\n  labels:\n"
            "    app.kubernetes.io/name: lbchain\n    lbchain.io/sweep: \"%s\"\nspec:\n"
            "  completionMode: Indexed\n  completions: %ld\n  parallelism: %ld\n"
            "  backoffLimitPerIndex: %d\n"
            "  podReplacementPolicy: Failed   # one pod per index at a time (its results folder)\n"
            "  podFailurePolicy:\n    rules:\n"
            "    - action: FailIndex          # exit status 2: bad input; a retry fails the same\n"
            "      onExitCodes:\n        containerName: sim\n        operator: In\n"
            "        values: [2]\n"
            "    - action: Ignore             # preempted or evicted: retried, not counted\n"
            "      onPodConditions:\n      - type: DisruptionTarget\n"
            "  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: lbchain\n"
            "        lbchain.io/sweep: \"%s\"\n    spec:\n      restartPolicy: Never\n"
            "      containers:\n      - name: sim\n        image: ",
            name, sweep_key(sw), n, n, o->backoff_per_index, sweep_key(sw));
    yq(f, o->image);
    fprintf(f, "\n        command: [\"sim\"]\n        args:\n        - \"--shard\"\n"
            "        - \"--shards\"\n        - \"%ld\"\n        - \"--out\"\n        - \"%s\"\n"
            "        - \"--jobs\"\n        - \"%d\"\n", n, K8S_RESULTS_DIR, o->jobs);
    for (size_t i = 0; i < o->n_args; i++) {
        fputs("        - ", f);
        yq(f, o->args[i]);
        fputc('\n', f);
    }
    char *main_path = lb_sprintf("%s/%s", K8S_SCENARIO_DIR, sweep_source_path(sw, 0));
    fputs("        - ", f);
    yq(f, main_path);
    lb_free(main_path);
    fprintf(f, "\n        resources:\n          requests:\n            cpu: \"%d\"\n"
            "        volumeMounts:\n        - name: scenario\n          mountPath: %s\n"
            "          readOnly: true\n        - name: results\n          mountPath: %s\n"
            "      volumes:\n      - name: scenario\n        configMap:\n          name: %s-scenario\n"
            "          items:\n", o->jobs, K8S_SCENARIO_DIR, K8S_RESULTS_DIR, name);
    for (size_t i = 0; i < sweep_source_count(sw); i++) {
        char key[300];
        cm_key(key, sizeof key, i, sweep_source_path(sw, i));
        fprintf(f, "          - key: %s\n            path: ", key);
        yq(f, sweep_source_path(sw, i));
        fputc('\n', f);
    }
    fprintf(f, "      - name: results\n        persistentVolumeClaim:\n          claimName: %s\n",
            o->pvc);
    return 0;
}

/* s as one shell word in single quotes. */
static void sq(FILE *f, const char *s)
{
    fputc('\'', f);
    for (const char *c = s; *c; c++) {
        if (*c == '\'') fputs("'\\''", f);
        else fputc(*c, f);
    }
    fputc('\'', f);
}

static int emit_slurm(const sweep_t *sw, const sweep_emit_opts_t *o, FILE *f, char *err,
                      size_t errlen)
{
    char scen[PATH_MAX];
    if (!realpath(sweep_file(sw), scen)) {
        lb_errf(err, errlen, "%s: %s", sweep_file(sw), strerror(errno));
        return LB_EINVAL;
    }
    const scn_t *s = sweep_scn(sw, 0);
    char scn[32];
    dns_label(scn, 20, scn_name(s));
    long n = o->shards;
    char *base = lb_sprintf("%s/%s/sweep-%s", o->out, scn_name(s), sweep_key(sw));
    if (strpbrk(base, " \t\n\"'\\$`")) {
        lb_errf(err, errlen, "the results folder '%s' has a character #SBATCH lines cannot hold "
                "(white space, quotes, '\\', '$', '`'): give another --out", base);
        lb_free(base);
        return LB_EINVAL;
    }
    fprintf(f, "#!/bin/bash\n# lbchain sweep %s of %s: %zu runs in %ld shards (sim --emit-job "
            "slurm).\n# Run it on a login node: bash THIS_FILE. It submits a job array of %ld "
            "tasks, each\n# running shard SLURM_ARRAY_TASK_ID into %s/shard-I-of-%ld/ (a shard "
            "run again\n# skips its runs already complete), and the merge into %s/merged/ as a "
            "job that\n# starts when the array has ended (afterany: it names the runs a failed "
            "task left\n# missing). Logs: %s/logs/. The files must be on a file system every "
            "node sees.\nset -euo pipefail\nmkdir -p %s/logs\n", sweep_key(sw), scn_name(s),
            sweep_run_count(sw), n, n, base, n, base, base, base);
    /* the array: its script, literal (a quoted here-document), read by sbatch from
     * standard input */
    fprintf(f, "array=$(sbatch --parsable <<'EOF'\n#!/bin/bash\n#SBATCH --job-name=lbchain-%s\n"
            "#SBATCH --array=0-%ld\n#SBATCH --cpus-per-task=%d\n"
            "#SBATCH --output=%s/logs/shard-%%a.out\nexec ", scn, n - 1, o->jobs, base);
    sq(f, o->sim);
    fprintf(f, " --shard --shards %ld --jobs %d --out ", n, o->jobs);
    sq(f, o->out);
    for (size_t i = 0; i < o->n_args; i++) {
        fputc(' ', f);
        sq(f, o->args[i]);
    }
    fputc(' ', f);
    sq(f, scen);
    fprintf(f, "\nEOF\n)\nmerge=$(sbatch --parsable --dependency=\"afterany:${array%%%%;*}\" "
            "--job-name=lbchain-%s-merge --output=%s/logs/merge.out <<'EOF'\n#!/bin/bash\n"
            "exec ", scn, base);
    sq(f, o->sim);
    fprintf(f, " --merge %s/merged %s/shard-*-of-%ld\nEOF\n)\n"
            "echo \"lbchain sweep %s: array job ${array%%%%;*} (%ld shards), merge job "
            "${merge%%%%;*}; results in %s/merged/\"\n", base, base, n, sweep_key(sw), n, base);
    lb_free(base);
    return 0;
}

int sweep_emit(const sweep_t *sw, const sweep_emit_opts_t *o, FILE *out, char *err,
               size_t errlen)
{
    if (o->shards < 1) {
        lb_errf(err, errlen, "needs --shards N (N >= 1)");
        return LB_EINVAL;
    }
    if (!strcmp(o->kind, "k8s")) return emit_k8s(sw, o, out, err, errlen);
    if (!strcmp(o->kind, "slurm")) return emit_slurm(sw, o, out, err, errlen);
    lb_errf(err, errlen, "expected k8s or slurm, got '%s'", o->kind);
    return LB_EINVAL;
}
