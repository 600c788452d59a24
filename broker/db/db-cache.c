// SPDX-License-Identifier: LGPL-2.1-or-later
// The cache's generation is the listener's count plus the pool's: it moves whenever this
// process commits a change, a notification arrives, or the listener reconnects. The table
// only ever holds entries of one generation; a store under a newer one empties it first.
// A reader takes the generation before it reads the database and stores only if it has
// not moved since, so a change that commits during the read is never kept as current.
#include "db-cache.h"

#include <stdatomic.h>

#include "db-listen.h"

typedef struct {
    gpointer value;
    GDestroyNotify free;
} Entry;

struct DbCache {
    DbPool *pool;
    DbListener *listener; /* NULL when the cache is off */
    unsigned max_entries;

    GRWLock lock;         /* guards the table: lookups read, stores write */
    GHashTable *table;    /* key (char *) -> Entry * */
    guint64 table_generation;

    atomic_uint_fast64_t hits, misses;
};

static void
entry_free(Entry *e)
{
    e->free(e->value);
    g_free(e);
}

/**
 * db_cache_new:
 * @pool: the pool whose committed changes invalidate the cache
 * @conninfo: the database, for the LISTEN connection
 * @max_entries: entries held at most (a store beyond empties the cache); 0 for no cache
 *
 * Returns: (transfer full): the cache; it serves nothing until the listener is connected.
 */
DbCache *
db_cache_new(DbPool *pool, const char *conninfo, unsigned max_entries)
{
    DbCache *cache = g_new0(DbCache, 1);

    cache->pool = pool;
    cache->max_entries = max_entries;
    if (max_entries)
        cache->listener = db_listener_start(conninfo, DB_CACHE_CHANNEL, 10);
    g_rw_lock_init(&cache->lock);
    cache->table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify) entry_free);
    return cache;
}

/**
 * db_cache_free:
 * @cache: (nullable): a cache
 */
void
db_cache_free(DbCache *cache)
{
    if (!cache)
        return;
    db_listener_stop(cache->listener);
    g_hash_table_unref(cache->table);
    g_rw_lock_clear(&cache->lock);
    g_free(cache);
}

/* The current generation, or 0 when nothing may be served or stored. */
static guint64
cache_generation(DbCache *cache)
{
    guint64 notified;

    if (!cache->listener || !db_listener_current(cache->listener, &notified))
        return 0;
    /* The listener's count is at least 1 once connected, so the sum is never 0. */
    return notified + db_pool_changes(cache->pool);
}

/**
 * db_cache_lookup:
 * @cache: the cache
 * @key: what was read ("vms:all")
 * @copy: copies a stored value for the caller
 * @ret_generation: (out): the generation to store a database read under
 *
 * Returns: (transfer full) (nullable): a copy of the current value, or NULL.
 */
gpointer
db_cache_lookup(DbCache *cache, const char *key, DbCacheCopyFunc copy,
                guint64 *ret_generation)
{
    guint64 gen = cache_generation(cache);
    gpointer found = NULL;

    *ret_generation = gen;
    if (gen) {
        g_rw_lock_reader_lock(&cache->lock);
        if (cache->table_generation == gen) {
            Entry *e = g_hash_table_lookup(cache->table, key);
            if (e)
                found = copy(e->value);
        }
        g_rw_lock_reader_unlock(&cache->lock);
    }
    atomic_fetch_add(found ? &cache->hits : &cache->misses, 1);
    return found;
}

/**
 * db_cache_store:
 * @cache: the cache
 * @key: what was read
 * @generation: what db_cache_lookup gave before the read
 * @value: (transfer full): what was read
 * @free: frees @value
 */
void
db_cache_store(DbCache *cache, const char *key, guint64 generation, gpointer value,
               GDestroyNotify free)
{
    Entry *e;

    g_rw_lock_writer_lock(&cache->lock);
    if (!generation || cache_generation(cache) != generation) {
        g_rw_lock_writer_unlock(&cache->lock);
        free(value);
        return;
    }
    if (cache->table_generation != generation ||
        g_hash_table_size(cache->table) >= cache->max_entries) {
        g_hash_table_remove_all(cache->table);
        cache->table_generation = generation;
    }
    e = g_new(Entry, 1);
    e->value = value;
    e->free = free;
    g_hash_table_replace(cache->table, g_strdup(key), e);
    g_rw_lock_writer_unlock(&cache->lock);
}

/**
 * db_cache_stats:
 * @cache: the cache
 * @ret: (out): its counters
 */
void
db_cache_stats(DbCache *cache, DbCacheStats *ret)
{
    guint64 ignored;

    ret->hits = atomic_load(&cache->hits);
    ret->misses = atomic_load(&cache->misses);
    ret->listening = cache->listener && db_listener_current(cache->listener, &ignored);
}
