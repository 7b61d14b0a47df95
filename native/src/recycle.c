/* recycle.c: freed big regions kept mapped, ready for the next request of their size.
 *
 * Programs like numpy make and drop big temporaries in loops. Making a region costs a
 * gap search, fallocate and mmap, then a page fault per 4 KiB; unmaking it a punch and a
 * PROT_NONE mmap. Instead a freed region keeps its mapping and its place in the
 * reservation, flagged CACHED, in one of two states:
 *   ready    data, file blocks and resident pages kept: malloc takes it back with no
 *            system call and no page fault. At most BIGMAAC_RECYCLE_BYTES (1G) in all,
 *            and none on a RAM-backed swap directory, where nothing could ever write
 *            the pages back and they would be RAM held for no one;
 *   punched  file range punched (dirty pages dropped unwritten, disk and RAM returned),
 *            only the mapping kept: taking it costs one fallocate, which re-reserves the
 *            disk, so a full disk still fails the allocation rather than raising SIGBUS.
 * The control thread punches ready regions PUNCH_DELAY_NS after their free, long before
 * the kernel's flusher would write their dead data back (dirty_expire: 30 s). Memory
 * tight (pressure.c: the cgroup nearly full) punches them sooner, before reclaim would
 * write their dead data back or the job be OOM-killed: the control thread punches
 * all of them when no room is left, a fresh allocation bigger than the room last seen
 * punches them first, and while no room is left freed regions are punched at free.
 * A page-out punches them all first too. calloc never gets stale data:
 * a ready region is punched and re-reserved before a calloc has it; a punched range
 * reads as zeros. The cache is bounded by count and bytes; the oldest entry leaves
 * first. Everything here runs under bm_lock.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#define CACHE_SLOTS 16
#define CACHE_MAX_BYTES (64 * BM_GIB)
#define PUNCH_DELAY_NS 1000000000u

struct cached {
    uintptr_t addr;
    size_t len;
    uint64_t freed_ns;
    bool ready;         /* data still there (not punched) */
};

/* Oldest first. */
static struct cached cache[CACHE_SLOTS];
static size_t cache_count;
static size_t cache_bytes;
static size_t ready_bytes; /* also peeked at without the lock (bm_recycle_tick) */

static struct {
    uint64_t reused;
    uint64_t cached;   /* regions put in the cache, in all */
    uint64_t evicted;
    uint64_t punched;  /* ready regions punched later (delay, budget, page-out, calloc) */
    uint64_t punched_tight;
} totals;

/* Memory room last seen by the control thread (pressure.c), with the ready and live
 * bytes of that moment; read without the lock. */
static uint64_t memory_room = UINT64_MAX;
static uint64_t ready_at_room, live_at_room;
#define ROOM_CHECK_NS 10000000u /* at most every 10 ms while anything is ready */

/* A region of len fits a request of want when it is no more than 1/8 bigger: the
 * caller's usable size grows a little, the cache finds more hits. */
static bool fits(const struct cached *c, size_t want, size_t align)
{
    return c->len >= want && c->len - want <= want / 8 && (c->addr & (align - 1)) == 0;
}

static bool punch(uintptr_t addr, size_t len)
{
    if (!bm_punch(addr, len))
        return false;
    bm_count(&bm_counters.disk_reserved, -(int64_t)len);
    return true;
}

/* Drop a ready entry's data. On failure it stays ready (it still owns its blocks). */
static bool punch_slot(size_t i)
{
    if (!cache[i].ready)
        return true;
    if (!punch(cache[i].addr, cache[i].len))
        return false;
    cache[i].ready = false;
    __atomic_sub_fetch(&ready_bytes, cache[i].len, __ATOMIC_RELAXED);
    totals.punched++;
    return true;
}

static void forget_slot(size_t i)
{
    cache_bytes -= cache[i].len;
    if (cache[i].ready)
        __atomic_sub_fetch(&ready_bytes, cache[i].len, __ATOMIC_RELAXED);
    memmove(&cache[i], &cache[i + 1], (cache_count - i - 1) * sizeof cache[0]);
    cache_count--;
}

