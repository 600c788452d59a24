// SPDX-License-Identifier: LGPL-2.1-or-later
// A read cache in front of PostgreSQL for the hot reads (token checks, VM lists). Everything
// in it is dropped whenever the database may have changed: this process counts its own
// committed changes (db_pool_changes), and statement triggers on the tables the reads use
// NOTIFY the channel "vmbroker_changed" for everyone else's (other replicas, the command line,
// psql). While the LISTEN connection is down, nothing is served from the cache.
#pragma once

#include <stdbool.h>
#include <glib.h>

#include "db-pool.h"

/* The channel migration 0010's triggers notify. */
#define DB_CACHE_CHANNEL "vmbroker_changed"

typedef struct DbCache DbCache;
/* Copies a stored value for a caller (g_bytes_ref will do for a GBytes). */
typedef gpointer (*DbCacheCopyFunc)(gconstpointer value);

typedef struct {
    guint64 hits;      /* lookups answered from memory */
    guint64 misses;    /* lookups that had to read the database */
    bool listening;    /* the LISTEN connection is up */
} DbCacheStats;

/* @max_entries bounds the entries held; 0 turns the cache off (every lookup misses). */
DbCache *db_cache_new(DbPool *pool, const char *conninfo, unsigned max_entries);
void db_cache_free(DbCache *cache);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DbCache, db_cache_free)

/* A copy (made with @copy) of @key's value when it is current, else NULL. Either way
 * *@ret_generation gets what to pass to db_cache_store after reading the database. */
gpointer db_cache_lookup(DbCache *cache, const char *key, DbCacheCopyFunc copy,
                         guint64 *ret_generation);
/* Keeps @value (owned; freed with @free) as @key's, unless the database may have changed
 * since the lookup that gave @generation (then it is freed at once). */
void db_cache_store(DbCache *cache, const char *key, guint64 generation, gpointer value,
                    GDestroyNotify free);
void db_cache_stats(DbCache *cache, DbCacheStats *ret);
