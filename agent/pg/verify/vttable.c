/*
 * vttable: the VerifyTable step's table (see vttable.h): the catalog
 * lookup and the SQL pieces. The row's hash is the one vwindow.h computes
 * from the WAL: sha256 of the row's text in UTF-8.
 *
 * SQL: names go into the text only through PQescapeIdentifier, types only
 * as the server's own format_type().
 */
#include "vttable.h"
#include "log.h"
#include "vtbatch.h"
#include "vtresult.h"
#include "xalloc.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table ---------------------------------------------------------- */

/* $1 schema, $2 name: the compared columns in attnum order (cols, a JSON
 * array of [name, type]) and the key: the replica identity index, else the
 * primary key, else the unique index on NOT NULL columns with the fewest
 * columns; usable when every column of it is compared and NOT NULL and it
 * is neither partial nor on expressions. key_cols: a JSON array of names. */
static const char s_table_sql[] =
    "WITH rel AS (SELECT c.oid, c.relreplident FROM pg_catalog.pg_class c"
    "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
    "  WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')),"
    " cand AS (SELECT CASE WHEN i.indisreplident AND rel.relreplident = 'i' THEN 1"
    "    WHEN i.indisprimary THEN 2 ELSE 3 END AS rank,"
    "    CASE WHEN i.indisprimary THEN 'primary key'"
    "    WHEN i.indisreplident AND rel.relreplident = 'i' THEN 'replica identity index ' ||"
    "      pg_catalog.quote_ident(ic.relname)"
    "    ELSE 'unique index ' || pg_catalog.quote_ident(ic.relname) END AS kind,"
    "    ic.relname AS iname, i.indnkeyatts AS nk,"
    "    (SELECT pg_catalog.json_agg(a.attname ORDER BY k.ord)"
    "     FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY k(attnum, ord)"
    "     JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid AND a.attnum = k.attnum"
    "     WHERE k.ord <= i.indnkeyatts) AS cols,"
    "    (SELECT pg_catalog.bool_and(a.attnotnull AND a.attgenerated = '')"
    "     FROM pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY k(attnum, ord)"
    "     JOIN pg_catalog.pg_attribute a ON a.attrelid = rel.oid AND a.attnum = k.attnum"
    "     WHERE k.ord <= i.indnkeyatts) AND NOT (0 = ANY (i.indkey::pg_catalog.int2[]))"
    "     AS usable"
    "  FROM rel JOIN pg_catalog.pg_index i ON i.indrelid = rel.oid"
    "  JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
    "  WHERE i.indisunique AND i.indisvalid AND i.indimmediate AND i.indpred IS NULL"
    "  AND i.indexprs IS NULL)"
    " SELECT rel.relreplident::pg_catalog.text AS replident,"
    "  (SELECT pg_catalog.json_agg(pg_catalog.json_build_array(a.attname,"
    "     pg_catalog.format_type(a.atttypid, a.atttypmod)) ORDER BY a.attnum)"
    "   FROM pg_catalog.pg_attribute a WHERE a.attrelid = rel.oid AND a.attnum > 0"
    "   AND NOT a.attisdropped AND a.attgenerated = '')::pg_catalog.text AS cols,"
    "  (SELECT c.kind FROM cand c WHERE c.usable ORDER BY c.rank, c.nk, c.iname LIMIT 1) AS key_kind,"
    "  (SELECT c.cols FROM cand c WHERE c.usable ORDER BY c.rank, c.nk, c.iname LIMIT 1)"
    "   ::pg_catalog.text AS key_cols"
    " FROM rel";

/* Builds the SQL pieces from the table's columns and key. false after
 * ending the step. */