/* Give slot i's range back to the reservation and drop its table entry. A forked
 * child passes punch_data false: the file is its parent's. */
static void evict_slot(size_t i, bool punch_data)
{
    struct cached victim = cache[i];
    if (punch_data && victim.ready)
        punch(victim.addr, victim.len);
    forget_slot(i);
    struct bm_region *region = bm_space_entry(victim.addr);
    bm_space_unmap(victim.addr, bm_folio_len(victim.addr, victim.len)); /* with its tail */
    if (region)
        bm_space_remove(region);
    totals.evicted++;
}

static size_t best_fit(size_t len, size_t align)
{
    size_t best = cache_count;
    for (size_t i = 0; i < cache_count; i++)
        if (fits(&cache[i], len, align) && (best == cache_count || cache[i].len < cache[best].len))
            best = i;
    return best;
}

/* The room last measured, less what freed-but-ready and live regions grew by since:
 * a program that allocates, writes and frees in a loop outruns the control thread. */
static uint64_t room_left(void)
{
    uint64_t room = __atomic_load_n(&memory_room, __ATOMIC_RELAXED);
    if (room == UINT64_MAX)
        return room;
    uint64_t ready_then = __atomic_load_n(&ready_at_room, __ATOMIC_RELAXED);
    uint64_t live_then = __atomic_load_n(&live_at_room, __ATOMIC_RELAXED);
    uint64_t live = __atomic_load_n(&bm_counters.live_big_bytes, __ATOMIC_RELAXED);
    uint64_t grown = (ready_bytes > ready_then ? ready_bytes - ready_then : 0) +
                     (live > live_then ? live - live_then : 0);
    return room > grown ? room - grown : 0;
}

static void punch_all_ready_for_room(void)
{
    for (size_t i = 0; i < cache_count; i++)
        if (cache[i].ready && punch_slot(i))
            totals.punched_tight++;
}

struct bm_region *bm_recycle_take(size_t len, size_t align, bool zero)
{
    size_t i = best_fit(len, align);
    if (i == cache_count) {
        /* A fresh region will take new memory: if it may not fit, dead data goes first. */
        if (ready_bytes && len > room_left())
            punch_all_ready_for_room();
        return NULL;
    }
    if (zero && !punch_slot(i))
        return NULL;
    struct cached hit = cache[i];
    /* The caller's fresh attempt meets the same fallocate error and reports it. */
    if (!hit.ready) {
        if (!bm_backing_reserve(hit.addr, hit.len)) /* on its own file after a fork */
            return NULL;
        bm_count(&bm_counters.disk_reserved, (int64_t)hit.len);
    }
    forget_slot(i);
    struct bm_region *region = bm_space_entry(hit.addr);
    region->flags &= ~(uint32_t)BM_REGION_CACHED;
    region->created_ns = bm_now_ns();
    totals.reused++;
    return region;
}

bool bm_recycle_put(struct bm_region *region)
{
    uintptr_t addr = region->addr;
    size_t len = region->len;
    if (len > CACHE_MAX_BYTES || bm_swap.fd < 0)
        return false;
    /* Over the ready budget: punch now. If that fails the data could still be written
     * back, so the caller releases the region instead. */
    bool tight = __atomic_load_n(&memory_room, __ATOMIC_RELAXED) == 0;
    size_t budget = bm_swap.on_ram || tight ? 0 : bm_config.recycle_bytes;
    bool ready = ready_bytes + len <= budget;
    if (!ready && !punch(addr, len))
        return false;
    region->flags |= BM_REGION_CACHED;
    /* Evicting moves table entries: region may point elsewhere from here on. */
    while (cache_count == CACHE_SLOTS || cache_bytes + len > CACHE_MAX_BYTES)
        evict_slot(0, true);
    cache[cache_count++] = (struct cached){addr, len, bm_now_ns(), ready};
    cache_bytes += len;
    if (ready)
        __atomic_add_fetch(&ready_bytes, len, __ATOMIC_RELAXED);
    totals.cached++;
    return true;
}

