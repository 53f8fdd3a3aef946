/*
 * peer.h -- arena-peer: two classic collector benchmarks (GCBench, binary-trees) run on
 * the arena, on Boehm GC and on malloc/free, so arena-bench can compare them program for
 * program. Each collector is one file that includes programs.h, the benchmarks written
 * once against a few macros (allocate, declare roots, drop a tree).
 */
#ifndef ARENA_PEER_H
#define ARENA_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sizes of one run. GCBench: Ellis, Kovac and Boehm's GCBench.c (stretch tree, long-lived
 * tree and array, then trees of min..max depth built top-down and bottom-up).
 * binary-trees: the Computer Language Benchmarks Game program (min depth 4). */
struct peer_params {
    int stretch_depth, long_lived_depth, min_depth, max_depth;
    size_t array_size;     /* GCBench's long-lived array of doubles */
    size_t min_heap;       /* arena: bytes allocated before the first collection */
    unsigned grow_percent; /* arena: collect after allocating this % of the live bytes */
    size_t nursery;        /* arena (one pass): young collections this many bytes apart, 0 = none */
    bool track_pages;      /* arena (one pass): the remembered set by page tracking, not cards */
    bool log;              /* arena (one pass): one line per collection on stderr */
};

struct peer_result {
    uint64_t checksum;     /* same for every collector, or a collector lost something */
    uint64_t gc_ns;        /* time in collections (malloc: in free of dropped trees) */
    uint64_t max_pause_ns; /* the longest of them */
    uint64_t collections;
    uint64_t young;        /* of them, young collections (arena with a nursery) */
};

/* One program on one collector. Returns 0, or 1 after printing why (verification). */
typedef int peer_run_fn(const char *program, const struct peer_params *p, struct peer_result *r);
peer_run_fn peer_run_arena, peer_run_arena_mark, peer_run_boehm, peer_run_malloc;
/* Whether this build has Boehm GC (peer_run_boehm returns 77 otherwise). */
extern const bool peer_have_boehm;

uint64_t peer_now_ns(void);
uint64_t peer_cpu_ns(void); /* this thread's CPU time */
/* Print "arena-peer: ..." to stderr and exit 1: a verification failure. */
_Noreturn void peer_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
