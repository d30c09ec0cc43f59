/*
 * cfgyaml: the YAML side of the config loader. Composes a file's single
 * document into a libyaml node tree, from libyaml's events rather than its
 * own composer, so the nesting bound (S_MAX_DEPTH) holds before libyaml's
 * quadratic walk of nested flow levels can cost anything; words libyaml's
 * syntax errors; and tells which scalars YAML reads as null.
 *
 * Owns, while composing: the table of anchors seen, released before
 * returning. The document itself is the caller's (it deletes it, also on
 * failure). Never expands an alias into the document (an alias node is the
 * anchored node, read where the schema leads), logs, or keeps any state
 * between calls.
 */
#include "cfgyaml.h"
#include "cfgerr.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xalloc.h"

#define S_MAX_DEPTH 64 /* nested mappings and sequences */

/* A plain scalar YAML reads as null: "", "~", "null", "Null", "NULL". A
 * quoted "null" is the string. */
bool cfgyaml_is_null(const yaml_node_t *node)
{
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)node->data.scalar.value;
    return node->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* ---- the document ------------------------------------------------------ */

/* 0-based line of a byte offset in text (for reader errors, which have no
 * mark). */
static size_t s_line_of_offset(const char *text, size_t len, size_t off)
{
    size_t line = 0;
    for (size_t i = 0; i < off && i < len; i++)
        if (text[i] == '\n')
            line++;
    return line;
}

static bool s_yaml_error(const cfgerr_t *e, const yaml_parser_t *parser, const char *text,
                         size_t len)
{
    const char *problem = parser->problem ? parser->problem : "unknown problem";
    switch (parser->error) {
    case YAML_MEMORY_ERROR:
        return cfgerr_fail(e, 0, NULL, "YAML parser out of memory");
    case YAML_READER_ERROR:
        return cfgerr_fail(e, s_line_of_offset(text, len, parser->problem_offset), NULL,
                           "YAML error: %s", problem);
    default:
        if (parser->context)
            return cfgerr_fail(e, parser->problem_mark.line, NULL,
                               "YAML syntax error: %s (%s at line %zu)", problem, parser->context,
                               parser->context_mark.line + 1);
        return cfgerr_fail(e, parser->problem_mark.line, NULL, "YAML syntax error: %s", problem);
    }
}

/* ---- composing the document ------------------------------------------ */

/* One open collection while composing: its node, the key of the mapping
 * pair whose value comes next (0: none), the items so far (for the path of
 * an error) and the last key read. */
typedef struct {
    int node;
    bool mapping;
    int key;
    size_t items;
    char last_key[48];
} s_open_t;

typedef struct {
    char *name;
    int node;
} s_anchor_t;

/* Composition in progress: the open collections and the anchors seen. */
typedef struct {
    yaml_document_t *doc;
    s_open_t open[S_MAX_DEPTH];
    size_t depth;
    s_anchor_t *anchors;
    size_t n_anchors;
} s_compose_t;

/* The dotted path of the collection being composed, for an error. */
static void s_compose_path(const s_compose_t *cp, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < cp->depth && o + 1 < len; i++) {
        const s_open_t *op = &cp->open[i];
        int n;
        /* An outer collection holds the inner one as its last item so far;
         * the innermost is where the next item goes. */
        size_t at = i + 1 < cp->depth && op->items ? op->items - 1 : op->items;
        if (op->mapping)
            n = snprintf(buf + o, len - o, "%s%s", o ? "." : "", op->last_key);
        else
            n = snprintf(buf + o, len - o, "[%zu]", at);
        if (n < 0 || (size_t)n >= len - o) {
            /* Keep the start of a long path and say it was cut. */
            if (len > 4)
                memcpy(buf + len - 4, "...", 4);
            return;
        }
        o += (size_t)n;
    }
}

/* Adds node (just made) to the open collection, or makes it the root. */
static bool s_compose_attach(const cfgerr_t *e, s_compose_t *cp, int node, const yaml_mark_t *mark)
{
    if (cp->depth == 0)
        return true; /* the root: the document's first node */
    s_open_t *op = &cp->open[cp->depth - 1];
    if (!op->mapping) {
        op->items++;
        return yaml_document_append_sequence_item(cp->doc, op->node, node) ||
               cfgerr_fail(e, mark->line, NULL, "YAML parser out of memory");
    }
    if (!op->key) {
        op->key = node;
        yaml_node_t *k = yaml_document_get_node(cp->doc, node);
        if (k->type == YAML_SCALAR_NODE)
            snprintf(op->last_key, sizeof op->last_key, "%.*s",
                     (int)(k->data.scalar.length < 40 ? k->data.scalar.length : 40),
                     (const char *)k->data.scalar.value);
        else
            snprintf(op->last_key, sizeof op->last_key, "(key)");
        return true;
    }
    int key = op->key;
    op->key = 0;
    op->items++;
    return yaml_document_append_mapping_pair(cp->doc, op->node, key, node) ||
           cfgerr_fail(e, mark->line, NULL, "YAML parser out of memory");
}

/* Sets a new node's marks (the document API leaves them zero) and records
 * its anchor, if any. */
static void s_compose_mark(s_compose_t *cp, int node, const yaml_event_t *ev,
                           const yaml_char_t *anchor)
{
    yaml_node_t *n = yaml_document_get_node(cp->doc, node);
    n->start_mark = ev->start_mark;
    n->end_mark = ev->end_mark;
    if (anchor) {
        cp->anchors = xrealloc(cp->anchors, (cp->n_anchors + 1) * sizeof *cp->anchors);
        cp->anchors[cp->n_anchors].name = xstrdup((const char *)anchor);
        cp->anchors[cp->n_anchors].node = node;
        cp->n_anchors++;
    }
}

