/*
 * track.c -- page tracking front end (docs/design.md §8): the public API, the per-slot
 * bitmaps, coarsening under the VMA budget, and the hooks the other modules call.
 *
 * The backends only move kernel state: track_sigsegv.c routes faults here through
 * libsigsegv (by the `fault` hook of struct arena__track), track_uffd.c asks the kernel
 * for written pages (userfaultfd WP_ASYNC).
 *
 * Beside the view layer (docs/design.md §2): calls track_sigsegv.c, track_uffd.c, view.c,
 * map.c and os.c. view.c calls back only through arena__track_view_hooks.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "track_impl.h"

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

/* Slots at or past this never showed a page: whole-view walks stop there. */
static size_t used_end(const struct arena__track *t)
{
    size_t end = arena__view_used_end(t->view);
    return end < t->nslots ? end : t->nslots;
}

/* The arena's budget counts tracking's mappings with its views'. */
static void splits_add(struct arena__track *t, size_t n)
{
    size_t old = atomic_fetch_add(&t->splits, n);
    arena__budget_change(&arena__view_arena(t->view)->budget, old, old + n);
}

static void splits_set(struct arena__track *t, size_t n)
{
    size_t old = atomic_exchange(&t->splits, n);
    arena__budget_change(&arena__view_arena(t->view)->budget, old, n);
}

static char *slot_addr(const struct arena__track *t, size_t slot)
{
    return t->base + (slot << t->shift);
}

/* Changes only while every group lock is held (regroup). */
static unsigned group_shift(const struct arena__track *t)
{
    return atomic_load(&t->group_shift);
}

static void group_range(const struct arena__track *t, size_t g, size_t *first, size_t *end)
{
    *first = g << group_shift(t);
    *end = *first + ((size_t)1 << group_shift(t));
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

/* ---------------------------------------------------- ARENA_TRACK_OLD -- */

/* heap.c's answer (registered by arena.c, docs/design.md §2: the heap sits above). */
static void (*old_slots)(const arena_t *a, size_t end, uint64_t *bits);

void arena__track_set_old_hook(void (*fn)(const arena_t *a, size_t end, uint64_t *bits))
{
    old_slots = fn;
}

/* .req.track.old: whether a take reports and re-arms slot s. With ARENA_TRACK_OLD only
 * slots holding objects that survived a collection are: the others stay open (with the
 * libsigsegv backend their bit stays set, so the bit still says "unprotected") and are
 * reported at the first take that finds them old (the collection that made them old wrote
 * them). */
static bool in_scope(const struct arena__track *t, size_t s)
{
    if (!(t->what & ARENA_TRACK_OLD) || t->scope == NULL)
        return true;
    return s < t->scope_words * 64 && ((t->scope[s >> 6] >> (s & 63)) & 1);
}

/* Recompute the old slots of [0, used_end) before a take or a peek (lock held). */
static void scope_refresh(struct arena__track *t, size_t end)
{
    if (!(t->what & ARENA_TRACK_OLD))
        return;
    size_t words = (end + 63) / 64;
    if (words > t->scope_words || t->scope == NULL) {
        free(t->scope);
        t->scope = old_slots == NULL ? NULL : calloc(words, sizeof *t->scope);
        t->scope_words = t->scope == NULL ? 0 : words;
    }
    if (t->scope == NULL)
        return;
    memset(t->scope, 0, t->scope_words * sizeof *t->scope);
    old_slots(arena__view_arena(t->view), end, t->scope);
}

/* ------------------------------------------------------ opening pages ---- */

/* .req.track.slot-protection: a touched page gets the slot's own protection (arena_view_protect), an armed one
 * that minus what tracking must see. Both are plain reads: usable from the handler. */
static int prot_open_of(const struct arena__track *t, size_t slot)
{
    return arena__os_prot(arena__view_slot_prot(t->view, slot));
}

static int prot_armed_of(const struct arena__track *t, size_t slot)
{
    return (t->what & ARENA_TRACK_ACCESS) ? PROT_NONE : prot_open_of(t, slot) & ~PROT_WRITE;
}

static int prot_of(const struct arena__track *t, size_t slot, bool armed)
{
    return armed ? prot_armed_of(t, slot) : prot_open_of(t, slot);
}

/* Select by the tracker's own open bits instead of a bitmap relative to `first`; ARMED:
 * the slots that may be armed now: bit clear, and either showing what they showed when
 * armed or marked by view_remapping. That mark is set BEFORE view.c's system call, so a
 * call the kernel refused leaves the slot marked yet still armed: opening it anyway costs
 * nothing when the call did re-create it open, and skipping it would leave it armed after
 * arena_track_stop with no handler to open it. */
static const uint64_t BITS[1], ARMED[1];

static bool slot_changed(const struct arena__track *t, size_t s);

static bool picked(const struct arena__track *t, size_t s, size_t first, const uint64_t *sel,
                   bool want)
{
    if (!arena__track_slot_mapped(t, s))
        return false;
    if (sel == NULL)
        return true;
    if (sel == ARMED)
        return !bit_get(t, s) && (t->shown[s] == ARENA__VIEW_REC_STALE || !slot_changed(t, s));
    return (sel == BITS ? bit_get(t, s) : plain_get(sel, s - first)) == want;
}

/* A run an mprotect refused: [lo, hi). The kernel may have changed part of it. */
struct span {
    size_t lo, hi;
};

/* Give the picked slots of [first, end) their armed or open protection, one mprotect per
 * maximal run of equal protection. Returns 0 or the errno of the first failure; with
 * `failed` it stops there and says which run it was, without it goes on (undoing). */
static int set_runs(struct arena__track *t, size_t first, size_t end, const uint64_t *sel,
                    bool want, bool armed, struct span *failed)
{
    int err = 0;
    size_t s = first;
    while (s < end) {
        if (!picked(t, s, first, sel, want)) {
            s++;
            continue;
        }
        int prot = prot_of(t, s, armed);
        size_t run = s;
        while (s < end && picked(t, s, first, sel, want) && prot_of(t, s, armed) == prot)
            s++;
        if (arena__os_mprotect(slot_addr(t, run), (s - run) << t->shift, prot) == 0)
            continue;
        if (err == 0)
            err = arena__os_error(ARENA_EINVAL);
        if (failed != NULL) {
            failed->lo = run;
            failed->hi = s;
            return err;
        }
    }
    return err;
}

/* Open every mapped slot of group g (.req.track.coarsening: the coarse block). Group lock held. If the
 * kernel refuses, what was opened counts as touched and the refused run is armed again,
 * so a bit is set exactly on open pages. */
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
    struct span f = {end, end};
    if (set_runs(t, first, end, BITS, false, false, &f) != 0)
        set_runs(t, f.lo, f.hi, BITS, false, true, NULL);
    for (size_t s = first; s < f.lo; s++)
        if (arena__track_slot_mapped(t, s))
            bit_set(t, s);
    splits_add(t, 2);
    return f.lo == end;
}

