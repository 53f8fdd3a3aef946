/*
 * prog_check.h -- the failure counter and CHECK of the plain ctest programs (the ones that
 * fork, exec or use up the process's mappings, where Criterion cannot run). A failed CHECK
 * prints where and why, counts, and goes on; main returns failures ? 1 : 0.
 */
#ifndef ARENA_PROG_CHECK_H
#define ARENA_PROG_CHECK_H

#include <stdio.h>

static int failures;
#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);                        \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

#endif /* ARENA_PROG_CHECK_H */
