/*
 * wx.c -- arena-wx: W^X code generation through two views of the same file pages.
 *
 * .req.runtime.wx. A JIT wants to write machine code and then run it, without ever having a page
 * that is writable and executable at once. With the arena, the code lives in file
 * pages reserved with arena_file_alloc and is shown twice: a READ|WRITE view where
 * the generator writes, and a READ|EXEC view where the CPU runs it. A write through
 * one view is visible through the other at once (same file page), so no mprotect
 * flip is needed between generating and running, and nothing is ever W+X.
 *
 * The demo generates x86-64 code for sum(i * k + c, i < n) with k and c chosen at
 * run time, runs it through the executable view, checks it against C, then
 * regenerates the code with other constants in place and runs it again. It also
 * checks that the arena refuses a WRITE|EXEC view and that no mapping of the process
 * is both writable and executable. On other architectures it says so and exits 0.
 */
#include "common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"

static void usage(FILE *f)
{
    fputs("usage: arena-wx\n"
          "The JIT double mapping: x86-64 code written through a read-write view and run through a\n"
          "read-execute view of the same file pages, rewritten in place three times; checks that a\n"
          "write+execute view is refused and that no mapping is ever writable and executable.\n"
          "Takes no options. Exit status: 0 ok (or skipped on another architecture), 1 a check\n"
          "failed, 64 a bad command line.\n", f);
}

#if defined(__x86_64__)

struct emitter {
    uint8_t *code;
    size_t len;
};

static void emit(struct emitter *e, const uint8_t *bytes, size_t n)
{
    memcpy(e->code + e->len, bytes, n);
    e->len += n;
}

static void emit_imm32(struct emitter *e, int32_t v)
{
    memcpy(e->code + e->len, &v, 4);
    e->len += 4;
}

/* long f(long n) { long s = 0; for (long i = 0; i < n; i++) s += i * k + c; return s; }
 * System V: n in rdi, result in rax. */
static size_t generate(uint8_t *code, int32_t k, int32_t c)
{
    struct emitter e = {code, 0};
    emit(&e, (const uint8_t[]){0x31, 0xc0}, 2);       /* xor eax, eax      */
    emit(&e, (const uint8_t[]){0x31, 0xc9}, 2);       /* xor ecx, ecx      */
    emit(&e, (const uint8_t[]){0x48, 0x85, 0xff}, 3); /* test rdi, rdi     */
    size_t jle_at = e.len;
    emit(&e, (const uint8_t[]){0x7e, 0x00}, 2);       /* jle done          */
    size_t loop = e.len;
    emit(&e, (const uint8_t[]){0x48, 0x69, 0xd1}, 3); /* imul rdx, rcx, k  */
    emit_imm32(&e, k);
    emit(&e, (const uint8_t[]){0x48, 0x81, 0xc2}, 3); /* add rdx, c        */
    emit_imm32(&e, c);
    emit(&e, (const uint8_t[]){0x48, 0x01, 0xd0}, 3); /* add rax, rdx      */
    emit(&e, (const uint8_t[]){0x48, 0xff, 0xc1}, 3); /* inc rcx           */
    emit(&e, (const uint8_t[]){0x48, 0x39, 0xf9}, 3); /* cmp rcx, rdi      */
    emit(&e, (const uint8_t[]){0x7c, 0x00}, 2);       /* jl loop           */
    code[e.len - 1] = (uint8_t)(int8_t)((long)loop - (long)e.len);
    size_t done = e.len;
    code[jle_at + 1] = (uint8_t)(done - (jle_at + 2));
    emit(&e, (const uint8_t[]){0xc3}, 1);             /* done: ret         */
    return e.len;
}

static long reference(long n, long k, long c)
{
    long s = 0;
    for (long i = 0; i < n; i++)
        s += i * k + c;
    return s;
}

/* Is any mapping inside [lo, hi) both writable and executable? */
static int wx_mapping_in(const void *lo, const void *hi)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return 0;
    char line[512];
    int bad = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long start, end;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3)
            continue;
        if (start < (uintptr_t)hi && end > (uintptr_t)lo && perms[1] == 'w' && perms[2] == 'x')
            bad = 1;
    }
    fclose(f);
    return bad;
}