/* Is slot s armed, showing file page `page` with these armed/open protections? */
static bool same_mapping(const struct arena__track *t, size_t s, size_t page, int armed, int open)
{
    return arena__view_page(t->view, s) == page && !bit_get(t, s) && prot_armed_of(t, s) == armed &&
           prot_open_of(t, s) == open;
}

/* Last resort at the kernel's mapping limit, when neither the page nor its group could be
 * opened (both need a split, and the process has no mapping left): open the whole mapping
 * the slot is part of, the maximal run of armed slots around it showing consecutive file
 * pages with one protection, which the kernel holds as one VMA, so no split is needed. Every
 * page of it counts as touched (conservative). The write must proceed: a fault left unopened
 * would fall to the default action and kill the process. Other groups' bits are set without
 * their locks: a bit is only ever set after its page was opened, and take clears a bit
 * before it re-arms the page, so an open page never ends up with a clear bit. */
static int open_mapping(struct arena__track *t, size_t slot)
{
    size_t page = arena__view_page(t->view, slot), lo = slot, hi = slot + 1;
    int armed = prot_armed_of(t, slot), open = prot_open_of(t, slot);
    while (lo > 0 && page >= slot - lo + 1 && same_mapping(t, lo - 1, page - (slot - lo + 1), armed, open))
        lo--;
    while (hi < t->nslots && same_mapping(t, hi, page + (hi - slot), armed, open))
        hi++;
    if (arena__os_mprotect(slot_addr(t, lo), (hi - lo) << t->shift, open) != 0)
        return 0;
    for (size_t s = lo; s < hi; s++)
        bit_set(t, s);
    return 1;
}

/* The group of slot, or failing that the slot's whole mapping. */
static int open_coarse(struct arena__track *t, size_t slot)
{
    int r = open_group(t, slot >> group_shift(t));
    if (!bit_get(t, slot) && arena__track_slot_mapped(t, slot))
        r = open_mapping(t, slot);
    return r;
}

/* Open one slot, or its group once the splits near the budget (.req.track.coarsening). Group lock held.
 * Async-signal-safe: atomics and mprotect only. */
static int open_locked(struct arena__track *t, size_t slot)
{
    if (!arena__track_slot_mapped(t, slot))
        return 0;
    /* A slot protected against what tracking watches (arena_view_protect): its faults are
     * the program's own. */
    if (prot_armed_of(t, slot) == prot_open_of(t, slot))
        return 0;
    if (atomic_load(&t->coarse))
        return open_coarse(t, slot);
    if (bit_get(t, slot))
        return 0;
    if (arena__os_mprotect(slot_addr(t, slot), t->page, prot_open_of(t, slot)) != 0) {
        /* Out of mappings despite the estimate: the group costs at most the same. */
        atomic_store(&t->coarse, 1);
        return open_coarse(t, slot);
    }
    bit_set(t, slot);
    splits_add(t, 2);
    if (atomic_load(&t->splits) >= t->fine_limit)
        atomic_store(&t->coarse, 1);
    return 1;
}

