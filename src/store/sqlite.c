/* The SQLite backend of the daemon's store (store.h), the default: one
 * host, nothing to install or start. WAL mode with
 * synchronous=NORMAL: a committed change survives the daemon being killed
 * at any moment (the WAL is in the page cache); a power cut may lose the
 * last commits but never corrupts the database, and a launch is not three
 * fsyncs long. Every record is one row, written in one statement. */
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/records.h"
#include "util/log.h"

struct sqlite_store {
    struct store base;
    sqlite3 *db;
    pthread_mutex_t lock; /* one statement at a time on the shared connection */
};

/* Schema migrations, applied in order; user_version counts those applied.
 * Append new steps, never edit an applied one. */
static const char *const migrations[] = {
    /* 1: instances, images, operations */
    "CREATE TABLE instances (name TEXT PRIMARY KEY, type TEXT NOT NULL, arch TEXT NOT NULL,"
    " image TEXT, state TEXT NOT NULL, pid INTEGER, config TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, location TEXT);"
    "CREATE TABLE images (fingerprint TEXT PRIMARY KEY, alias TEXT UNIQUE, type TEXT NOT NULL,"
    " arch TEXT NOT NULL, size INTEGER, path TEXT NOT NULL, state TEXT NOT NULL,"
    " properties TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE TABLE operations (id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT,"
    " status TEXT NOT NULL, progress TEXT NOT NULL, result TEXT NOT NULL, error TEXT,"
    " created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL);",
    /* 2: snapshots of instances (removed with their instance) */
    "CREATE TABLE snapshots (id TEXT PRIMARY KEY, instance TEXT NOT NULL"
    " REFERENCES instances(name) ON DELETE CASCADE, name TEXT NOT NULL, stateful INTEGER NOT NULL,"
    " path TEXT NOT NULL, created_at INTEGER NOT NULL);"
    "CREATE INDEX snapshots_by_instance ON snapshots(instance);",
};

#define instances store_instances
#define images store_images
#define operations store_operations
#define snapshots store_snapshots

static int db_error(struct sqlite_store *s, vs_err *err, int code, const char *what)
{
    return vs_error(err, code, "store: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec_sql(struct sqlite_store *s, const char *sql, vs_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        vs_error(err, EIO, "store: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int sq_schema_version(struct store *base_)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    sqlite3_stmt *st;
    int v = -1;
    pthread_mutex_lock(&s->lock);
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            v = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&s->lock);
    return v;
}

static int migrate(struct sqlite_store *s, vs_err *err)
{
    int have = sq_schema_version(&s->base);
    int want = (int)(sizeof(migrations) / sizeof(migrations[0]));
    if (have < 0)
        return db_error(s, err, EIO, "reading the schema version");
    if (have > want)
        return vs_error(err, EPROTO,
                        "store: the database is at schema version %d, newer than this vessel "
                        "(%d); use a newer vessel",
                        have, want);
    for (int v = have; v < want; v++) {
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d;", v + 1);
        if (exec_sql(s, "BEGIN IMMEDIATE", err) < 0)
            return -1;
        if (exec_sql(s, migrations[v], err) < 0 || exec_sql(s, pragma, err) < 0) {
            exec_sql(s, "ROLLBACK", NULL);
            return vs_error_prefix(err, "schema migration %d: ", v + 1);
        }
        if (exec_sql(s, "COMMIT", err) < 0)
            return -1;
        vs_debug("store: schema migrated to version %d", v + 1);
    }
    return 0;
}

static const struct store_ops sqlite_ops;
static void sq_close(struct store *base_);

