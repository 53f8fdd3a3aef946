/*
 * arena.c -- the public life cycle: configuration, create / destroy, errors, the file
 * page API, statistics (docs/design.md §4).
 *
 * Layer 7, the top (docs/design.md §2): calls collect.c, heap.c, fork.c, track.c, view.c,
 * map.c, backing.c and os.c, and registers the hooks through which the lower layers reach
 * the upper ones (struct arena__view_hooks, struct arena__fork_hooks).
 */
#include "collect.h"
#include "fork.h"
#include "heap.h"
#include "track.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static _Atomic uint64_t next_arena_id = 1;

void arena_config_init(arena_config_t *cfg)
{
    if (cfg)
        memset(cfg, 0, sizeof *cfg);
}

const char *arena_strerror(int err)
{
    if (err > 0) /* an errno value, as arena_alloc leaves it */
        err = -err;
    switch (err) {
    case ARENA_OK: return "success";
#define ARENA_ERROR_TEXT_(name, value, text) case name: return text;
    ARENA_ERROR_TABLE(ARENA_ERROR_TEXT_)
#undef ARENA_ERROR_TEXT_
    default: break;
    }
    /* strerror() may return a buffer another thread overwrites: a generic static string. */
    return err > ARENA_ELIBRARY ? "system error" : "unknown arena error";
}

/* ------------------------------------------------------------------ config -- */
static int check_config(const arena_config_t *cfg, size_t os_page)
{
    if (cfg->page_size && (cfg->page_size < os_page || (cfg->page_size & (cfg->page_size - 1))))
        return ARENA_ECONFIG;
    if (cfg->backing < ARENA_BACKING_AUTO || cfg->backing > ARENA_BACKING_TMPFILE)
        return ARENA_ECONFIG;
    if (cfg->mover < ARENA_MOVE_AUTO || cfg->mover > ARENA_MOVE_COPY)
        return ARENA_ECONFIG;
    if (cfg->tracker < ARENA_TRACKER_AUTO || cfg->tracker > ARENA_TRACKER_UFFD)
        return ARENA_ECONFIG;
    if (cfg->sparse_percent > 100)
        return ARENA_ECONFIG;
    if (cfg->mesh < ARENA_MESH_AUTO || cfg->mesh > ARENA_MESH_ON)
        return ARENA_ECONFIG;
    if (cfg->shuffle < ARENA_SHUFFLE_OFF || cfg->shuffle > ARENA_SHUFFLE_ON)
        return ARENA_ECONFIG;
    /* .req.heap.shuffle: 16-bit slot numbers, and per-thread orders that grow with the page. */
    if (cfg->shuffle == ARENA_SHUFFLE_ON && (cfg->page_size ? cfg->page_size : os_page) > ARENA_SHUFFLE_MAX_PAGE)
        return ARENA_ECONFIG;
    if (cfg->debug & ~ARENA_DEBUG_FORWARD)
        return ARENA_ECONFIG;
    return 0;
}

static void fill_defaults(arena_config_t *cfg, size_t os_page)
{
    if (!cfg->page_size)
        cfg->page_size = os_page;
    if (!cfg->reserve)
        cfg->reserve = ARENA__DEFAULT_RESERVE;
    /* Whole 2 MiB units, so the heap view can be placed 2 MiB aligned end to end. */
    cfg->reserve = (cfg->reserve + ARENA__2M - 1) & ~(ARENA__2M - 1);
    if (cfg->reserve < cfg->page_size)
        cfg->reserve = cfg->page_size;
    if (!cfg->sparse_percent)
        cfg->sparse_percent = 75;
    /* .req.backing.max-file: never more file than the process could ever hold in memory. */
    if (!cfg->max_file)
        cfg->max_file = arena__os_memory_limit();
    cfg->vma_budget = arena__budget_limit_for(cfg->vma_budget);
}

/* ------------------------------------------------------------- life cycle -- */
/* The lower layers reach the upper ones only through these (docs/design.md §2). */
static const struct arena__fork_hooks fork_hooks = {
    .heap = arena__heap_forked,
    .track = arena__track_forked,
};

static void install_hooks(void)
{
    arena__view_set_hooks(&arena__track_view_hooks);
    arena__fork_set_hooks(&fork_hooks);
    arena__track_set_old_hook(arena__heap_old_slots);
}