static int track_fault(struct arena__track *t, void *addr)
{
    if ((char *)addr < t->base)
        return 0;
    size_t slot = (size_t)((char *)addr - t->base) >> t->shift;
    if (slot >= t->nslots)
        return 0;
    unsigned gs = group_shift(t);
    size_t g = slot >> gs;
    unsigned char z = 0;
    if (!atomic_compare_exchange_strong(&t->lock[g], &z, 1))
        return -1;
    if (group_shift(t) != gs) { /* regrouped meanwhile: this lock is another group's */
        group_unlock(t, g);
        return -1;
    }
    int saved = errno;
    int r = open_locked(t, slot);
    group_unlock(t, g);
    errno = saved;
    if (r > 0)
        atomic_fetch_add(&arena__view_arena(t->view)->track_faults, 1);
    return r;
}

/* ------------------------------------------------------- set up, tear down -- */

static void track_free(struct arena__track *t)
{
    free((void *)t->open);
    free(t->shown);
    free(t->shown_prot);
    free(t->carried);
    free((void *)t->lock);
    free(t->scope);
    free(t);
}

/* The smallest coarse block for which every block of the slots in use open at once stays
 * within the coarse half of the allowance (.req.track.coarsening). Sized from the part in use, not the
 * whole view: a 1 GiB heap in a 64 GiB view coarsens to blocks of 128 pages, not 4096. */
static unsigned shift_for(const struct arena__track *t, size_t used)
{
    unsigned gs = GROUP_MIN_SHIFT;
    while (gs < 40 && 2 * ((used + ((size_t)1 << gs) - 1) >> gs) > t->coarse_room)
        gs++;
    return gs;
}

/* Half of what the budget leaves is for single pages before coarsening, half bounds the
 * coarse mode (.req.track.coarsening). */
static int plan_budget(struct arena__track *t, arena_t *a)
{
    size_t allowance = arena__budget_room(&a->budget); /* the arena's and the process's */
    if (t->backend == ARENA_TRACKER_UFFD)
        allowance = SIZE_MAX / 4; /* no splits: write protection lives in the page tables */
    if (allowance < 8)
        return ARENA_EVMA;
    t->fine_limit = allowance / 2;
    t->coarse_room = allowance - t->fine_limit;
    t->group_shift = shift_for(t, used_end(t));
    /* One lock per smallest group, so the groups can grow with the view without moving. */
    t->nlocks = (t->nslots + ((size_t)1 << GROUP_MIN_SHIFT) - 1) >> GROUP_MIN_SHIFT;
    return 0;
}

/* The slots in use grew past what the coarse blocks were sized for (heap growth, new
 * mappings): make the blocks bigger. Every lock is held meanwhile, so no handler works on
 * a group of the old size; one that locked by the old size sees the change and retries. */
static void regroup(struct arena__track *t)
{
    unsigned old = group_shift(t), gs = shift_for(t, used_end(t));
    if (gs <= old)
        return;
    size_t n = (t->nslots + ((size_t)1 << old) - 1) >> old;
    for (size_t g = 0; g < n; g++)
        group_lock(t, g);
    atomic_store(&t->group_shift, gs);
    for (size_t g = 0; g < n; g++)
        group_unlock(t, g);
}

static int track_alloc(arena_view_t *v, int what, int backend, struct arena__track **out)
{
    arena_t *a = arena__view_arena(v);
    struct arena__track *t = calloc(1, sizeof *t);
    if (t == NULL)
        return ARENA_ENOMEM;
    t->view = v;
    t->what = what;
    t->backend = backend;
    t->fault = track_fault;
    t->base = arena__view_base(v);
    t->nslots = arena__view_nslots(v);
    t->page = a->page_size;
    t->shift = (unsigned)a->page_shift;
    t->uffd = -1;
    int err = plan_budget(t, a);
    if (err != 0) {
        free(t);
        return err;
    }
    t->nwords = (t->nslots + 63) / 64;
    t->open = calloc(t->nwords, sizeof *t->open);
    t->shown = calloc(t->nslots, sizeof *t->shown);
    t->shown_prot = calloc(t->nslots, 1);
    t->carried = calloc(t->nwords, sizeof *t->carried);
    t->lock = calloc(t->nlocks, sizeof *t->lock);
    if (t->open == NULL || t->shown == NULL || t->shown_prot == NULL || t->carried == NULL ||
        t->lock == NULL) {
        track_free(t);
        return ARENA_ENOMEM;
    }
    arena__view_snapshot(v, 0, used_end(t), t->shown, t->shown_prot);
    *out = t;
    return 0;
}

