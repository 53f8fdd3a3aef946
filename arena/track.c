/*
 * track.c -- page tracking front end (docs/design.md §8): the public API, the per-slot
 * bitmaps, coarsening under the VMA budget, and the hooks the other modules call.
 *
 * The backends only move kernel state: track_sigsegv.c routes faults here through
 * libsigsegv, track_uffd.c asks the kernel for written pages (userfaultfd WP_ASYNC).
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "track.h"

#define GROUP_MIN_SHIFT 6u  /* one bitmap word */

/* ------------------------------------------------------------ bit helpers -- */

static bool bit_get(const struct arena__track *t, size_t slot)
{
    return (atomic_load(&t->open[slot >> 6]) >> (slot & 63)) & 1u;
}

static void bit_set(struct arena__track *t, size_t slot)
{
    atomic_fetch_or(&t->open[slot >> 6], (uint64_t)1 << (slot & 63));
}

static void bit_clear(struct arena__track *t, size_t slot)
{
    atomic_fetch_and(&t->open[slot >> 6], ~((uint64_t)1 << (slot & 63)));
}

static bool plain_get(const uint64_t *map, size_t slot)
{
    return (map[slot >> 6] >> (slot & 63)) & 1u;
}

static void plain_put(uint64_t *map, size_t slot, bool on)
{
    if (on)
        map[slot >> 6] |= (uint64_t)1 << (slot & 63);
    else
        map[slot >> 6] &= ~((uint64_t)1 << (slot & 63));
}

bool arena__track_slot_mapped(const struct arena__track *t, size_t slot)
{
    return arena__view_page(t->view, slot) != ARENA_NO_PAGE;
}

/* Slots at or past this never showed a page: whole-view walks stop there. */
static size_t used_end(const struct arena__track *t)
{
    size_t high = t->view->high;
    return high < t->nslots ? high : t->nslots;
}

/* The arena counts tracking's mappings with its views' (arena__vmas). */
static void splits_add(struct arena__track *t, size_t n)
{
    atomic_fetch_add(&t->splits, n);
    atomic_fetch_add(&t->view->arena->track_vmas, n);
}

static void splits_set(struct arena__track *t, size_t n)
{
    size_t old = atomic_exchange(&t->splits, n);
    if (n >= old)
        atomic_fetch_add(&t->view->arena->track_vmas, n - old);
    else
        atomic_fetch_sub(&t->view->arena->track_vmas, old - n);
}

static char *slot_addr(const struct arena__track *t, size_t slot)
{
    return t->base + (slot << t->shift);
}

static void group_range(const struct arena__track *t, size_t g, size_t *first, size_t *end)
{
    *first = g << t->group_shift;
    *end = *first + ((size_t)1 << t->group_shift);
    if (*end > t->nslots)
        *end = t->nslots;
}

/* Spin for a group from normal context. The holder is a fault handler or another
 * take/prepare_io: both finish without waiting for anything. */
static void group_lock(struct arena__track *t, size_t g)
{
    unsigned char z = 0;
    while (!atomic_compare_exchange_weak(&t->lock[g], &z, 1))
        z = 0;
}

static void group_unlock(struct arena__track *t, size_t g)
{
    atomic_store(&t->lock[g], 0);
}

/* ------------------------------------------------------ opening pages ---- */

/* Give slots [first, end) where `want` holds the protection prot, one mprotect per
 * maximal run of mapped slots. Returns 0 or the errno of the first failure. */
static int protect_runs(struct arena__track *t, size_t first, size_t end, const uint64_t *sel,
                        bool want, int prot)
{
    int err = 0;
    size_t s = first;
    while (s < end) {
        bool in = arena__track_slot_mapped(t, s) && (sel == NULL || plain_get(sel, s - first) == want);
        if (!in) {
            s++;
            continue;
        }
        size_t run = s;
        while (s < end && arena__track_slot_mapped(t, s) &&
               (sel == NULL || plain_get(sel, s - first) == want))
            s++;
        if (arena__os_mprotect(slot_addr(t, run), (s - run) << t->shift, prot) != 0 && err == 0)
            err = errno;
    }
    return err;
}

