/*
 * access_json: reading the access catalog documents (access.h): a member as
 * a string, a boolean or an array, and lookups in their lists. Each reads
 * what is there and answers NULL or false for what is not; nothing here
 * allocates.
 */
#ifndef GODWIT_ACCESS_JSON_H
#define GODWIT_ACCESS_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* o's member key as a string (borrowed), or NULL. */
const char *access_json_str(const cJSON *o, const char *key);
/* Whether o's member key is true. */
bool access_json_true(const cJSON *o, const char *key);
/* o's member key when it is an array, else NULL. */
const cJSON *access_json_arr(const cJSON *o, const char *key);
/* Two strings of the documents are the same (both NULL too). */
bool access_json_eq(const char *a, const char *b);
/* The object of list whose member key is name, or NULL. */
const cJSON *access_json_by_name(const cJSON *list, const char *key, const char *name);
/* Whether list (of strings) holds name. */
bool access_json_in_strings(const cJSON *list, const char *name);

#endif