static int choose_backend(const arena_view_t *v, int what, int *backend)
{
    int want = arena__view_arena(v)->cfg.tracker;
    bool uffd_ok = arena__tuffd_available() && !(what & ARENA_TRACK_ACCESS) &&
                   !(arena__view_flags(v) & ARENA_VIEW_PRIVATE);
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

/* Register first, protect second (.req.track.sigsegv-handler): no fault can reach the handler for a view
 * whose tracker it cannot find yet. */
static int sigsegv_arm_all(struct arena__track *t)
{
    int err = arena__tsig_attach(t);
    if (err != 0)
        return err;
    /* All or nothing: what was armed before a refusal is opened again. */
    struct span f;
    err = set_runs(t, 0, used_end(t), NULL, true, true, &f);
    if (err != 0) {
        set_runs(t, 0, f.hi, NULL, true, false, NULL);
        arena__tsig_detach(t);
    }
    return err;
}

/* The SIGSEGV backend needs the signal: a thread that blocks SIGSEGV is killed by the kernel
 * on its first write to an armed page (a synchronous fault is never left pending). Only the
 * calling thread's mask can be checked here; other threads are the caller's to keep right. */
static bool sigsegv_blocked(void)
{
    sigset_t cur;
    return pthread_sigmask(SIG_BLOCK, NULL, &cur) == 0 && sigismember(&cur, SIGSEGV) == 1;
}

static int start_backend(arena_view_t *v, int what, int backend)
{
    struct arena__track *t;
    if (backend == ARENA_TRACKER_SIGSEGV && sigsegv_blocked())
        return ARENA_ESTATE;
    int err = track_alloc(v, what, backend, &t);
    if (err != 0)
        return err;
    err = backend == ARENA_TRACKER_UFFD ? arena__tuffd_attach(t) : sigsegv_arm_all(t);
    if (err != 0) {
        track_free(t);
        /* AUTO: the kernel may still refuse this file (a tmpfile on a disk filesystem). */
        if (backend == ARENA_TRACKER_UFFD && arena__view_arena(v)->cfg.tracker == ARENA_TRACKER_AUTO)
            return start_backend(v, what, ARENA_TRACKER_SIGSEGV);
        return err;
    }
    arena__view_set_track(v, t);
    return 0;
}

static int start_locked(arena_view_t *v, int what)
{
    int backend;
    int err = choose_backend(v, what, &backend);
    return err != 0 ? err : start_backend(v, what, backend);
}

/* Signals that might touch tracked pages wait while this thread holds group locks: their
 * fault would find the group busy for ever. */
static void block_signals(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    pthread_sigmask(SIG_BLOCK, &all, old);
}

/* Arm again the slots of groups [0, g_end) that were armed before open_all. */
static void rearm_groups(struct arena__track *t, size_t g_end)
{
    for (size_t g = 0; g < g_end; g++) {
        size_t first, end;
        group_range(t, g, &first, &end);
        group_lock(t, g);
        set_runs(t, first, end, ARMED, true, true, NULL);
        group_unlock(t, g);
    }
}

/* Open every armed page, group by group under its lock. All or nothing (.req.track.all-or-nothing): if the kernel
 * refuses, what this call opened is armed again and the tracker is as before. */
static int open_all(struct arena__track *t)
{
    size_t end = used_end(t);
    int err = 0;
    sigset_t old;
    block_signals(&old);
    for (size_t g = 0; (g << group_shift(t)) < end && err == 0; g++) {
        size_t first, gend;
        group_range(t, g, &first, &gend);
        struct span f;
        group_lock(t, g);
        err = set_runs(t, first, gend < end ? gend : end, ARMED, true, false, &f);
        if (err != 0)
            set_runs(t, first, f.hi, ARMED, true, true, NULL);
        group_unlock(t, g);
        if (err != 0)
            rearm_groups(t, g);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return err;
}

/* force: the view is about to be unmapped, so a refused mprotect does not keep it tracked. */
static int stop_locked(arena_view_t *v, bool force)
{
    struct arena__track *t = arena__view_track(v);
    if (t == NULL)
        return 0;
    if (t->backend == ARENA_TRACKER_UFFD) {
        /* Closing the context drops whatever registration an ioctl failed to undo. */
        arena__tuffd_detach(t);
    } else {
        /* Open first, unregister second: a fault racing with the stop finds either the
         * area or an accessible page (track_sigsegv.c retries once before chaining). */
        int err = open_all(t);
        if (err != 0 && !force)
            return err;
        if (err != 0)
            set_runs(t, 0, used_end(t), NULL, true, false, NULL);
        arena__tsig_detach(t);
        splits_set(t, 0);
    }
    arena__view_set_track(v, NULL);
    track_free(t);
    return 0;
}

/* --------------------------------------------------------------- taking -- */

/* .req.track.new-contents: slots that show other file pages than when they were armed (arena_view_map, heap
 * growth, release) hold new contents: they count as touched. Found by comparing the view's
 * slot table with the copy taken when they were armed, so view.c needs no hook for it.
 * .req.track.slot-protection: a slot given another protection (arena_view_protect) was opened to it by view.c;
 * it is found the same way and counts as touched, then armed relative to its new one. */
static bool slot_changed(const struct arena__track *t, size_t s)
{
    return arena__view_changed(t->view, s, s + 1, t->shown, t->shown_prot);
}

static bool chunk_changed(const struct arena__track *t, size_t chunk, size_t cend)
{
    return arena__view_changed(t->view, chunk, cend, t->shown, t->shown_prot);
}

/* A slot marked by view_remapping may still have its armed mapping (the kernel refused
 * view.c's call, or a refused stop armed it again), yet sync_changes is about to set its
 * bit, which says "open": the fault handler ignores faults on such slots. So open it
 * first. False when the kernel refuses: it stays marked with its bit clear, so a fault
 * still opens it and the next take counts it. */
static bool open_stale(struct arena__track *t, size_t s)
{
    if (t->shown[s] != ARENA__VIEW_REC_STALE || t->backend == ARENA_TRACKER_UFFD ||
        !arena__track_slot_mapped(t, s))
        return true;
    return arena__os_mprotect(slot_addr(t, s), t->page, prot_open_of(t, s)) == 0;
}

static void sync_changes(struct arena__track *t)
{
    size_t end = used_end(t);
    for (size_t chunk = 0; chunk < end; chunk += 64) {
        size_t cend = chunk + 64 < end ? chunk + 64 : end;
        if (!chunk_changed(t, chunk, cend))
            continue;
        for (size_t s = chunk; s < cend; s++) {
            if (!slot_changed(t, s))
                continue;
            size_t run = s;
            while (s < cend && slot_changed(t, s)) {
                if (!open_stale(t, s)) {
                    s++;
                    continue;
                }
                arena__view_snapshot(t->view, s, s + 1, t->shown, t->shown_prot);
                if (arena__track_slot_mapped(t, s))
                    bit_set(t, s);
                else
                    bit_clear(t, s);
                s++;
            }
            /* The new mappings need registering before the scan may walk them; if that
             * fails their bits stay set and the take arms them again. */
            if (t->backend == ARENA_TRACKER_UFFD)
                arena__tuffd_arm(t, run, s - run);
        }
    }
}

/* Re-arm slots [first, end) whose bit in sel (relative to first) is set. On failure,
 * *bad is the first selected slot that may not be armed; the slots from there on are
 * open again (libsigsegv) so that they can be left pending. */
static int rearm(struct arena__track *t, size_t first, size_t end, const uint64_t *sel, size_t *bad)
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
            int err = arena__tuffd_arm(t, run, s - run);
            if (err != 0) {
                *bad = run;
                return err;
            }
        }
        return 0;
    }
    struct span f;
    int err = set_runs(t, first, end, sel, true, true, &f);
    if (err != 0) {
        set_runs(t, f.lo, f.hi, sel, true, false, NULL);
        *bad = f.lo;
    }
    return err;
}

