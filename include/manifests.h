/* manifests.h -- Kubernetes manifests, as kubectl takes them (YAML, one or more "---"
 * separated documents), into the objects of k8s.h: Namespace, ConfigMap, Deployment
 * (apps/v1), Service (v1), Gateway and HTTPRoute (gateway.networking.k8s.io v1, v1beta1)
 * and ReferenceGrant (v1beta1, v1alpha2), with the API's defaults and validation errors
 * at file:line:col. Fields the model does not use are warnings, never silently dropped. */
#ifndef MANIFESTS_H
#define MANIFESTS_H

#include <stdio.h>
#include "k8s.h"
#include "scenario.h"

/* A set of loaded objects. It owns the k8s_objects_t, the file names their positions
 * point to (meta.pos.file), and the warnings. */
typedef struct manifests manifests_t;

manifests_t *manifests_new(void);
void manifests_free(manifests_t *m);            /* NULL-safe; frees the objects too */

/* Adds one manifest: a mapping with apiVersion, kind, metadata.name. The object's
 * meta.pos is where the mapping starts and meta.order the number of objects added before
 * it (load order stands in for creationTimestamp: earlier = older). A null document
 * (only comments) is skipped and counted as a harmless warning. Returns 0, or LB_EINVAL
 * with *diag ("file:line:col" of the offending node); on error m is unchanged. */
int manifests_add(manifests_t *m, const scn_node_t *doc, scn_diag_t *diag);
/* Every document of a stream, in order; stops at the first error (documents before it
 * stay added). */
int manifests_add_docs(manifests_t *m, const scn_docs_t *docs, scn_diag_t *diag);
/* Reads a file / a string as a YAML stream and adds every document. LB_EIO, LB_EPARSE
 * (YAML) or LB_EINVAL (a manifest) with *diag. */
int manifests_add_file(manifests_t *m, const char *path, scn_diag_t *diag);
int manifests_add_string(manifests_t *m, const char *text, const char *fname,
                         scn_diag_t *diag);

/* The objects added so far (owned by m; valid until manifests_free). */
const k8s_objects_t *manifests_objects(const manifests_t *m);

/* ---- warnings ------------------------------------------------------------------------------
 * One per (kind, field path): "spec.template.spec.containers[].resources" (list items
 * as "[]"), with the position of the first occurrence and how many times it was seen.
 * Harmless ones (status, server-set metadata such as creationTimestamp, documents with
 * only comments: kind "" and field "") are kept apart and printed as one summary line. */
typedef struct manifests_warning {
    char *kind;                     /* "Deployment"; "" for a document with only comments */
    char *field;                    /* path in the object; "" for such a document */
    elem_pos_t pos;                 /* first occurrence (file owned by the set) */
    int count;
    bool harmless;
} manifests_warning_t;
size_t manifests_warning_count(const manifests_t *m);
const manifests_warning_t *manifests_warning_at(const manifests_t *m, size_t i);
/* Prints each unmodelled field once, in first-seen order,
 *   "file:line:col: warning: Deployment field spec.template.spec.containers[].resources
 *    is not modelled (ignored)"
 * then, if any, one line for the harmless ones:
 *   "file:line:col: note: ignored 3 items that do not affect the model: Deployment status
 *    (2), document with only comments (1)". */
void manifests_print_warnings(const manifests_t *m, FILE *out);
/* The same for several sets at once (a scenario's variants), each (kind, field) once. */
void manifests_print_warnings_n(const manifests_t *const *sets, size_t n, FILE *out);

#endif
