/* The store's record kinds and their fields, shared by the backends: SQLite
 * makes them columns, etcd keeps each record as a JSON value projected onto
 * the same fields, so both hand back the same objects. */
#ifndef VESSEL_STORE_RECORDS_H
#define VESSEL_STORE_RECORDS_H

#include <jansson.h>

enum col_kind { COL_TEXT, COL_INT, COL_JSON };
struct column {
    const char *name;
    enum col_kind kind;
};
struct table {
    const char *name, *what; /* SQL table; "instance" for messages */
    const struct column *cols;
    unsigned ncols; /* cols[0] is the primary key */
};

extern const struct table store_instances, store_images, store_operations, store_snapshots;

/* A new object with exactly t's fields: missing ones null, JSON fields
 * that are null "{}", integers as integers, text as strings. */
json_t *store_record_project(const struct table *t, json_t *rec);

#endif