int store_open(const char *path, struct store **out, vs_err *err)
{
    *out = NULL;
    struct sqlite_store *s = calloc(1, sizeof(*s));
    if (!s)
        return vs_error(err, ENOMEM, "out of memory");
    s->base.ops = &sqlite_ops;
    pthread_mutex_init(&s->lock, NULL);
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        vs_error(err, EIO, "store %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "cannot open");
        sq_close(&s->base);
        return -1;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if (exec_sql(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
                 err) < 0 ||
        migrate(s, err) < 0) {
        vs_error_prefix(err, "%s: ", path);
        sq_close(&s->base);
        return -1;
    }
    *out = &s->base;
    return 0;
}

static void sq_close(struct store *base_)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    if (!s)
        return;
    if (s->db)
        sqlite3_close(s->db);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* Bind record[col] for every column (the key last when key_last, for
 * UPDATE ... WHERE key = ?). */
static int bind_record(sqlite3_stmt *st, const struct table *t, json_t *rec, bool key_last)
{
    for (unsigned i = 0; i < t->ncols; i++) {
        unsigned c = key_last ? (i + 1) % t->ncols : i;
        json_t *v = json_object_get(rec, t->cols[c].name);
        int idx = (int)i + 1, rc;
        if (!v || json_is_null(v)) {
            rc = t->cols[c].kind == COL_JSON ? sqlite3_bind_text(st, idx, "{}", -1, SQLITE_STATIC)
                                             : sqlite3_bind_null(st, idx);
        } else if (t->cols[c].kind == COL_INT) {
            rc = sqlite3_bind_int64(st, idx, json_integer_value(v));
        } else if (t->cols[c].kind == COL_JSON) {
            char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            rc = text ? sqlite3_bind_text(st, idx, text, -1, free) : SQLITE_NOMEM;
        } else {
            rc = sqlite3_bind_text(st, idx, json_is_string(v) ? json_string_value(v) : "", -1,
                                   SQLITE_TRANSIENT);
        }
        if (rc != SQLITE_OK)
            return -1;
    }
    return 0;
}

static json_t *row_to_json(sqlite3_stmt *st, const struct table *t)
{
    json_t *j = json_object();
    for (unsigned c = 0; c < t->ncols; c++) {
        json_t *v;
        if (sqlite3_column_type(st, (int)c) == SQLITE_NULL) {
            v = json_null();
        } else if (t->cols[c].kind == COL_INT) {
            v = json_integer(sqlite3_column_int64(st, (int)c));
        } else if (t->cols[c].kind == COL_JSON) {
            const char *text = (const char *)sqlite3_column_text(st, (int)c);
            v = json_loads(text ? text : "null", JSON_DECODE_ANY, NULL);
            if (!v)
                v = json_null();
        } else {
            v = json_string((const char *)sqlite3_column_text(st, (int)c));
        }
        json_object_set_new(j, t->cols[c].name, v);
    }
    return j;
}

static int table_write(struct sqlite_store *s, const struct table *t, json_t *rec, bool update,
                       vs_err *err)
{
    const char *key = json_string_value(json_object_get(rec, t->cols[0].name));
    if (!key)
        return vs_error(err, EINVAL, "store: %s without a %s", t->what, t->cols[0].name);
    char sql[1024];
    int n = update ? snprintf(sql, sizeof(sql), "UPDATE %s SET ", t->name)
                   : snprintf(sql, sizeof(sql), "INSERT INTO %s (", t->name);
    for (unsigned i = 0; i < t->ncols; i++) {
        unsigned c = update ? (i + 1) % t->ncols : i;
        if (update && c == 0)
            break;
        n += snprintf(sql + n, sizeof(sql) - n, update ? "%s%s = ?" : "%s%s", i ? ", " : "",
                      t->cols[c].name);
    }
    if (update) {
        n += snprintf(sql + n, sizeof(sql) - n, " WHERE %s = ?", t->cols[0].name);
    } else {
        n += snprintf(sql + n, sizeof(sql) - n, ") VALUES (");
        for (unsigned i = 0; i < t->ncols; i++)
            n += snprintf(sql + n, sizeof(sql) - n, i ? ", ?" : "?");
        n += snprintf(sql + n, sizeof(sql) - n, ")");
    }
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
        bind_record(st, t, rec, update) < 0) {
        db_error(s, err, EIO, t->name);
        goto out;
    }
    int step = sqlite3_step(st);
    if (step == SQLITE_CONSTRAINT) {
        vs_error(err, EEXIST, "%s '%s' already exists", t->what, key);
        if (sqlite3_extended_errcode(s->db) == SQLITE_CONSTRAINT_UNIQUE &&
            !strstr(sqlite3_errmsg(s->db), t->cols[0].name))
            vs_error(err, EEXIST, "%s: %s", t->what, sqlite3_errmsg(s->db));
        goto out;
    }
    if (step != SQLITE_DONE) {
        db_error(s, err, EIO, t->name);
        goto out;
    }
    if (update && sqlite3_changes(s->db) == 0) {
        vs_error(err, ENOENT, "%s '%s' not found", t->what, key);
        goto out;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

/* SELECT every column; where is appended (with one text parameter when arg
 * is set). Returns an array, or the first row (NULL and ENOENT if none). */
static json_t *table_select(struct sqlite_store *s, const struct table *t, const char *where,
                            const char *arg, bool one, const char *ref, vs_err *err)
{
    char sql[1024];
    int n = snprintf(sql, sizeof(sql), "SELECT ");
    for (unsigned c = 0; c < t->ncols; c++)
        n += snprintf(sql + n, sizeof(sql) - n, "%s%s", c ? ", " : "", t->cols[c].name);
    snprintf(sql + n, sizeof(sql) - n, " FROM %s %s", t->name, where ? where : "");
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = NULL;
    json_t *out = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
        (arg && sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT) != SQLITE_OK)) {
        db_error(s, err, EIO, t->name);
        goto done;
    }
    json_t *arr = json_array();
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(arr, row_to_json(st, t));
    if (step != SQLITE_DONE) {
        json_decref(arr);
        db_error(s, err, EIO, t->name);
        goto done;
    }
    if (!one) {
        out = arr;
    } else if (json_array_size(arr) == 1) {
        out = json_incref(json_array_get(arr, 0));
        json_decref(arr);
    } else {
        if (json_array_size(arr) > 1)
            vs_error(err, EINVAL, "%s '%s' is ambiguous", t->what, ref);
        else
            vs_error(err, ENOENT, "%s '%s' not found", t->what, ref);
        json_decref(arr);
    }
done:
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return out;
}