/* Open every mapped slot of group g (R8.4: the coarse block). Group lock held. */
static int open_group(struct arena__track *t, size_t g)
{
    size_t first, end;
    group_range(t, g, &first, &end);
    int changed = 0;
    for (size_t s = first; s < end; s++)
        if (arena__track_slot_mapped(t, s) && !bit_get(t, s))
            changed = 1;
    if (!changed)
        return 0;
    if (protect_runs(t, first, end, NULL, true, t->prot_open) != 0)
        return 0;
    for (size_t s = first; s < end; s++)
        if (arena__track_slot_mapped(t, s))
            bit_set(t, s);
    splits_add(t, 2);
    return 1;
}

/* Open one slot, or its group once the splits near the budget (R8.4). Group lock held.
 * Async-signal-safe: atomics and mprotect only. */
static int open_locked(struct arena__track *t, size_t slot)
{
    if (!arena__track_slot_mapped(t, slot))
        return 0;
    if (atomic_load(&t->coarse))
        return open_group(t, slot >> t->group_shift);
    if (bit_get(t, slot))
        return 0;
    if (arena__os_mprotect(slot_addr(t, slot), t->page, t->prot_open) != 0) {
        /* Out of mappings despite the estimate: the group costs at most the same. */
        atomic_store(&t->coarse, 1);
        return open_group(t, slot >> t->group_shift);
    }
    bit_set(t, slot);
    splits_add(t, 2);
    if (atomic_load(&t->splits) >= t->fine_limit)
        atomic_store(&t->coarse, 1);
    return 1;
}

int arena__track_fault(struct arena__track *t, void *addr)
{
    if ((char *)addr < t->base)
        return 0;
    size_t slot = (size_t)((char *)addr - t->base) >> t->shift;
    if (slot >= t->nslots)
        return 0;
    size_t g = slot >> t->group_shift;
    unsigned char z = 0;
    if (!atomic_compare_exchange_strong(&t->lock[g], &z, 1))
        return -1;
    int r = open_locked(t, slot);
    group_unlock(t, g);
    if (r > 0)
        atomic_fetch_add(&t->view->arena->track_faults, 1);
    return r;
}

/* ------------------------------------------------------- set up, tear down -- */

static void track_free(struct arena__track *t)
{
    free((void *)t->open);
    free(t->shown);
    free((void *)t->lock);
    free(t);
}

/* Choose the coarse block so that even every block open stays within half of what the
 * budget leaves; the other half is for single pages before coarsening (R8.4). */
static int plan_budget(struct arena__track *t, arena_t *a)
{
    size_t used = arena__vmas(a);
    size_t allowance = a->vma_budget > used ? a->vma_budget - used : 0;
    if (t->backend == ARENA_TRACKER_UFFD)
        allowance = SIZE_MAX / 4; /* no splits: write protection lives in the page tables */
    if (allowance < 8)
        return ARENA_EVMA;
    t->fine_limit = allowance / 2;
    size_t coarse_room = allowance - t->fine_limit;
    unsigned gs = GROUP_MIN_SHIFT;
    while (gs < 40 && 2 * ((t->nslots + ((size_t)1 << gs) - 1) >> gs) > coarse_room)
        gs++;
    t->group_shift = gs;
    t->ngroups = (t->nslots + ((size_t)1 << gs) - 1) >> gs;
    return 0;
}

static int track_alloc(arena_view_t *v, int what, int backend, struct arena__track **out)
{
    arena_t *a = v->arena;
    struct arena__track *t = calloc(1, sizeof *t);
    if (t == NULL)
        return ENOMEM;
    t->view = v;
    t->what = what;
    t->backend = backend;
    t->base = v->base;
    t->nslots = v->nslots;
    t->page = a->page_size;
    t->shift = (unsigned)a->page_shift;
    t->prot_open = arena__prot_os(v->prot);
    t->prot_armed = (what & ARENA_TRACK_ACCESS) ? PROT_NONE : (t->prot_open & ~PROT_WRITE);
    t->uffd = -1;
    int err = plan_budget(t, a);
    if (err != 0) {
        free(t);
        return err;
    }
    t->nwords = (t->nslots + 63) / 64;
    t->open = calloc(t->nwords, sizeof *t->open);
    t->shown = calloc(t->nslots, sizeof *t->shown);
    t->lock = calloc(t->ngroups, sizeof *t->lock);
    if (t->open == NULL || t->shown == NULL || t->lock == NULL) {
        track_free(t);
        return ENOMEM;
    }
    memcpy(t->shown, v->slot_enc, used_end(t) * sizeof *t->shown);
    *out = t;
    return 0;
}

