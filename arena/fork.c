/*
 * fork.c -- fork() of a process that holds arenas (docs/design.md §9, R9.1-R9.4).
 *
 * Every heap page is a page of a MAP_SHARED file, so after a plain fork() parent and
 * child would write into the same memory. The atfork handlers give the child its own
 * copy of every arena:
 *   prepare  (parent, before fork): take every arena's lock, so no thread is in the middle
 *            of a slow-path allocation, a view change or a collection (R9.1);
 *   child    (only the forking thread exists): per arena, copy every file page in use into a
 *            new file, tell the parent the copy is complete, then re-map every view run onto
 *            the new file at the same address (R9.2);
 *   parent   wait until the child has copied, then unlock. Without the wait the forking thread
 *            could write into the heap before the child had read it, and the child would see a
 *            write made after fork() returned (R9.2).
 * A failure in the child cannot be returned from fork(): it is recorded in the arena and
 * every later call on that arena fails with it (R9.3). The child never crashes for it: the
 * old file stays mapped wherever the new one could not be.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U
#endif

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static arena_t *registry;            /* every live arena, linked by fork_next */
static bool handlers_installed;
static int handshake[2] = {-1, -1}; /* read end kept by the parent, write end by the child */

/* ------------------------------------------------------------ the new file ---- */

static int new_file(const arena_t *a)
{
    if (a->backing.kind == ARENA_BACKING_TMPFILE) {
        const char *dir = a->cfg.dir;
        if (dir == NULL)
            dir = getenv("TMPDIR");
        if (dir == NULL || dir[0] == '\0')
            dir = "/tmp";
        return arena__os_open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
    }
    /* As backing.c opens it (R4.3): not executable where the kernel can say so. */
    unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING;
    int fd = arena__os_memfd_create("arena", flags | MFD_NOEXEC_SEAL);
    if (fd < 0 && errno == EINVAL)
        fd = arena__os_memfd_create("arena", flags);
    return fd;
}

/* Next run [*first, *first + return) of file pages in use at or after from; 0 at the end. */
static size_t next_used_run(const struct arena__backing *b, size_t from, size_t *first)
{
    size_t p = from;
    while (p < b->file_pages && !arena__backing_is_used(b, p)) {
        if (p % 64 == 0 && p / 64 < (b->used_cap + 63) / 64 && b->used[p / 64] == 0)
            p += 64;
        else
            p++;
    }
    if (p >= b->file_pages)
        return 0;
    size_t end = p;
    while (end < b->file_pages && arena__backing_is_used(b, end))
        end++;
    *first = p;
    return end - p;
}

/* Size the new file like the old, reserve (fallocate) every page in use so no later write
 * can SIGBUS, copy those pages through two temporary mappings, and carry the seals over. */
static int copy_file(const arena_t *a, int fd)
{
    const struct arena__backing *b = &a->backing;
    size_t ps = b->page_size, len = b->file_pages * ps;
    if (len == 0)
        return 0;
    if (arena__os_ftruncate(fd, (off_t)len) != 0)
        return errno;
    size_t first = 0, n;
    for (size_t from = 0; (n = next_used_run(b, from, &first)) != 0; from = first + n)
        if (arena__os_fallocate(fd, 0, (off_t)(first * ps), (off_t)(n * ps)) != 0)
            return errno;
    char *src = arena__os_mmap(NULL, len, PROT_READ, MAP_SHARED, b->fd, 0);
    if (src == MAP_FAILED)
        return errno;
    char *dst = arena__os_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (dst == MAP_FAILED) {
        int err = errno;
        arena__os_munmap(src, len);
        return err;
    }
    for (size_t from = 0; (n = next_used_run(b, from, &first)) != 0; from = first + n)
        memcpy(dst + first * ps, src + first * ps, n * ps);
    arena__os_munmap(dst, len);
    arena__os_munmap(src, len);
    if (b->kind != ARENA_BACKING_TMPFILE) {
        int seals = arena__os_fcntl(b->fd, F_GET_SEALS, 0);
        if (seals > 0 && arena__os_fcntl(fd, F_ADD_SEALS, seals) != 0)
            return errno;
    }
    return 0;
}

/* ------------------------------------------------------------ the views ---- */

/* A private view's pages may hold its own copy-on-write contents: keep them. */
static int remap_private_run(char *addr, size_t len, int prot, int fd, off_t off)
{
    void *saved = NULL;
    if (prot & PROT_READ) {
        saved = malloc(len);
        if (saved == NULL)
            return ENOMEM;
        memcpy(saved, addr, len);
    }
    if (arena__os_mmap(addr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd, off) ==
        MAP_FAILED) {
        free(saved);
        return errno;
    }
    if (saved != NULL)
        memcpy(addr, saved, len);
    free(saved);
    return arena__os_mprotect(addr, len, prot) == 0 ? 0 : errno;
}