/* The bits of word w a take may act on: touched or carried, and in scope. Out of scope
 * slots that stopped showing a page have no bit (sync_changes cleared it). */
static uint64_t pending_word(const struct arena__track *t, size_t w)
{
    uint64_t x = atomic_load(&t->open[w]) | t->carried[w];
    if ((t->what & ARENA_TRACK_OLD) && t->scope != NULL)
        x &= w < t->scope_words ? t->scope[w] : 0;
    return x;
}

/* Report and re-arm up to max pages whose bit is set, group by group. If re-arming is
 * refused, the pages not re-armed are taken back from the report and stay pending (their
 * bits set again, open): no touch is lost, none reported without being re-armed. */
static int take_bits(struct arena__track *t, void **pages, size_t max, size_t *count)
{
    size_t n = 0;
    int err = 0;
    uint64_t sel[((size_t)1 << 12) / 64 + 1];
    size_t groups_used = (used_end(t) + ((size_t)1 << group_shift(t)) - 1) >> group_shift(t);
    for (size_t g = 0; g < groups_used && n < max && err == 0; g++) {
        size_t first, end;
        group_range(t, g, &first, &end);
        bool any = false;
        for (size_t w = first >> 6; w < (end + 63) >> 6 && !any; w++)
            any = (atomic_load(&t->open[w]) | t->carried[w]) != 0;
        if (!any)
            continue;
        /* A group bigger than sel is handled in sel-sized pieces under one lock. */
        group_lock(t, g);
        for (size_t piece = first; piece < end && n < max && err == 0; piece += (size_t)1 << 12) {
            size_t pend = piece + ((size_t)1 << 12) < end ? piece + ((size_t)1 << 12) : end;
            for (size_t i = 0; i <= (pend - piece) / 64; i++)
                sel[i] = 0;
            size_t n_piece = n;
            for (size_t s = piece; s < pend && n < max; s++) {
                if ((s & 63) == 0 && (pending_word(t, s >> 6)) == 0) {
                    s += 63; /* a word with no bit to take */
                    continue;
                }
                if (!bit_get(t, s) && !plain_get(t->carried, s))
                    continue;
                if (arena__track_slot_mapped(t, s) && !in_scope(t, s))
                    continue; /* stays open and pending */
                bit_clear(t, s); /* before re-arming: a write after this is seen again */
                plain_put(t->carried, s, false);
                if (!arena__track_slot_mapped(t, s))
                    continue;
                plain_put(sel, s - piece, true);
                pages[n++] = slot_addr(t, s);
            }
            if (n == n_piece)
                continue; /* nothing to re-arm in this piece */
            size_t bad = pend;
            err = rearm(t, piece, pend, sel, &bad);
            for (size_t s = bad; s < pend; s++)
                if (plain_get(sel, s - piece)) {
                    bit_set(t, s);
                    n--;
                }
        }
        group_unlock(t, g);
    }
    *count = n;
    return err;
}