static int choose_backend(const arena_view_t *v, int what, int *backend)
{
    int want = v->arena->cfg.tracker;
    bool uffd_ok = arena__tuffd_available() && !(what & ARENA_TRACK_ACCESS) &&
                   !(v->flags & ARENA_VIEW_PRIVATE);
    switch (want) {
    case ARENA_TRACKER_AUTO:
        *backend = uffd_ok ? ARENA_TRACKER_UFFD : ARENA_TRACKER_SIGSEGV;
        return 0;
    case ARENA_TRACKER_SIGSEGV:
        *backend = ARENA_TRACKER_SIGSEGV;
        return 0;
    case ARENA_TRACKER_UFFD:
        *backend = ARENA_TRACKER_UFFD;
        return uffd_ok ? 0 : ARENA_ENOTSUP;
    default:
        return ARENA_ECONFIG;
    }
}

/* Register first, protect second (R8.2): no fault can reach the handler for an area the
 * dispatcher does not know yet. */
static int sigsegv_arm_all(struct arena__track *t)
{
    int err = arena__tsig_attach(t);
    if (err != 0)
        return err;
    err = protect_runs(t, 0, used_end(t), NULL, true, t->prot_armed);
    if (err != 0) {
        protect_runs(t, 0, used_end(t), NULL, true, t->prot_open);
        arena__tsig_detach(t);
    }
    return err;
}

static int start_backend(arena_view_t *v, int what, int backend)
{
    struct arena__track *t;
    int err = track_alloc(v, what, backend, &t);
    if (err != 0)
        return err;
    err = backend == ARENA_TRACKER_UFFD ? arena__tuffd_attach(t) : sigsegv_arm_all(t);
    if (err != 0) {
        track_free(t);
        /* AUTO: the kernel may still refuse this file (a tmpfile on a disk filesystem). */
        if (backend == ARENA_TRACKER_UFFD && v->arena->cfg.tracker == ARENA_TRACKER_AUTO)
            return start_backend(v, what, ARENA_TRACKER_SIGSEGV);
        return err;
    }
    v->track = t;
    return 0;
}

static int start_locked(arena_view_t *v, int what)
{
    int backend;
    int err = choose_backend(v, what, &backend);
    return err != 0 ? err : start_backend(v, what, backend);
}

static void stop_locked(arena_view_t *v)
{
    struct arena__track *t = v->track;
    if (t == NULL)
        return;
    if (t->backend == ARENA_TRACKER_UFFD) {
        arena__tuffd_detach(t);
    } else {
        /* Open first, unregister second: a fault racing with the stop finds either the
         * area or an accessible page (track_sigsegv.c retries once before chaining). */
        protect_runs(t, 0, used_end(t), NULL, true, t->prot_open);
        arena__tsig_detach(t);
        splits_set(t, 0);
    }
    v->track = NULL;
    track_free(t);
}

/* --------------------------------------------------------------- taking -- */

/* R8.7: slots that show other file pages than when they were armed (arena_view_map, heap
 * growth, release) hold new contents: they count as touched. Found by comparing the view's
 * slot table with the copy taken when they were armed, so view.c needs no hook for it. */
static void sync_changes(struct arena__track *t)
{
    const uint32_t *enc = t->view->slot_enc;
    size_t end = used_end(t);
    for (size_t chunk = 0; chunk < end; chunk += 64) {
        size_t cend = chunk + 64 < end ? chunk + 64 : end;
        if (memcmp(enc + chunk, t->shown + chunk, (cend - chunk) * sizeof *enc) == 0)
            continue;
        for (size_t s = chunk; s < cend; s++) {
            if (enc[s] == t->shown[s])
                continue;
            size_t run = s;
            while (s < cend && enc[s] != t->shown[s]) {
                t->shown[s] = enc[s];
                if (arena__track_slot_mapped(t, s))
                    bit_set(t, s);
                else
                    bit_clear(t, s);
                s++;
            }
            /* The new mappings need registering before the scan may walk them. */
            if (t->backend == ARENA_TRACKER_UFFD)
                arena__tuffd_arm(t, run, s - run);
        }
    }
}