static int table_delete(struct sqlite_store *s, const struct table *t, const char *key, vs_err *err)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE %s = ?", t->name, t->cols[0].name);
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE) {
        db_error(s, err, EIO, t->name);
    } else if (sqlite3_changes(s->db) == 0) {
        vs_error(err, ENOENT, "%s '%s' not found", t->what, key);
    } else {
        rc = 0;
    }
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_instance_insert(struct store *base_, json_t *inst, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_write(s, &instances, inst, false, err);
}
static int sq_instance_update(struct store *base_, json_t *inst, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_write(s, &instances, inst, true, err);
}
static json_t *sq_instance_get(struct store *base_, const char *name, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_select(s, &instances, "WHERE name = ?", name, true, name, err);
}
static json_t *sq_instance_list(struct store *base_, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_select(s, &instances, "ORDER BY name", NULL, false, NULL, err);
}
static int sq_instance_set_state(struct store *base_, const char *name, const char *from,
                                 const char *state, long long pid, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    pthread_mutex_lock(&s->lock);
    sqlite3_stmt *st = NULL;
    int rc = -1;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE instances SET state = ?, pid = ? WHERE name = ? AND state = ?",
                           -1, &st, NULL) != SQLITE_OK ||
        sqlite3_bind_text(st, 1, state, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        (pid > 0 ? sqlite3_bind_int64(st, 2, pid) : sqlite3_bind_null(st, 2)) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, name, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_bind_text(st, 4, from, -1, SQLITE_TRANSIENT) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_DONE)
        db_error(s, err, EIO, "instances");
    else
        rc = sqlite3_changes(s->db) ? 0 : vs_error(err, EAGAIN, "instance '%s' changed", name);
    sqlite3_finalize(st);
    pthread_mutex_unlock(&s->lock);
    return rc;
}