int arena_create(arena_t **out, const arena_config_t *cfg_in)
{
    if (!out)
        return ARENA_ENULL;
    *out = NULL;
    arena_config_t cfg;
    if (cfg_in)
        cfg = *cfg_in;
    else
        arena_config_init(&cfg);
    size_t os_page = arena__os_page();
    int err = check_config(&cfg, os_page);
    if (err)
        return err;
    fill_defaults(&cfg, os_page);
    if (cfg.reserve / cfg.page_size >= (size_t)UINT32_MAX)
        return ARENA_ECONFIG; /* slots are counted in 32 bits */

    arena_t *a = calloc(1, sizeof *a);
    if (!a)
        return ARENA_ENOMEM;
    a->id = atomic_fetch_add(&next_arena_id, 1);
    a->cfg = cfg;
    a->page_size = cfg.page_size;
    a->page_shift = (size_t)__builtin_ctzl(cfg.page_size);
    arena__budget_init(&a->budget, cfg.vma_budget);
    err = -pthread_mutex_init(&a->lock, NULL);
    if (err) {
        free(a);
        return err;
    }
    install_hooks();
    err = arena__backing_open(&a->backing, &cfg, a->page_size);
    if (err)
        goto fail_lock;
    /* Calibrate now, not in the middle of a collection. */
    (void)arena__map_copy_below(cfg.copy_below, a->page_size);
    err = arena__heap_init(a);
    if (err)
        goto fail_views;
    err = arena__fork_register(a); /* .req.fork.no-tear */
    if (err) {
        arena__heap_fini(a);
        goto fail_views;
    }
    arena__trace_init(a);
    *out = a;
    return 0;

fail_views:
    while (a->views)
        arena__view_destroy(a->views);
    arena__backing_close(a->backing);
fail_lock:
    pthread_mutex_destroy(&a->lock);
    free(a);
    return err;
}

void arena_destroy(arena_t *a)
{
    if (!a)
        return;
    arena__fork_unregister(a);
    arena__track_arena_destroy(a);
    arena__gc_fini(a);
    arena__trace_fini(a);
    arena__heap_fini(a);
    while (a->views)
        arena__view_destroy(a->views);
    a->heap_view = NULL;
    arena__backing_close(a->backing);
    pthread_mutex_destroy(&a->lock);
    free(a);
}

size_t arena_page_size(const arena_t *a)
{
    return a ? a->page_size : 0;
}

/* ------------------------------------------------------------- file pages -- */
int arena_file_alloc(arena_t *a, size_t npages, size_t *first)
{
    if (!a || !first)
        return ARENA_ENULL;
    if (npages == 0)
        return ARENA_ESIZE;
    int err = arena__callable(a);
    if (err)
        return err;
    pthread_mutex_lock(&a->lock);
    err = arena__backing_alloc(a->backing, npages, first);
    pthread_mutex_unlock(&a->lock);
    return err;
}

int arena_file_free(arena_t *a, size_t first, size_t npages)
{
    if (!a)
        return ARENA_ENULL;
    if (npages == 0)
        return ARENA_ESIZE;
    int err = arena__callable(a);
    if (err)
        return err;
    pthread_mutex_lock(&a->lock);
    err = arena__backing_free(a->backing, first, npages);
    pthread_mutex_unlock(&a->lock);
    return err;
}

/* ------------------------------------------------------------- statistics -- */
/* Resident bytes of slots [0, high) of the heap view, by mincore in bounded chunks. */
static size_t resident_bytes(const arena_view_t *v, size_t page_size)
{
    size_t os_page = arena__os_page(), total = 0;
    size_t len = arena__view_used_end(v) * page_size;
    char *base = arena__view_base(v);
    unsigned char vec[4096];
    for (size_t off = 0; off < len; off += sizeof vec * os_page) {
        size_t chunk = len - off < sizeof vec * os_page ? len - off : sizeof vec * os_page;
        if (arena__os_mincore(base + off, chunk, vec) < 0)
            continue;
        for (size_t i = 0; i < chunk / os_page; i++)
            total += (vec[i] & 1) * os_page;
    }
    return total;
}

int arena_stats(const arena_t *a, arena_stats_t *s)
{
    if (!a || !s)
        return ARENA_ENULL;
    arena_t *m = (arena_t *)a; /* the lock is not part of the logical state */
    memset(s, 0, sizeof *s);
    if (arena__callable(a) == ARENA_ESTATE)
        return ARENA_ESTATE; /* .req.trace.callback-calls: this thread holds the lock */
    pthread_mutex_lock(&m->lock);
    s->page_size = a->page_size;
    s->reserve = a->cfg.reserve;
    if (a->heap_view)
        s->resident_bytes = resident_bytes(a->heap_view, a->page_size);
    arena__heap_stats(a, s);
    s->file_bytes = arena__backing_bytes(a->backing);
    s->file_size = arena__backing_file_pages(a->backing) * a->page_size;
    s->max_file = arena__backing_max_pages(a->backing) * a->page_size;
    s->vmas = arena__budget_used(&a->budget);
    s->vma_budget = arena__budget_limit(&a->budget);
    s->process_vmas = arena__budget_process_used();
    s->process_vma_budget = arena__budget_process_limit();
    for (const arena_view_t *v = a->views; v; v = arena__view_next(v))
        s->views++;
    s->collections = a->collections;
    s->bytes_remapped = a->bytes_remapped;
    s->bytes_copied = a->bytes_copied;
    s->pages_released = a->pages_released;
    s->track_faults = atomic_load(&m->track_faults);
    s->copy_below = arena__map_copy_below(a->cfg.copy_below, a->page_size);
    s->backing = arena__backing_kind(a->backing);
    s->mover = a->cfg.mover;
    pthread_mutex_unlock(&m->lock);
    return 0;
}
