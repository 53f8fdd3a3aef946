/*
 * bench.h -- shared pieces of arena-bench: options, timing, JSON rows, memory probes.
 *
 * Every row prints one JSON object per line on stdout:
 *   {"bench":..,"metric":..,"value":..,"unit":..,"baseline":..,"ratio":..}
 * The baseline is always measured in the same run (never a remembered absolute
 * number), so rows stay comparable across machines; ratio = value / baseline.
 */
#ifndef ARENA_BENCH_H
#define ARENA_BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "bench_have.h"

struct bench_opts {
    const char *only;   /* run only this row (NULL = all) */
    size_t heap;        /* heap size the rows build (compact, fork); default 256 MiB */
    bool quick;         /* small sizes: the ctest smoke run */
    int repeat;         /* repetitions; figures are medians */
    const char *self;   /* directory of the arena-bench executable (for arena-lisp) */
};

/* One row as printed and as kept for --summary / --svg. NAN prints as null. */
struct bench_rec {
    char bench[64], metric[64], unit[16], note[256];
    double value, baseline, ratio;
    double target;   /* ratio <= target is the goal; NAN: the row has no target */
    double fault_ns; /* this machine's minor-fault cost, measured once per run */
};

/* One measured figure. NAN value or baseline prints as null. Every row carries the
 * target (and whether it is met) when it has one, and bench_fault_ns. */
void bench_row(const char *bench, const char *metric, double value, const char *unit,
               double baseline);
/* The same with a note (NULL: none). */
void bench_row_note(const char *bench, const char *metric, double value, const char *unit,
                    double baseline, const char *note);
/* A row carrying a note: value null, used when a row is skipped or a figure is unavailable. */
void bench_note(const char *bench, const char *metric, const char *note);
/* The target ratio of a row (issue 11 and the README), or NAN. */
double bench_target(const char *bench, const char *metric);
/* Where rows go: stdout (unless to_stdout is false) and a copy to `copy` (may be NULL). */
void bench_output(bool to_stdout, FILE *copy);
/* Keep a row for the summary without printing it (rows read back with --from). */
void bench_record(const struct bench_rec *r);
/* Every row printed or recorded so far. */
const struct bench_rec *bench_records(size_t *n);
/* Minor-fault cost in ns: first write to a page of a fallocated memfd (median of 5 passes
 * over `pages` pages); NAN when the memfd or mapping fails. */
double bench_measure_fault(size_t pages);
extern double bench_fault_ns;
/* Fields of one of our own JSON lines (flat objects): a number (NAN for null or missing),
 * a string (false when missing). */
double bench_json_number(const char *line, const char *key);
bool bench_json_string(const char *line, const char *key, char *out, size_t outlen);
/* --summary and --svg, from the rows kept. quick: say the sizes are not the README's. */
void bench_summary(FILE *f, bool quick);
int bench_svg(const char *path, bool quick);

/* Progress for a human: printed to stderr only when stderr is a TTY. */
void bench_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

uint64_t bench_now_ns(void);
double bench_median(double *v, int n);
/* A fast deterministic generator (splitmix64). */
uint64_t bench_rand(uint64_t *state);

/* Bytes of [addr, addr+len) resident in memory (mincore; unmapped holes count 0). */
size_t bench_resident(const void *addr, size_t len);
/* Bytes resident in the heap view of a (mincore over the view). */
size_t bench_heap_resident(arena_t *a);
/* Number of mappings of this process (/proc/self/maps lines). */
size_t bench_vmas(void);

/* Rows. Each prints its own lines and returns 0 (a failure is also reported as a row). */
int bench_compact(const struct bench_opts *o);
int bench_alloc(const struct bench_opts *o);
int bench_release(const struct bench_opts *o);
int bench_track(const struct bench_opts *o);
int bench_fork(const struct bench_opts *o);
int bench_runtime(const struct bench_opts *o);
int bench_peer(const struct bench_opts *o);
int bench_mesh(const struct bench_opts *o);

/* Returns have; when false, prints a note row for bench saying `what` is missing. */
bool bench_need(const char *bench, const char *what, bool have);
/* Create an arena for a row (reserve 0 = default); on failure prints a note row. */
arena_t *bench_arena(const char *bench, size_t reserve, int tracker);
/* Whether the heap entry points (create, alloc, mark, collect, forward, views) exist. */
bool bench_have_heap(void);
#endif
