/*
 * bench_peer.c -- the arena against the collector a C runtime would otherwise pick:
 * GCBench and binary-trees (arena-peer, built next to arena-bench) on the arena, on
 * Boehm GC and on malloc with explicit frees. Each run is its own child process
 * (fork + exec), so its peak RSS (the child's VmHWM: ru_maxrss would keep arena-bench's
 * own peak across the exec) and its system time (ru_stime from wait4) belong to that one
 * collector. The check sums of all collectors must agree, or no figure counts.
 *
 * Rows peer.<program> / total_time, gc_time, max_pause, peak_rss, system_time: the arena
 * with its one-pass interface (object format, arena_trace_collect) against Boehm GC; the
 * same metrics with the suffix _vs_malloc: against malloc/free; with the suffix
 * _mark_forward: the arena through arena_mark / arena_collect / arena_forward against
 * Boehm GC.
 * Rows peer.conservative: arena-conservative on the arena (its stack scanned
 * conservatively) against the same program on Boehm GC, for its default pattern (shift)
 * and, with the suffix _uniform, for --pattern uniform.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

enum { F_TOTAL, F_GC, F_PAUSE, F_RSS, F_SYS, F_COLL, F_N };
static const char *const metrics[F_N] = {"total_time", "gc_time",     "max_pause",
                                         "peak_rss",   "system_time", "collections"};
static const char *const units[F_N] = {"ms", "ms", "ms", "KiB", "ms", "collections"};

enum { V_ARENA, V_BOEHM, V_MALLOC, V_MARK, V_N };
static const char *const variants[V_N] = {"arena", "boehm", "malloc", "arena-mark"};

/* Run argv with stdout into out; *ru gets the child's usage. Returns the exit status,
 * or -1 when it could not run or was killed. */
