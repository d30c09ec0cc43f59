/*
 * cfgyaml: the config loader's YAML document (private to the loader, see
 * cfg.h): composing a file's single document with its limits, and
 * YAML's nulls.
 */
#ifndef GODWIT_CFGYAML_H
#define GODWIT_CFGYAML_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "cfgerr.h"

/* A plain scalar YAML reads as null: "", "~", "null", "Null", "NULL". A
 * quoted "null" is the string. */
bool cfgyaml_is_null(const yaml_node_t *node);

/* Composes the single document of text (len bytes, read by parser) into
 * doc, initialized here; the caller deletes doc, also on failure. An empty
 * stream leaves doc without a root. false after writing the error to e. */
bool cfgyaml_compose(const cfgerr_t *e, yaml_parser_t *parser, yaml_document_t *doc,
                     const char *text, size_t len);

#endif