/* Re-arm slots [first, end) whose bit in sel (relative to first) is set. */
static void rearm(struct arena__track *t, size_t first, size_t end, const uint64_t *sel)
{
    if (t->backend == ARENA_TRACKER_UFFD) {
        size_t s = first;
        while (s < end) {
            if (!plain_get(sel, s - first)) {
                s++;
                continue;
            }
            size_t run = s;
            while (s < end && plain_get(sel, s - first))
                s++;
            arena__tuffd_arm(t, run, s - run);
        }
        return;
    }
    protect_runs(t, first, end, sel, true, t->prot_armed);
}

/* Report and re-arm up to max pages whose bit is set, group by group. */
static size_t take_bits(struct arena__track *t, void **pages, size_t max)
{
    size_t n = 0;
    uint64_t sel[((size_t)1 << 12) / 64 + 1];
    size_t groups_used = (used_end(t) + ((size_t)1 << t->group_shift) - 1) >> t->group_shift;
    for (size_t g = 0; g < groups_used && n < max; g++) {
        size_t first, end;
        group_range(t, g, &first, &end);
        bool any = false;
        for (size_t w = first >> 6; w < (end + 63) >> 6 && !any; w++)
            any = atomic_load(&t->open[w]) != 0;
        if (!any)
            continue;
        /* A group bigger than sel is handled in sel-sized pieces under one lock. */
        group_lock(t, g);
        for (size_t piece = first; piece < end && n < max; piece += (size_t)1 << 12) {
            size_t pend = piece + ((size_t)1 << 12) < end ? piece + ((size_t)1 << 12) : end;
            for (size_t i = 0; i <= (pend - piece) / 64; i++)
                sel[i] = 0;
            for (size_t s = piece; s < pend && n < max; s++) {
                if (!bit_get(t, s))
                    continue;
                bit_clear(t, s); /* before re-arming: a write after this is seen again */
                if (!arena__track_slot_mapped(t, s))
                    continue;
                plain_put(sel, s - piece, true);
                pages[n++] = slot_addr(t, s);
            }
            rearm(t, piece, pend, sel);
        }
        group_unlock(t, g);
    }
    return n;
}

/* Splits now: each maximal run of open slots costs at most two mappings. */
static void recount_splits(struct arena__track *t)
{
    if (t->backend == ARENA_TRACKER_UFFD)
        return;
    size_t runs = 0;
    uint64_t prev_top = 0;
    for (size_t w = 0; w < t->nwords; w++) {
        uint64_t x = atomic_load(&t->open[w]);
        runs += (size_t)__builtin_popcountll(x & ~((x << 1) | prev_top));
        prev_top = x >> 63;
    }
    splits_set(t, 2 * runs);
    if (2 * runs < t->fine_limit / 2)
        atomic_store(&t->coarse, 0);
}

/* PAGEMAP_SCAN refuses (EPERM) a range holding a mapping that is not registered with the
 * userfaultfd: one the kernel re-created while its slot kept the same file page (a move
 * out and back within one collection, a rolled-back batch), which sync_changes cannot see.
 * Its writes since were not recorded, so every mapped page counts as touched (conservative,
 * R8.2: never a missed page), everything is armed (re-registering what lost it), and the
 * scan runs again. */
static int reregister_lost(struct arena__track *t, void **pages, size_t max, size_t *n)
{
    size_t end = used_end(t);
    for (size_t s = 0; s < end; s++)
        if (arena__track_slot_mapped(t, s))
            bit_set(t, s);
    int err = arena__tuffd_arm(t, 0, end);
    if (err != 0)
        return err;
    return arena__tuffd_scan(t, pages, max, n);
}