/* Splits now: each maximal run of open slots costs at most two mappings. */
static void recount_splits(struct arena__track *t)
{
    if (t->backend == ARENA_TRACKER_UFFD)
        return;
    size_t runs = 0;
    uint64_t prev_top = 0;
    /* No bit is set at or past the slots in use (sync_changes clears what stops showing). */
    size_t words = (used_end(t) + 63) / 64;
    for (size_t w = 0; w < words; w++) {
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
 * .req.track.sigsegv-handler: never a missed page), everything is armed (re-registering what lost it), and the
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
    struct arena__track *t = arena__view_track(v);
    size_t n = 0, more = 0;
    sync_changes(t);
    regroup(t);
    scope_refresh(t, used_end(t));
    if (t->backend == ARENA_TRACKER_UFFD) {
        int err = (t->what & ARENA_TRACK_OLD) && t->scope != NULL
                      ? arena__tuffd_scan_kept(t, pages, max, &n, t->scope, t->scope_words)
                      : arena__tuffd_scan(t, pages, max, &n);
        if (err == ARENA_EPERM)
            err = reregister_lost(t, pages, max, &n);
        /* Pages the scan reported need no second report from the bitmap; if it failed
         * part way, the ones it had write-protected again stay pending there instead. */
        for (size_t i = 0; i < n; i++) {
            size_t slot = (size_t)((char *)pages[i] - t->base) >> t->shift;
            if (err != 0)
                bit_set(t, slot);
            else
                bit_clear(t, slot);
        }
        if (err != 0)
            return err;
    }
    /* Only libsigsegv's handler takes group locks: with userfaultfd the kernel resolves
     * the faults, and no signal needs masking. */
    bool mask = t->backend == ARENA_TRACKER_SIGSEGV;
    sigset_t old;
    if (mask)
        block_signals(&old);
    int err = take_bits(t, pages + n, max - n, &more);
    if (mask)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    recount_splits(t);
    *count = n + more;
    return err;
}

/* .req.track.peek: what a take would report now, changing nothing a take would see
 * (sync_changes only records new contents as pending, as a take would first). Every page
 * is counted in *count; the first max are stored, in address order. */
static int peek_locked(arena_view_t *v, void **pages, size_t max, size_t *count)
{
    struct arena__track *t = arena__view_track(v);
    sync_changes(t);
    size_t end = used_end(t), words = (end + 63) / 64;
    scope_refresh(t, end);
    uint64_t *seen = calloc(words ? words : 1, sizeof *seen);
    if (seen == NULL)
        return ARENA_ENOMEM;
    int err = 0;
    if (t->backend == ARENA_TRACKER_UFFD && (t->what & ARENA_TRACK_OLD) && t->scope != NULL)
        err = arena__tuffd_written_kept(t, seen, t->scope, t->scope_words);
    else if (t->backend == ARENA_TRACKER_UFFD)
        err = arena__tuffd_written(t, 0, end, seen);
    size_t n = 0;
    for (size_t w = 0; w < words && err == 0; w++) {
        uint64_t x = seen[w] | pending_word(t, w);
        while (x != 0) {
            size_t s = w * 64 + (size_t)__builtin_ctzll(x);
            x &= x - 1;
            if (s >= end || !arena__track_slot_mapped(t, s) || !in_scope(t, s))
                continue;
            if (n < max)
                pages[n] = slot_addr(t, s);
            n++;
        }
    }
    free(seen);
    *count = err == 0 ? n : 0;
    return err;
}

/* ------------------------------------------------------------ public API -- */

static int check_view(const arena_view_t *v)
{
    if (v == NULL)
        return ARENA_ENULL;
    if (arena__view_closed(v))
        return ARENA_ECLOSED;
    return arena__callable(arena__view_arena(v));
}

