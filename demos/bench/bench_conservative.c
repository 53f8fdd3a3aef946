/*
 * bench_conservative.c -- row peer.conservative: arena-conservative (built next to
 * arena-bench: roots only in C locals, the stack scanned conservatively) on the arena
 * against the same program on Boehm GC. Each run is its own child process, so its peak
 * RSS (the child's own VmHWM, printed by it: a fresh exec starts a fresh peak) belongs to
 * that collector alone. The check sums of both runs must agree, or no figure counts.
 *
 * Rows peer.conservative / peak_rss, total_time, heap_resident (value arena, baseline Boehm).
 */
#include "bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { F_RSS, F_TOTAL, F_RESIDENT, F_N };
static const char *const keys[F_N] = {"peak_rss_kb", "total_ms", "heap_resident_bytes"};
static const char *const metrics[F_N] = {"peak_rss", "total_time", "heap_resident"};
static const char *const units[F_N] = {"KiB", "ms", "bytes"};

static double number_after(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(line, pat);
    if (!p)
        return NAN;
    char *end;
    double v = strtod(p + strlen(pat), &end);
    return end == p + strlen(pat) ? NAN : v;
}

/* One run: f[] and the checksum from its JSON line. 0, 77 (no Boehm in this build), -1. */
static int run_one(const char *prog, const char *gc, bool quick, double f[F_N], char sum[32])
{
    char cmd[4352];
    snprintf(cmd, sizeof cmd, "'%s' --json --gc %s%s 2>/dev/null", prog, gc, quick ? " --quick" : "");
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[1024];
    bool found = false;
    while (fgets(line, sizeof line, p)) {
        const char *c = strstr(line, "\"checksum\":\"");
        if (line[0] != '{' || !c)
            continue;
        for (int k = 0; k < F_N; k++)
            f[k] = number_after(line, keys[k]);
        snprintf(sum, 32, "%.16s", c + 12);
        found = true;
    }
    int status = pclose(p);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
        return 77;
    return found && status == 0 ? 0 : -1;
}

int bench_conservative(const struct bench_opts *o)
{
    const char *bench = "peer.conservative";
    char prog[4096];
    snprintf(prog, sizeof prog, "%s/arena-conservative", o->self);
    if (access(prog, X_OK)) {
        bench_note(bench, "peak_rss", "arena-conservative is not built next to arena-bench");
        return 0;
    }
    int reps = o->repeat;
    double *v = malloc(2 * F_N * (size_t)reps * sizeof *v); /* v[(gc * F_N + f) * reps + r] */
    char sums[2][32] = {"", ""};
    static const char *const gcs[2] = {"arena", "boehm"};
    bool boehm = true;
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < 2; k++) {
            int g = r % 2 ? 1 - k : k; /* alternate which collector runs first */
            if (g == 1 && !boehm)
                continue;
            double f[F_N];
            char sum[32];
            int rc = run_one(prog, gcs[g], o->quick, f, sum);
            if (rc == 77 && g == 1) {
                boehm = false;
                continue;
            }
            if (rc != 0) {
                char why[256];
                snprintf(why, sizeof why, "arena-conservative --gc %s failed or printed no figures", gcs[g]);
                bench_note(bench, "peak_rss", why);
                free(v);
                return 0;
            }
            memcpy(sums[g], sum, sizeof sum);
            for (int m = 0; m < F_N; m++)
                v[((size_t)g * F_N + (size_t)m) * (size_t)reps + (size_t)r] = f[m];
        }
    }
    if (boehm && strcmp(sums[0], sums[1])) {
        bench_note(bench, "peak_rss", "check sums of the arena and Boehm GC runs differ");
        free(v);
        return 0;
    }
    for (int m = 0; m < F_N; m++) {
        double arena = bench_median(v + (size_t)m * (size_t)reps, reps);
        if (!boehm) {
            bench_note(bench, metrics[m], "Boehm GC is not in this build (libgc-dev, pkg-config bdw-gc)");
            continue;
        }
        bench_row(bench, metrics[m], arena, units[m], bench_median(v + (size_t)(F_N + m) * (size_t)reps, reps));
    }
    free(v);
    return 0;
}