static int take_locked(arena_view_t *v, void **pages, size_t max, size_t *count)
{
    struct arena__track *t = v->track;
    size_t n = 0;
    sync_changes(t);
    if (t->backend == ARENA_TRACKER_UFFD) {
        int err = arena__tuffd_scan(t, pages, max, &n);
        if (err == EPERM)
            err = reregister_lost(t, pages, max, &n);
        if (err != 0)
            return err;
        /* Pages the scan reported need no second report from the bitmap. */
        for (size_t i = 0; i < n; i++)
            bit_clear(t, (size_t)((char *)pages[i] - t->base) >> t->shift);
    }
    /* Signals that might write to tracked pages wait while take holds group locks. */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    n += take_bits(t, pages + n, max - n);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    recount_splits(t);
    *count = n;
    return 0;
}

/* ------------------------------------------------------------ public API -- */

static int check_view(const arena_view_t *v)
{
    if (v == NULL)
        return ARENA_ENULL;
    if (v->closed)
        return ARENA_ECLOSED;
    return arena__broken(v->arena);
}

int arena_track_start(arena_view_t *v, int what) /* R8.1 */
{
    int err = check_view(v);
    if (err != 0)
        return err;
    if (what == 0 || (what & ~(ARENA_TRACK_WRITES | ARENA_TRACK_ACCESS)) != 0)
        return ARENA_ECONFIG;
    if ((what & ARENA_TRACK_ACCESS) ? !(v->prot & ARENA_PROT_READ) : !(v->prot & ARENA_PROT_WRITE))
        return ARENA_EPROT;
    pthread_mutex_lock(&v->arena->lock);
    err = v->track != NULL ? ARENA_EBUSY : start_locked(v, what);
    pthread_mutex_unlock(&v->arena->lock);
    return err;
}

int arena_track_take(arena_view_t *v, void **pages, size_t max, size_t *count)
{
    if (count != NULL)
        *count = 0;
    int err = check_view(v);
    if (err != 0)
        return err;
    if (count == NULL || (pages == NULL && max != 0))
        return ARENA_ENULL;
    pthread_mutex_lock(&v->arena->lock);
    err = v->track == NULL ? ARENA_ESTATE : take_locked(v, pages, max, count);
    pthread_mutex_unlock(&v->arena->lock);
    return err;
}

int arena_track_stop(arena_view_t *v)
{
    int err = check_view(v);
    if (err != 0)
        return err;
    pthread_mutex_lock(&v->arena->lock);
    if (v->track == NULL)
        err = ARENA_ESTATE;
    else
        stop_locked(v);
    pthread_mutex_unlock(&v->arena->lock);
    return err;
}

/* R8.5: the kernel does not raise SIGSEGV for a write into a protected page made by a
 * system call; it fails it with EFAULT. Opening the pages first (and counting them as
 * touched, since the call is about to write them) makes the call succeed. */
static void prepare_view(struct arena__track *t, char *lo, char *hi)
{
    char *vend = t->base + (t->nslots << t->shift);
    if (hi <= t->base || lo >= vend)
        return;
    size_t first = lo < t->base ? 0 : (size_t)(lo - t->base) >> t->shift;
    size_t end = hi >= vend ? t->nslots : ((size_t)(hi - t->base) + t->page - 1) >> t->shift;
    for (size_t s = first; s < end; s++) {
        size_t g = s >> t->group_shift;
        if (t->backend == ARENA_TRACKER_UFFD) {
            /* Write-protect faults are resolved by the kernel, system calls included. */
            if (arena__track_slot_mapped(t, s))
                bit_set(t, s);
            continue;
        }
        group_lock(t, g);
        open_locked(t, s);
        group_unlock(t, g);
    }
}

int arena_track_prepare_io(arena_t *a, void *addr, size_t len)
{
    if (a == NULL || addr == NULL)
        return ARENA_ENULL;
    if (len == 0)
        return 0;
    int err = arena__broken(a);
    if (err != 0)
        return err;
    char *lo = addr, *hi = (char *)addr + len;
    if (hi < lo)
        return ARENA_ERANGE;
    pthread_mutex_lock(&a->lock);
    for (arena_view_t *v = a->views; v != NULL; v = v->next)
        if (v->track != NULL)
            prepare_view(v->track, lo, hi);
    pthread_mutex_unlock(&a->lock);
    return 0;
}