static int spawn(char *const argv[], char *out, size_t outlen, struct rusage *ru)
{
    int fd[2];
    if (pipe2(fd, O_CLOEXEC))
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t k;
    while ((k = read(fd[0], out + n, outlen - 1 - n)) > 0 || (k < 0 && errno == EINTR))
        if (k > 0 && (n += (size_t)k) == outlen - 1)
            break;
    out[n] = 0;
    close(fd[0]);
    int status;
    while (wait4(pid, &status, 0, ru) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* One run of one variant: f[] filled, sum = its checksum. 0, 77 (not built) or -1. */
static int run_one(const struct bench_opts *o, const char *peer, const char *program, int v,
                   double f[F_N], char *sum, size_t sumlen, char *why, size_t whylen)
{
    char *argv[] = {(char *)peer, "--program", (char *)program, "--gc", (char *)variants[v],
                    o->quick ? "--quick" : NULL, NULL};
    char out[4096];
    struct rusage ru;
    int rc = spawn(argv, out, sizeof out, &ru);
    if (rc == 77)
        return 77;
    f[F_TOTAL] = bench_json_number(out, "total_ms");
    f[F_GC] = bench_json_number(out, "gc_ms");
    f[F_PAUSE] = bench_json_number(out, "max_pause_ms");
    f[F_COLL] = bench_json_number(out, "collections");
    f[F_RSS] = bench_json_number(out, "peak_rss_kb");
    f[F_SYS] = (double)ru.ru_stime.tv_sec * 1e3 + (double)ru.ru_stime.tv_usec / 1e3;
    if (rc != 0 || isnan(f[F_TOTAL]) || !bench_json_string(out, "checksum", sum, sumlen)) {
        snprintf(why, whylen, "arena-peer --program %s --gc %s %s", program, variants[v],
                 rc == 1 ? "failed its own verification (exit 1)"
                 : rc    ? "did not exit normally"
                         : "printed no stats line");
        return -1;
    }
    return 0;
}

static void one_program(const struct bench_opts *o, const char *peer, const char *program)
{
    char bench[64], why[512] = "", sums[V_N][32] = {{0}}, metric[64];
    snprintf(bench, sizeof bench, "peer.%s", program);
    size_t reps = (size_t)o->repeat;
    double *v = malloc(V_N * F_N * reps * sizeof *v); /* v[(variant * F_N + figure) * reps + r] */
    bool missing[V_N] = {false};
    for (size_t r = 0; r < reps; r++) {
        for (int k = 0; k < V_N; k++) {
            /* Alternate the order so no collector always runs right after another. */
            int var = r % 2 ? V_N - 1 - k : k;
            if (missing[var])
                continue;
            bench_progress("%s %s %zu/%zu", bench, variants[var], r + 1, reps);
            double f[F_N];
            char sum[32];
            int rc = run_one(o, peer, program, var, f, sum, sizeof sum, why, sizeof why);
            if (rc == 77 && var == V_BOEHM) {
                missing[var] = true;
                continue;
            }
            if (rc) {
                bench_note(bench, "failed", why);
                free(v);
                return;
            }
            if (!sums[var][0])
                memcpy(sums[var], sum, sizeof sum);
            for (int m = 0; m < F_N; m++)
                v[((size_t)var * F_N + (size_t)m) * reps + r] = f[m];
        }
    }
    for (int k = 1; k < V_N; k++) {
        if (!missing[k] && strcmp(sums[k], sums[V_ARENA])) {
            snprintf(why, sizeof why, "check sums differ: arena %s, %s %s", sums[V_ARENA],
                     variants[k], sums[k]);
            bench_note(bench, "failed", why);
            free(v);
            return;
        }
    }
    for (int m = 0; m < F_N; m++) {
        double arena = bench_median(v + (size_t)m * reps, (int)reps);
        if (missing[V_BOEHM])
            bench_note(bench, metrics[m],
                       "Boehm GC is not installed: CMake found no libgc (pkg-config bdw-gc), "
                       "install libgc-dev");
        else
            bench_row(bench, metrics[m], arena, units[m],
                      bench_median(v + ((size_t)V_BOEHM * F_N + (size_t)m) * reps, (int)reps));
        if (m != F_COLL) { /* malloc has no collections, only frees */
            snprintf(metric, sizeof metric, "%s_vs_malloc", metrics[m]);
            bench_row(bench, metric, arena, units[m],
                      bench_median(v + ((size_t)V_MALLOC * F_N + (size_t)m) * reps, (int)reps));
        }
    }
    for (int m = 0; m < F_N && !missing[V_BOEHM]; m++) {
        snprintf(metric, sizeof metric, "%s_mark_forward", metrics[m]);
        bench_row(bench, metric, bench_median(v + ((size_t)V_MARK * F_N + (size_t)m) * reps, (int)reps),
                  units[m], bench_median(v + ((size_t)V_BOEHM * F_N + (size_t)m) * reps, (int)reps));
    }
    free(v);
}

/* ------------------------------------------------------------ conservative -- */

/* peer.conservative: arena-conservative (roots only in C locals, the stack scanned
 * conservatively) on the arena against the same program on Boehm GC (default-configured:
 * GC_INIT, GC_MALLOC, GC_gcollect where the arena collects), one process each, the check
 * sums compared. The arena runs with the demo's --json defaults (the library's default
 * meshing). Rows peak_rss, total_time, heap_peak (the heap at its largest: the backing
 * file's blocks / GC_get_heap_size), heap_resident (after the last collection) for the
 * demo's default pattern (shift: node sizes change from round to round, survivors live
 * several rounds), and peak_rss_uniform, total_time_uniform for --pattern uniform (one
 * size mix, the pattern of earlier versions, whose peak is its live data). */
enum { C_RSS, C_TOTAL, C_HEAP_PEAK, C_RESIDENT, C_N };
static const char *const c_keys[C_N] = {"peak_rss_kb", "total_ms", "heap_peak_bytes", "heap_resident_bytes"};
static const char *const c_metrics[C_N] = {"peak_rss", "total_time", "heap_peak", "heap_resident"};
static const char *const c_units[C_N] = {"KiB", "ms", "bytes", "bytes"};

static int conservative_one(const struct bench_opts *o, const char *prog, const char *pattern, int v,
                            double f[C_N], char *sum, size_t sumlen)
{
    char *argv[] = {(char *)prog, "--json", "--pattern", (char *)pattern, "--gc", (char *)variants[v],
                    o->quick ? "--quick" : NULL, NULL};
    char out[4096];
    struct rusage ru;
    int rc = spawn(argv, out, sizeof out, &ru);
    if (rc == 77)
        return 77;
    for (int k = 0; k < C_N; k++)
        f[k] = bench_json_number(out, c_keys[k]);
    return rc == 0 && !isnan(f[C_RSS]) && bench_json_string(out, "checksum", sum, sumlen) ? 0 : -1;
}

/* One pattern: the rows of the metrics in rows[] (count n), named with suffix appended. */
static void conservative_pattern(const struct bench_opts *o, const char *prog, const char *pattern,
                                 const char *suffix, const int *rows, int n)
{
    const char *bench = "peer.conservative";
    char sums[2][32] = {"", ""}, metric[64], why[128];
    size_t reps = (size_t)o->repeat;
    double *v = malloc(2 * C_N * reps * sizeof *v); /* v[(variant * C_N + figure) * reps + r] */
    bool boehm = true;
    for (size_t r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            int var = r % 2 ? 1 - k : k; /* V_ARENA or V_BOEHM, alternating which runs first */
            if (var == V_BOEHM && !boehm)
                continue;
            bench_progress("%s %s %s %zu/%zu", bench, pattern, variants[var], r + 1, reps);
            double f[C_N];
            char sum[32];
            int rc = conservative_one(o, prog, pattern, var, f, sum, sizeof sum);
            if (rc == 77 && var == V_BOEHM) {
                boehm = false;
                continue;
            }
            if (rc != 0) {
                snprintf(why, sizeof why, "arena-conservative --pattern %s --gc %s failed its verification", pattern,
                         variants[var]);
                bench_note(bench, "failed", why);
                free(v);
                return;
            }
            memcpy(sums[var], sum, sizeof sum);
            for (int m = 0; m < C_N; m++)
                v[((size_t)var * C_N + (size_t)m) * reps + r] = f[m];
        }
    }
    if (boehm && strcmp(sums[V_ARENA], sums[V_BOEHM])) {
        snprintf(why, sizeof why, "check sums of the arena and Boehm GC runs differ (--pattern %s)", pattern);
        bench_note(bench, "failed", why);
        free(v);
        return;
    }
    for (int i = 0; i < n; i++) {
        int m = rows[i];
        snprintf(metric, sizeof metric, "%s%s", c_metrics[m], suffix);
        if (!boehm) {
            bench_note(bench, metric, "Boehm GC is not in this build (libgc-dev, pkg-config bdw-gc)");
            continue;
        }
        bench_row(bench, metric, bench_median(v + (size_t)m * reps, (int)reps), c_units[m],
                  bench_median(v + ((size_t)V_BOEHM * C_N + (size_t)m) * reps, (int)reps));
    }
    free(v);
}

static void conservative(const struct bench_opts *o)
{
    char prog[4096];
    snprintf(prog, sizeof prog, "%s/arena-conservative", o->self);
    if (access(prog, X_OK)) {
        bench_note("peer.conservative", "peak_rss", "arena-conservative is not built next to arena-bench");
        return;
    }
    static const int all[] = {C_RSS, C_TOTAL, C_HEAP_PEAK, C_RESIDENT}, uniform[] = {C_RSS, C_TOTAL};
    conservative_pattern(o, prog, "shift", "", all, 4);
    conservative_pattern(o, prog, "uniform", "_uniform", uniform, 2);
}

int bench_peer(const struct bench_opts *o)
{
    conservative(o);
    char peer[4096];
    snprintf(peer, sizeof peer, "%s/arena-peer", o->self);
    if (access(peer, X_OK)) {
        bench_note("peer", "skipped", "arena-peer is not built next to arena-bench");
        return 0;
    }
    one_program(o, peer, "gcbench");
    one_program(o, peer, "binary-trees");
    return 0;
}