int arena_track_start(arena_view_t *v, int what) /* .req.track.api */
{
    int err = check_view(v);
    if (err != 0)
        return err;
    if (what == 0 || (what & ~(ARENA_TRACK_WRITES | ARENA_TRACK_ACCESS | ARENA_TRACK_OLD)) != 0)
        return ARENA_ECONFIG;
    if ((what & ARENA_TRACK_OLD) && (what != (ARENA_TRACK_WRITES | ARENA_TRACK_OLD) ||
                                     v != arena__view_arena(v)->heap_view))
        return ARENA_ECONFIG;
    int prot = arena__view_prot(v);
    if ((what & ARENA_TRACK_ACCESS) ? !(prot & ARENA_PROT_READ) : !(prot & ARENA_PROT_WRITE))
        return ARENA_EPROT;
    pthread_mutex_lock(&arena__view_arena(v)->lock);
    err = arena__view_track(v) != NULL ? ARENA_EBUSY : start_locked(v, what);
    pthread_mutex_unlock(&arena__view_arena(v)->lock);
    return err;
}

/* The checks and locking that arena_track_take and arena_track_peek share; locked is
 * take_locked or peek_locked. */
static int report(arena_view_t *v, void **pages, size_t max, size_t *count,
                  int (*locked)(arena_view_t *, void **, size_t, size_t *))
{
    if (count != NULL)
        *count = 0;
    int err = check_view(v);
    if (err != 0)
        return err;
    if (count == NULL || (pages == NULL && max != 0))
        return ARENA_ENULL;
    pthread_mutex_lock(&arena__view_arena(v)->lock);
    err = arena__view_track(v) == NULL ? ARENA_ESTATE : locked(v, pages, max, count);
    pthread_mutex_unlock(&arena__view_arena(v)->lock);
    return err;
}

int arena_track_take(arena_view_t *v, void **pages, size_t max, size_t *count)
{
    return report(v, pages, max, count, take_locked);
}

int arena_track_peek(arena_view_t *v, void **pages, size_t max, size_t *count)
{
    return report(v, pages, max, count, peek_locked);
}

int arena_track_stop(arena_view_t *v)
{
    int err = check_view(v);
    if (err != 0)
        return err;
    pthread_mutex_lock(&arena__view_arena(v)->lock);
    err = arena__view_track(v) == NULL ? ARENA_ESTATE : stop_locked(v, false);
    pthread_mutex_unlock(&arena__view_arena(v)->lock);
    return err;
}

/* .req.track.prepare-io: the kernel does not raise SIGSEGV for a write into a protected page made by a
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
        size_t g = s >> group_shift(t);
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
    int err = arena__callable(a);
    if (err != 0)
        return err;
    char *lo = addr, *hi = (char *)addr + len;
    if (hi < lo)
        return ARENA_ERANGE;
    pthread_mutex_lock(&a->lock);
    for (arena_view_t *v = a->views; v != NULL; v = arena__view_next(v))
        if (arena__view_track(v) != NULL)
            prepare_view(arena__view_track(v), lo, hi);
    pthread_mutex_unlock(&a->lock);
    return 0;
}

int arena_track_backend(const arena_view_t *v)
{
    if (v == NULL || arena__view_track(v) == NULL)
        return -1;
    return arena__view_track(v)->backend;
}

/* ---------------------------------------------------------------- hooks -- */

static void view_closing(arena_view_t *v)
{
    if (v != NULL)
        stop_locked(v, true);
}

void arena__track_arena_destroy(arena_t *a)
{
    for (arena_view_t *v = a->views; v != NULL; v = arena__view_next(v))
        stop_locked(v, true);
}

/* .req.track.moves: a collection moved slots [src, src+n) to [dst, dst+n) (called after the move). The
 * destination keeps the source's state; what the mover left in the kernel (mremap carries
 * the protection, a remap or copy shows the view's) is set right. The userfaultfd state of
 * the source is gone with its page tables, so there every moved page counts as touched. */
/* Open the slots of sel (relative to first; consumed); a touched page the kernel would not
 * open stays armed and is reported from `carried`. */
static void open_or_carry(struct arena__track *t, size_t first, size_t end, uint64_t *sel)
{
    struct span f;
    if (t->backend == ARENA_TRACKER_UFFD)
        return;
    while (set_runs(t, first, end, sel, true, false, &f) != 0)
        for (size_t s = f.lo; s < f.hi; s++)
            if (plain_get(sel, s - first)) {
                plain_put(sel, s - first, false);
                bit_clear(t, s);
                plain_put(t->carried, s, true);
            }
}