/* Handles one event inside the document; *done once its root is complete. */
static bool s_compose_event(const cfgerr_t *e, s_compose_t *cp, const yaml_event_t *ev, bool *done)
{
    const yaml_char_t *tag = NULL, *anchor = NULL;
    int node = 0;
    switch (ev->type) {
    case YAML_ALIAS_EVENT:
        /* The latest node of that name (YAML lets an anchor be redefined). */
        for (size_t i = cp->n_anchors; i-- > 0 && !node;)
            if (strcmp(cp->anchors[i].name, (const char *)ev->data.alias.anchor) == 0)
                node = cp->anchors[i].node;
        if (!node)
            return cfgerr_fail(e, ev->start_mark.line, NULL,
                               "YAML syntax error: found undefined alias");
        break;
    case YAML_SCALAR_EVENT:
        tag = ev->data.scalar.tag;
        anchor = ev->data.scalar.anchor;
        node = yaml_document_add_scalar(cp->doc, tag, ev->data.scalar.value,
                                        (int)ev->data.scalar.length, ev->data.scalar.style);
        break;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool mapping = ev->type == YAML_MAPPING_START_EVENT;
        if (cp->depth == S_MAX_DEPTH) {
            char path[CFGERR_MAX_PATH];
            s_compose_path(cp, path, sizeof path);
            return cfgerr_fail(e, ev->start_mark.line, path,
                               "nested deeper than %d levels, refused", S_MAX_DEPTH);
        }
        if (mapping) {
            tag = ev->data.mapping_start.tag;
            anchor = ev->data.mapping_start.anchor;
            node = yaml_document_add_mapping(cp->doc, tag, ev->data.mapping_start.style);
        } else {
            tag = ev->data.sequence_start.tag;
            anchor = ev->data.sequence_start.anchor;
            node = yaml_document_add_sequence(cp->doc, tag, ev->data.sequence_start.style);
        }
        if (!node)
            return cfgerr_fail(e, ev->start_mark.line, NULL, "YAML parser out of memory");
        s_compose_mark(cp, node, ev, anchor);
        if (!s_compose_attach(e, cp, node, &ev->start_mark))
            return false;
        cp->open[cp->depth++] = (s_open_t){ .node = node, .mapping = mapping };
        return true;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        assert(cp->depth > 0); /* libyaml pairs them */
        yaml_node_t *n = yaml_document_get_node(cp->doc, cp->open[cp->depth - 1].node);
        n->end_mark = ev->end_mark;
        cp->depth--;
        *done = cp->depth == 0;
        return true;
    }
    default:
        return true;
    }
    if (!node)
        return cfgerr_fail(e, ev->start_mark.line, NULL, "YAML parser out of memory");
    if (ev->type == YAML_SCALAR_EVENT)
        s_compose_mark(cp, node, ev, anchor);
    if (!s_compose_attach(e, cp, node, &ev->start_mark))
        return false;
    *done = cp->depth == 0;
    return true;
}

/* Composes the single document of text into doc (initialized here; the
 * caller deletes it, also on failure), from libyaml's events rather than
 * its own composer: collections may nest at most S_MAX_DEPTH deep. libyaml
 * keeps one possible simple key per open flow collection and walks them all
 * at every token, so a file of N nested "[" costs it N^2 steps (seconds at
 * 50,000, minutes at 200,000); refusing at S_MAX_DEPTH keeps every file
 * linear. An empty stream leaves doc without a root; a second document is
 * an error. */
bool cfgyaml_compose(const cfgerr_t *e, yaml_parser_t *parser, yaml_document_t *doc,
                     const char *text, size_t len)
{
    s_compose_t cp = { .doc = doc };
    bool ok = false, in_doc = false, done = false, ended = false;
    size_t second = 0;   /* 1 + line of a second document's content */
    size_t skipped = 0;  /* depth inside that second document */
    memset(doc, 0, sizeof *doc); /* deletable even if initializing fails */
    if (!yaml_document_initialize(doc, NULL, NULL, NULL, 1, 1))
        return cfgerr_fail(e, 0, NULL, "YAML parser out of memory");
    while (!ended) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev)) {
            s_yaml_error(e, parser, text, len);
            goto out;
        }
        bool good = true;
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            ended = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            in_doc = true;
            break;
        case YAML_DOCUMENT_END_EVENT:
            in_doc = false;
            break;
        default:
            if (!in_doc)
                break;
            if (!done) {
                good = s_compose_event(e, &cp, &ev, &done);
                break;
            }
            /* A second document would be silently ignored: refused where
             * its content starts (an empty one is harmless), once the
             * parser has read to the end, so a syntax error in it is
             * reported first. It is not composed, but bounded alike. */
            if (!second)
                second = ev.start_mark.line + 1;
            if (ev.type == YAML_SEQUENCE_START_EVENT || ev.type == YAML_MAPPING_START_EVENT) {
                if (++skipped > S_MAX_DEPTH)
                    good = cfgerr_fail(e, ev.start_mark.line, NULL,
                                       "nested deeper than %d levels, refused", S_MAX_DEPTH);
            } else if (ev.type == YAML_SEQUENCE_END_EVENT || ev.type == YAML_MAPPING_END_EVENT) {
                skipped--;
            }
        }
        yaml_event_delete(&ev);
        if (!good)
            goto out;
    }
    if (second) {
        cfgerr_fail(e, second - 1, NULL, "expected a single YAML document, found a second one");
        goto out;
    }
    ok = true;
out:
    for (size_t i = 0; i < cp.n_anchors; i++)
        free(cp.anchors[i].name);
    free(cp.anchors);
    return ok;
}