static bool s_table_sql_build(vtstep_t *s, char **types)
{
    char *schema = vtstep_ident(s, VTSTEP_SRC, s->req->table->schema);
    if (!schema)
        return false;
    char *name = vtstep_ident(s, VTSTEP_SRC, s->req->table->name);
    if (!name) {
        free(schema);
        return false;
    }
    s->table_sql = xasprintf("%s.%s", schema, name);
    free(schema);
    free(name);
    char *row = xstrdup(""), *text = xstrdup("");
    for (size_t i = 0; i < s->n_cols; i++) {
        char *q = vtstep_ident(s, VTSTEP_SRC, s->cols[i]);
        if (!q) {
            free(row);
            free(text);
            return false;
        }
        char *r = xasprintf("%s%st.%s", row, i ? ", " : "", q);
        char *t = xasprintf("%s%s(t.%s)::pg_catalog.text AS c%zu", text, i ? ", " : "", q, i + 1);
        free(row);
        free(text);
        free(q);
        row = r;
        text = t;
    }
    s->hash_sql = xasprintf("pg_catalog.sha256(pg_catalog.convert_to(ROW(%s)::pg_catalog.text,"
                            " 'UTF8'))", row);
    s->col_text = text;
    free(row);
    if (!s->n_keys)
        return true;
    char *order = xstrdup(""), *ktext = xstrdup(""), *bounds = xstrdup(""), *unn = xstrdup("");
    char *join = xstrdup("");
    for (size_t i = 0; i < s->n_keys; i++) {
        char *q = vtstep_ident(s, VTSTEP_SRC, s->cols[s->key_idx[i]]);
        if (!q) {
            free(order);
            free(ktext);
            free(bounds);
            free(unn);
            free(join);
            return false;
        }
        char *o = xasprintf("%s%st.%s", order, i ? ", " : "", q);
        char *t = xasprintf("%s%s(t.%s)::pg_catalog.text AS k%zu", ktext, i ? ", " : "", q, i + 1);
        char *b = xasprintf("%s%su.a%zu", bounds, i ? ", " : "", i + 1);
        char *u = xasprintf("%s%spg_catalog.unnest($%zu::%s[])", unn, i ? ", " : "", i + 1,
                            types[s->key_idx[i]]);
        char *j = xasprintf("%s%st.%s = w.a%zu", join, i ? " AND " : "", q, i + 1);
        free(order);
        free(ktext);
        free(bounds);
        free(unn);
        free(join);
        free(q);
        order = o;
        ktext = t;
        bounds = b;
        unn = u;
        join = j;
    }
    s->key_join = join;
    s->key_order = order;
    s->key_text = ktext;
    if (s->n_keys == 1) {
        s->key_lhs = xstrdup(order);
        s->bucket_sql = xasprintf("pg_catalog.width_bucket(%s, $1::%s[])", order,
                                  types[s->key_idx[0]]);
    } else {
        s->key_lhs = xasprintf("ROW(%s)", order);
        char *names = xstrdup("");
        for (size_t i = 0; i < s->n_keys; i++) {
            char *grown = xasprintf("%sa%zu, ", names, i + 1);
            free(names);
            names = grown;
        }
        s->bucket_sql = xasprintf("pg_catalog.width_bucket(ROW(%s), ARRAY(SELECT ROW(%s) FROM"
                                  " ROWS FROM (%s) WITH ORDINALITY u(%so) ORDER BY u.o))",
                                  order, bounds, unn, names);
        free(names);
    }
    free(bounds);
    free(unn);
    char *names = xstrdup("");
    for (size_t i = 0; i < s->n_keys; i++) {
        char *grown = xasprintf("%s%sa%zu", names, i ? ", " : "", i + 1);
        free(names);
        names = grown;
    }
    s->key_names = names;
    return true;
}

