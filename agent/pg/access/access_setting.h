/*
 * access_setting: a role's settings (pg_db_role_setting, "name=value"), as
 * SQL that sets them again on the target and compared between the sides,
 * everywhere or in the database.
 *
 * Nothing here keeps state; names and values are quoted by the caller's
 * functions (access_quote_t).
 */
#ifndef GODWIT_ACCESS_SETTING_H
#define GODWIT_ACCESS_SETTING_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "access.h"
#include "access_buf.h"
#include "access_cmp.h"

/* A role setting as pg_db_role_setting stores it ("name=value") as the SQL
 * that sets it again: `"name" TO 'value'`, a list setting (search_path and
 * the other GUC_LIST_QUOTE ones) element by element: `"search_path" TO
 * '$user', 'public'`. NULL when it is not "name=value" or quoting fails.
 * Caller frees. */
char *access_setting_sql(const char *setting, const access_quote_t *q);

char *access_setting_stmt(access_cmp_t *c, const char *role, bool in_db, const char *setting,
                          const char *reset_name);
void access_setting_compare(access_cmp_t *c, const char *role, bool in_db, const cJSON *sl,
                            const cJSON *dl, access_buf_t *stmt, access_buf_t *problem);

#endif