static int check(int err, const char *what)
{
    if (err)
        fprintf(stderr, "arena-wx: %s: %s\n", what, arena_strerror(err));
    return err;
}

/* A view showing file pages first.. at its slots 0..: LINEAR when they start at file
 * page 0 (LINEAR always starts there), else an empty view mapped by hand. */
static int open_code_view(arena_t *a, size_t first, size_t npages, int prot, arena_view_t **v,
                          uint8_t **base)
{
    int err;
    if (first == 0) {
        err = arena_view_open(a, ARENA_VIEW_LINEAR, npages, prot, 0, v);
    } else {
        err = arena_view_open(a, ARENA_VIEW_EMPTY, npages, prot, 0, v);
        if (!err && (err = arena_view_map(*v, 0, first, npages)) != 0)
            arena_view_close(*v);
    }
    if (!err)
        *base = arena_view_base(*v);
    return err;
}

int main(int argc, char **argv)
{
    demo_help_args(argc, argv, usage);
    arena_t *a;
    if (check(arena_create(&a, NULL), "arena_create"))
        return 1;
    size_t first, npages = 1;
    arena_view_t *rw = NULL, *rx = NULL, *wx = NULL;
    uint8_t *wbase = NULL, *xbase = NULL;
    int failed = check(arena_file_alloc(a, npages, &first), "arena_file_alloc") ||
                 check(open_code_view(a, first, npages, ARENA_PROT_READ | ARENA_PROT_WRITE, &rw, &wbase),
                       "open the read-write view") ||
                 check(open_code_view(a, first, npages, ARENA_PROT_READ | ARENA_PROT_EXEC, &rx, &xbase),
                       "open the read-execute view");
    if (failed) {
        arena_destroy(a);
        return 1;
    }
    printf("file page %zu shown read-write at %p and read-execute at %p\n", first, (void *)wbase,
           (void *)xbase);

    int err = arena_view_open(a, ARENA_VIEW_LINEAR, npages, ARENA_PROT_WRITE | ARENA_PROT_EXEC, 0, &wx);
    printf("a write+execute view is refused: %s\n", err == ARENA_EPROT ? "yes" : "NO");
    if (err != ARENA_EPROT) {
        failed = 1;
        if (!err)
            arena_view_close(wx);
    }

    const int32_t consts[][2] = {{3, 7}, {-5, 1000}, {12345, -42}};
    for (size_t round = 0; round < sizeof consts / sizeof *consts; round++) {
        int32_t k = consts[round][0], c = consts[round][1];
        /* Rewrite the code in place through the writable view; the executable view
         * shows the same file page (x86 keeps instruction fetch coherent with it). */
        size_t len = generate(wbase, k, c);
        long (*fn)(long) = (long (*)(long))(void *)xbase;
        for (long n = 0; n <= 1000; n += 250) {
            long got = fn(n), want = reference(n, k, c);
            if (got != want) {
                printf("k=%d c=%d n=%ld: generated code returned %ld, expected %ld\n", k, c, n, got, want);
                failed = 1;
            }
        }
        printf("round %zu: %zu bytes of code for sum(i*%d %+d), f(1000) = %ld: %s\n", round, len, k, c,
               fn(1000), fn(1000) == reference(1000, k, c) ? "ok" : "WRONG");
    }

    size_t page = arena_page_size(a);
    int wx_rw = wx_mapping_in(wbase, wbase + npages * page);
    int wx_rx = wx_mapping_in(xbase, xbase + npages * page);
    printf("no mapping of either view is writable and executable: %s\n", !wx_rw && !wx_rx ? "yes" : "NO");
    failed |= wx_rw || wx_rx;

    arena_view_close(rx);
    arena_view_close(rw);
    check(arena_file_free(a, first, npages), "arena_file_free");
    arena_destroy(a);
    printf("%s\n", failed ? "FAILED" : "ok");
    return failed;
}

#else

int main(int argc, char **argv)
{
    demo_help_args(argc, argv, usage);
    printf("arena-wx generates x86-64 code: skipped on this architecture\n");
    return 0;
}

#endif