int arena_track_backend(const arena_view_t *v)
{
    if (v == NULL || v->track == NULL)
        return -1;
    return v->track->backend;
}

/* ------------------------------------------------------- hooks (internal.h) -- */

void arena__track_view_closing(arena_view_t *v)
{
    if (v != NULL)
        stop_locked(v);
}

void arena__track_arena_destroy(arena_t *a)
{
    for (arena_view_t *v = a->views; v != NULL; v = v->next)
        stop_locked(v);
}

/* R8.6: a collection moved slots [src, src+n) to [dst, dst+n) (called after the move). The
 * destination keeps the source's state; what the mover left in the kernel (mremap carries
 * the protection, a remap or copy shows the view's) is set right. The userfaultfd state of
 * the source is gone with its page tables, so there every moved page counts as touched. */
void arena__track_moved(arena_view_t *v, size_t dst, size_t src, size_t n)
{
    struct arena__track *t = v == NULL ? NULL : v->track;
    if (t == NULL || n == 0 || dst + n > t->nslots || src + n > t->nslots || dst == src)
        return;
    uint64_t *state = calloc((n + 63) / 64 * 2, sizeof *state);
    if (state == NULL)
        return; /* the next take sees the changed slots as new contents: conservative */
    uint64_t *moved = state + (n + 63) / 64;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        /* A second call for the same move (view.c and collect.c both report it) finds the
         * destination already in step: its protection below must then follow its own bit,
         * not be re-armed (a dirty page re-armed while its bit says open is never opened
         * again by the fault handler). */
        if (t->shown[dst + i] == t->view->slot_enc[dst + i]) {
            plain_put(state, i, bit_get(t, dst + i));
            continue;
        }
        any = true;
        plain_put(moved, i, true);
        plain_put(state, i, t->backend == ARENA_TRACKER_UFFD || bit_get(t, src + i));
    }
    if (!any) {
        free(state);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t s = src + i;
        if (s >= dst && s < dst + n)
            continue;
        t->shown[s] = t->view->slot_enc[s];
        bit_clear(t, s);
        if (arena__track_slot_mapped(t, s))
            bit_set(t, s); /* the source shows something new: its contents count as touched */
    }
    for (size_t i = 0; i < n; i++) {
        if (!plain_get(moved, i))
            continue;
        size_t g = (dst + i) >> t->group_shift;
        group_lock(t, g);
        t->shown[dst + i] = t->view->slot_enc[dst + i];
        if (plain_get(state, i))
            bit_set(t, dst + i);
        else
            bit_clear(t, dst + i);
        group_unlock(t, g);
    }
    if (t->backend == ARENA_TRACKER_UFFD) {
        arena__tuffd_arm(t, dst, n);
    } else {
        protect_runs(t, dst, dst + n, state, false, t->prot_armed);
        protect_runs(t, dst, dst + n, state, true, t->prot_open);
    }
    free(state);
}


/* In a forked child the views were re-mapped with their own protection: every page is
 * open. Count them all touched (R9.3: conservative) and re-attach the kernel side. */
void arena__track_forked(arena_t *a)
{
    for (arena_view_t *v = a->views; v != NULL; v = v->next) {
        struct arena__track *t = v->track;
        if (t == NULL)
            continue;
        for (size_t s = 0; s < used_end(t); s++)
            if (arena__track_slot_mapped(t, s))
                bit_set(t, s);
        for (size_t g = 0; g < t->ngroups; g++)
            atomic_store(&t->lock[g], 0);
        if (t->backend == ARENA_TRACKER_UFFD) {
            if (t->uffd >= 0)
                arena__os_close(t->uffd);
            t->uffd = -1;
            if (arena__tuffd_attach(t) == 0)
                continue;
            t->backend = ARENA_TRACKER_SIGSEGV;
            if (arena__tsig_attach(t) != 0) {
                v->track = NULL;
                track_free(t);
            }
            continue;
        }
        arena__tsig_forget(t);
        recount_splits(t);
    }
}