void arena__track_moved(arena_view_t *v, size_t dst, size_t src, size_t n)
{
    struct arena__track *t = v == NULL ? NULL : arena__view_track(v);
    if (t == NULL || n == 0 || dst + n > t->nslots || src + n > t->nslots || dst == src)
        return;
    size_t words = (n + 63) / 64;
    uint64_t *state = calloc(words * 4, sizeof *state);
    if (state == NULL)
        return; /* the next take sees the changed slots as new contents: conservative */
    uint64_t *moved = state + words, *to_arm = moved + words, *src_new = to_arm + words;
    bool any = false;
    for (size_t i = 0; i < n; i++) {
        /* A second call for the same move (view.c and collect.c both report it) finds the
         * destination already in step: it keeps its protection (re-arming a dirty page whose
         * bit says open would leave it shut for good). */
        if (!arena__view_changed(t->view, dst + i, dst + i + 1, t->shown, NULL))
            continue; /* only moved slots are protected below */
        any = true;
        plain_put(moved, i, true);
        plain_put(state, i, t->backend == ARENA_TRACKER_UFFD || bit_get(t, src + i) ||
                                plain_get(t->carried, src + i));
    }
    if (!any) {
        free(state);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        size_t s = src + i;
        if (s >= dst && s < dst + n)
            continue;
        arena__view_snapshot(t->view, s, s + 1, t->shown, NULL);
        bit_clear(t, s);
        plain_put(t->carried, s, false);
        if (arena__track_slot_mapped(t, s)) {
            bit_set(t, s); /* the source shows something new: its contents count as touched */
            plain_put(src_new, i, true);
        }
    }
    /* Open as its bit says: a source whose unmapping the kernel refused is still armed. */
    open_or_carry(t, src, src + n, src_new);
    for (size_t i = 0; i < n; i++) {
        if (!plain_get(moved, i))
            continue;
        size_t g = (dst + i) >> group_shift(t);
        group_lock(t, g);
        arena__view_snapshot(t->view, dst + i, dst + i + 1, t->shown, NULL);
        plain_put(t->carried, dst + i, false);
        if (plain_get(state, i))
            bit_set(t, dst + i);
        else
            bit_clear(t, dst + i);
        group_unlock(t, g);
    }
    if (t->backend == ARENA_TRACKER_UFFD) {
        arena__tuffd_arm(t, dst, n);
        free(state);
        return;
    }
    /* Only the moved slots: one in step already may be open or armed. */
    for (size_t w = 0; w < words; w++) {
        to_arm[w] = moved[w] & ~state[w];
        state[w] &= moved[w];
    }
    struct span f;
    if (set_runs(t, dst, dst + n, to_arm, true, true, &f) != 0) {
        /* Left open: counted touched instead, so nothing written is missed. */
        set_runs(t, f.lo, f.hi, to_arm, true, false, NULL);
        for (size_t s = f.lo; s < dst + n; s++)
            if (plain_get(to_arm, s - dst))
                bit_set(t, s);
    }
    /* A touched page the kernel would not open stays armed: it is reported from `carried`. */
    open_or_carry(t, dst, dst + n, state);
    free(state);
}


/* BEFORE view.c re-creates or re-protects the mappings of slots [slot, slot+n): the new
 * mapping is open to the mutator even when it shows the same file page with the same
 * protection as when it was armed, so the next take counts those slots as touched (.req.track.new-contents)
 * instead of trusting the slot records. */
static void view_remapping(arena_view_t *v, size_t slot, size_t n)
{
    struct arena__track *t = v == NULL ? NULL : arena__view_track(v);
    if (t == NULL || slot >= t->nslots)
        return;
    if (n > t->nslots - slot)
        n = t->nslots - slot;
    for (size_t i = 0; i < n; i++)
        t->shown[slot + i] = ARENA__VIEW_REC_STALE;
}

/* In a forked child the views were re-mapped with their own protection: every page is
 * open. Count them all touched (.req.fork.child-failure: conservative) and re-attach the kernel side. */
void arena__track_forked(arena_t *a)
{
    for (arena_view_t *v = a->views; v != NULL; v = arena__view_next(v)) {
        struct arena__track *t = arena__view_track(v);
        if (t == NULL)
            continue;
        for (size_t s = 0; s < used_end(t); s++)
            if (arena__track_slot_mapped(t, s))
                bit_set(t, s);
        for (size_t g = 0; g < t->nlocks; g++)
            atomic_store(&t->lock[g], 0);
        if (t->backend == ARENA_TRACKER_UFFD) {
            if (t->uffd >= 0)
                arena__os_close(t->uffd);
            t->uffd = -1;
            if (arena__tuffd_attach(t) == 0)
                continue;
            t->backend = ARENA_TRACKER_SIGSEGV;
            if (arena__tsig_attach(t) != 0) {
                arena__view_set_track(v, NULL);
                track_free(t);
            }
            continue;
        }
        recount_splits(t);
    }
}

const struct arena__view_hooks arena__track_view_hooks = {
    .closing = view_closing,
    .remapping = view_remapping,
    .moved = arena__track_moved,
};