static size_t slot_of(uintptr_t addr)
{
    for (size_t i = 0; i < cache_count; i++)
        if (cache[i].addr == addr)
            return i;
    return cache_count;
}

void bm_recycle_clear_after(struct bm_region *region, size_t want)
{
    /* Entries after region shift down as they go; region itself stays put. */
    while (bm_space_room_after(region) < want) {
        size_t next = (size_t)(region - bm_space.regions) + 1;
        if (next >= bm_space.count || !(bm_space.regions[next].flags & BM_REGION_CACHED))
            return;
        size_t slot = slot_of(bm_space.regions[next].addr);
        if (slot == cache_count)
            return;
        evict_slot(slot, true);
    }
}

bool bm_recycle_drain(void)
{
    bool any = cache_count > 0;
    while (cache_count)
        evict_slot(0, true);
    return any;
}

void bm_recycle_punch_older_than(uint64_t age_ns)
{
    uint64_t now = bm_now_ns();
    for (size_t i = 0; i < cache_count; i++)
        if (cache[i].ready && now - cache[i].freed_ns >= age_ns)
            punch_slot(i);
}

/* Control thread: the room left, measured only while something is ready (or room was
 * short last time), at most every ROOM_CHECK_NS. */
static uint64_t check_room(void)
{
    static uint64_t last_ns;
    uint64_t was = __atomic_load_n(&memory_room, __ATOMIC_RELAXED);
    if (was == UINT64_MAX && !__atomic_load_n(&ready_bytes, __ATOMIC_RELAXED) &&
        !bm_fry_purge_pending())
        return was;
    uint64_t now = bm_now_ns();
    if (now - last_ns < ROOM_CHECK_NS)
        return was;
    last_ns = now;
    __atomic_store_n(&ready_at_room, __atomic_load_n(&ready_bytes, __ATOMIC_RELAXED),
                     __ATOMIC_RELAXED);
    __atomic_store_n(&live_at_room, __atomic_load_n(&bm_counters.live_big_bytes, __ATOMIC_RELAXED),
                     __ATOMIC_RELAXED);
    uint64_t room = bm_memory_room();
    /* Plenty of room reads as "unknown": nothing to measure until something is ready. */
    if (room > 2 * bm_config.recycle_bytes + BM_GIB)
        room = UINT64_MAX;
    __atomic_store_n(&memory_room, room, __ATOMIC_RELAXED);
    return room;
}

void bm_recycle_tick(void)
{
    bool tight = check_room() == 0;
    if (!__atomic_load_n(&ready_bytes, __ATOMIC_RELAXED))
        return; /* the common case costs no lock */
    pthread_mutex_lock(&bm_lock);
    if (tight)
        punch_all_ready_for_room();
    else
        bm_recycle_punch_older_than(PUNCH_DELAY_NS);
    pthread_mutex_unlock(&bm_lock);
}

bool bm_memory_tight(void)
{
    return __atomic_load_n(&memory_room, __ATOMIC_RELAXED) == 0;
}

void bm_recycle_forget_after_fork(void)
{
    while (cache_count)
        evict_slot(0, false);
    memset(&totals, 0, sizeof totals);
}

BM_EXPORT int bigmaac_recycle_stats(struct bigmaac_recycle_stats *out)
{
    if (!out)
        return BIGMAAC_ERR_INVALID;
    pthread_mutex_lock(&bm_lock);
    out->reused = totals.reused;
    out->cached = totals.cached;
    out->evicted = totals.evicted;
    out->punched = totals.punched;
    out->cached_count = cache_count;
    out->cached_bytes = cache_bytes;
    out->ready_bytes = ready_bytes;
    out->punched_tight = totals.punched_tight;
    pthread_mutex_unlock(&bm_lock);
    return BIGMAAC_OK;
}
