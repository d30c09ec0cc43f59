/*
 * access_objects: the owners and privileges of the database and of its
 * objects (columns too), and tables' row-level security, compared between
 * the sides by each object's identity (pg_identify_object's). An object on
 * one side only is not an access difference.
 *
 * What it owns: the index access_objects_index returns (the caller frees
 * it); the documents are the caller's.
 */
#ifndef GODWIT_ACCESS_OBJECTS_H
#define GODWIT_ACCESS_OBJECTS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "access_cmp.h"

/* The database's owner and privileges. */
void access_objects_database_compare(access_cmp_t *c);

const cJSON **access_objects_index(const cJSON *doc, size_t *n);
/* The object of index with key's type and id, or NULL. */
const cJSON *access_objects_find(const cJSON **index, size_t n, const cJSON *key);

/* Every object src describes that dindex (the target's, from
 * access_objects_index) holds too. */
void access_objects_compare(access_cmp_t *c, const cJSON **dindex, size_t dn);

#endif