static void s_on_table(pgconn_t *c, const pgconn_result_t *r, void *arg)
{
    vtstep_t *s = arg;
    if (!vtstep_arrived(s, c, r))
        return;
    if (!r->res || PQntuples(r->res) != 1) {
        steprun_failf(&s->run, "no table %s.%s on the source", s->req->table->schema, s->req->table->name);
        return;
    }
    const char *replident = pgconn_col_str(r->res, 0, "replident");
    cJSON *cols = cJSON_Parse(pgconn_col_str(r->res, 0, "cols"));
    cJSON *keys = pgconn_col(r->res, 0, "key_cols") ? cJSON_Parse(pgconn_col(r->res, 0, "key_cols"))
                                                    : NULL;
    int n = cJSON_GetArraySize(cols);
    if (!cJSON_IsArray(cols) || n == 0) {
        cJSON_Delete(cols);
        cJSON_Delete(keys);
        steprun_failf(&s->run, "the table has no columns to compare");
        return;
    }
    s->n_cols = (size_t)n;
    s->cols = xcalloc(s->n_cols, sizeof *s->cols);
    char **types = xcalloc(s->n_cols, sizeof *types);
    for (int i = 0; i < n; i++) {
        const cJSON *pair = cJSON_GetArrayItem(cols, i);
        const char *cn = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 0));
        const char *ct = cJSON_GetStringValue(cJSON_GetArrayItem(pair, 1));
        s->cols[i] = xstrdup(cn ? cn : "");
        types[i] = xstrdup(ct ? ct : "");
    }
    Godwit__VerifyTableResult *res = s->result;
    int nk = cJSON_GetArraySize(keys);
    if (cJSON_IsArray(keys) && nk > 0) {
        s->key_idx = xcalloc((size_t)nk, sizeof *s->key_idx);
        s->key_types = xcalloc((size_t)nk, sizeof *s->key_types);
        res->key_columns = xcalloc((size_t)nk, sizeof *res->key_columns);
        for (int k = 0; k < nk; k++) {
            const char *kn = cJSON_GetStringValue(cJSON_GetArrayItem(keys, k));
            size_t i = 0;
            while (i < s->n_cols && (!kn || strcmp(s->cols[i], kn) != 0))
                i++;
            if (i == s->n_cols) { /* the catalog's answer contradicts itself */
                cJSON_Delete(cols);
                cJSON_Delete(keys);
                vtstep_strv_free(types, s->n_cols);
                steprun_failf(&s->run, "the key column %s is not among the table's columns", kn ? kn : "?");
                return;
            }
            s->key_idx[s->n_keys] = i;
            s->key_types[s->n_keys++] = xstrdup(types[i]);
            res->key_columns[res->n_key_columns++] = xstrdup(s->cols[i]);
        }
        vtresult_str_set(&res->key_kind, xstrdup(pgconn_col_str(r->res, 0, "key_kind")));
    } else {
        vtresult_str_set(&res->key_kind, xstrdup(strcmp(replident, "f") == 0 ? "multiset (REPLICA "
                                                                        "IDENTITY FULL)"
                                                                      : "multiset (no key)"));
        res->row_columns = xcalloc(s->n_cols, sizeof *res->row_columns);
        for (size_t i = 0; i < s->n_cols; i++)
            res->row_columns[res->n_row_columns++] = xstrdup(s->cols[i]);
    }
    cJSON_Delete(cols);
    cJSON_Delete(keys);
    bool ok = s_table_sql_build(s, types);
    vtstep_strv_free(types, s->n_cols);
    if (!ok)
        return;
    s->buckets[VTSTEP_SRC] = xcalloc(VWINDOW_BUCKETS, sizeof *s->buckets[VTSTEP_SRC]);
    s->buckets[VTSTEP_DST] = xcalloc(VWINDOW_BUCKETS, sizeof *s->buckets[VTSTEP_DST]);
    log_debug("verify %s: compared %s on %zu columns", s->run.label, res->key_kind, s->n_cols);
    s->then = vtbatch_begin;
    vtstep_maybe_then(s);
}

void vttable_lookup(vtstep_t *s)
{
    int sv = pgconn_server_version(s->run.conn[VTSTEP_SRC]);
    if (sv < 130000) {
        steprun_failf(&s->run, "the source runs PostgreSQL version number %d; verify needs 13 or later", sv);
        return;
    }
    const char *params[2] = { s->req->table->schema, s->req->table->name };
    vtstep_send(s, VTSTEP_SRC, "looking up the table's columns and key", s_table_sql, 2, params,
                s_on_table);
}