static int sq_instance_delete(struct store *base_, const char *name, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_delete(s, &instances, name, err);
}

static int sq_image_insert(struct store *base_, json_t *img, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_write(s, &images, img, false, err);
}
static int sq_image_update(struct store *base_, json_t *img, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_write(s, &images, img, true, err);
}
static json_t *sq_image_get(struct store *base_, const char *ref, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    json_t *j = table_select(s, &images, "WHERE alias = ?", ref, true, ref, NULL);
    if (j)
        return j;
    /* a fingerprint or a unique prefix of one (hex only, so no LIKE escapes) */
    if (!ref[0] || strspn(ref, "0123456789abcdef") != strlen(ref)) {
        vs_error(err, ENOENT, "image '%s' not found", ref);
        return NULL;
    }
    char pat[80];
    snprintf(pat, sizeof(pat), "%.64s%%", ref);
    return table_select(s, &images, "WHERE fingerprint LIKE ?", pat, true, ref, err);
}
static json_t *sq_image_list(struct store *base_, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_select(s, &images, "ORDER BY created_at", NULL, false, NULL, err);
}
static int sq_image_delete(struct store *base_, const char *fingerprint, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_delete(s, &images, fingerprint, err);
}

static int sq_op_insert(struct store *base_, json_t *op, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_write(s, &operations, op, false, err);
}
static int sq_op_update(struct store *base_, json_t *op, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_write(s, &operations, op, true, err);
}
static json_t *sq_op_get(struct store *base_, const char *id, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_select(s, &operations, "WHERE id = ?", id, true, id, err);
}
static json_t *sq_op_list(struct store *base_, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_select(s, &operations, "ORDER BY created_at", NULL, false, NULL, err);
}

static int sq_snapshot_insert(struct store *base_, json_t *snap, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_write(s, &snapshots, snap, false, err);
}
static json_t *sq_snapshot_get(struct store *base_, const char *instance, const char *name,
                               vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    char id[512];
    snprintf(id, sizeof(id), "%s/%s", instance, name);
    return table_select(s, &snapshots, "WHERE id = ?", id, true, id, err);
}
static json_t *sq_snapshot_list(struct store *base_, const char *instance, vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    return table_select(s, &snapshots, "WHERE instance = ? ORDER BY created_at", instance, false,
                        NULL, err);
}
static int sq_snapshot_delete(struct store *base_, const char *instance, const char *name,
                              vs_err *err)
{
    struct sqlite_store *s = (struct sqlite_store *)base_;
    char id[512];
    snprintf(id, sizeof(id), "%s/%s", instance, name);
    return table_delete(s, &snapshots, id, err);
}

static const struct store_ops sqlite_ops = {
    .name = "sqlite",
    .close = sq_close,
    .schema_version = sq_schema_version,
    .instance_insert = sq_instance_insert,
    .instance_update = sq_instance_update,
    .instance_get = sq_instance_get,
    .instance_list = sq_instance_list,
    .instance_set_state = sq_instance_set_state,
    .instance_delete = sq_instance_delete,
    .image_insert = sq_image_insert,
    .image_update = sq_image_update,
    .image_get = sq_image_get,
    .image_list = sq_image_list,
    .image_delete = sq_image_delete,
    .snapshot_insert = sq_snapshot_insert,
    .snapshot_get = sq_snapshot_get,
    .snapshot_list = sq_snapshot_list,
    .snapshot_delete = sq_snapshot_delete,
    .op_insert = sq_op_insert,
    .op_update = sq_op_update,
    .op_get = sq_op_get,
    .op_list = sq_op_list,
};
