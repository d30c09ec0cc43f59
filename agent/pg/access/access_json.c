/*
 * access_json: see access_json.h. Reads the catalog documents; owns nothing.
 */
#include "access_json.h"

#include <string.h>

const char *access_json_str(const cJSON *o, const char *key)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

bool access_json_true(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

const cJSON *access_json_arr(const cJSON *o, const char *key)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsArray(a) ? a : NULL;
}

bool access_json_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

const cJSON *access_json_by_name(const cJSON *list, const char *key, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
        if (access_json_eq(access_json_str(it, key), name))
            return it;
    return NULL;
}

bool access_json_in_strings(const cJSON *list, const char *name)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
        if (access_json_eq(cJSON_GetStringValue(it), name))
            return true;
    return false;
}