/* Slots slot.. (n of them, consecutive file pages from file_page, one protection) show the
 * same pages of fd instead, at the same address. */
static int remap_run(arena_view_t *v, size_t slot, size_t file_page, size_t n, int fd)
{
    size_t ps = v->arena->page_size;
    char *addr = arena__view_slot_addr(v, slot);
    int prot = arena__prot_os(arena__view_slot_prot(v, slot));
    off_t off = (off_t)(file_page * ps);
    if (v->flags & ARENA_VIEW_PRIVATE)
        return remap_private_run(addr, n * ps, prot, fd, off);
    if (arena__os_mmap(addr, n * ps, prot, MAP_SHARED | MAP_FIXED, fd, off) == MAP_FAILED)
        return errno;
    return 0;
}

/* Every maximal run of slots showing consecutive file pages with one protection moves to
 * fd; every pointer into the view stays valid. */
static int remap_view(arena_view_t *v, int fd)
{
    if (v->closed || v->slot_enc == NULL)
        return 0;
    size_t slot = 0, end = v->high < v->nslots ? v->high : v->nslots;
    while (slot < end) {
        size_t page = arena__view_page(v, slot), n = 1;
        if (page == ARENA_NO_PAGE) {
            slot++;
            continue;
        }
        int prot = arena__view_slot_prot(v, slot);
        while (slot + n < end && arena__view_page(v, slot + n) == page + n &&
               arena__view_slot_prot(v, slot + n) == prot)
            n++;
        int err = remap_run(v, slot, page, n, fd);
        if (err != 0)
            return err;
        slot += n;
    }
    return 0;
}

/* ------------------------------------------------------------ the handlers ---- */

static void prepare(void)
{
    pthread_mutex_lock(&registry_lock);
    handshake[0] = handshake[1] = -1;
    if (registry == NULL)
        return;
    for (arena_t *a = registry; a != NULL; a = a->fork_next)
        pthread_mutex_lock(&a->lock);
    if (arena__os_pipe(handshake) != 0)
        handshake[0] = handshake[1] = -1;
}

static void unlock_all(void)
{
    for (arena_t *a = registry; a != NULL; a = a->fork_next)
        pthread_mutex_unlock(&a->lock);
    pthread_mutex_unlock(&registry_lock);
}

static void parent(void)
{
    if (handshake[1] >= 0) {
        char byte;
        arena__os_close(handshake[1]);
        /* EOF once the child closed its end: after its copy, or when it died. */
        while (arena__os_read(handshake[0], &byte, 1) > 0)
            ;
        arena__os_close(handshake[0]);
    }
    unlock_all();
}

/* Give a a file of its own: 0, or the error that left it on the shared one. */
static int reback(arena_t *a)
{
    int fd = new_file(a);
    if (fd < 0)
        return errno;
    int err = copy_file(a, fd);
    for (arena_view_t *v = a->views; v != NULL && err == 0; v = v->next)
        err = remap_view(v, fd);
    if (err != 0) {
        /* Runs already re-mapped keep the new file open through their mappings, the rest
         * still show the old one: nothing is lost, but the arena cannot be trusted. */
        arena__os_close(fd);
        return err;
    }
    arena__os_close(a->backing.fd);
    a->backing.fd = fd;
    return 0;
}

static void child(void)
{
    int synced = handshake[1] >= 0;
    if (synced)
        arena__os_close(handshake[0]);
    for (arena_t *a = registry; a != NULL; a = a->fork_next) {
        if (a->fork_error != 0)
            continue;
        arena__heap_forked(a);
        /* Without the hand-shake the parent may already be writing into the file, so no copy
         * made now could be trusted to be the state at fork(). */
        a->fork_error = synced ? reback(a) : EMFILE;
        if (a->fork_error == 0)
            arena__track_forked(a);
    }
    if (synced)
        arena__os_close(handshake[1]);
    unlock_all();
}

/* ------------------------------------------------------------ registry ---- */

int arena__fork_register(arena_t *a)
{
    int err = 0;
    pthread_mutex_lock(&registry_lock);
    if (!handlers_installed) {
        err = pthread_atfork(prepare, parent, child);
        handlers_installed = err == 0;
    }
    if (err == 0) {
        a->fork_next = registry;
        registry = a;
    }
    pthread_mutex_unlock(&registry_lock);
    return err;
}

void arena__fork_unregister(arena_t *a)
{
    pthread_mutex_lock(&registry_lock);
    for (arena_t **p = &registry; *p != NULL; p = &(*p)->fork_next) {
        if (*p == a) {
            *p = a->fork_next;
            break;
        }
    }
    pthread_mutex_unlock(&registry_lock);
}
