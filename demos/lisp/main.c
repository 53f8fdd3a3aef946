/*
 * main.c -- arena-lisp: run a Scheme program, or a REPL, on a chosen collector.
 *
 *   arena-lisp [--gc=arena|semispace] [--heap SIZE] [--generational] [--stats] [FILE [ARG...]]
 *
 * With FILE, runs it (the ARGs are the list of strings *args*). Without, reads stdin: a prompting REPL on a terminal, a
 * program otherwise. --stats prints one JSON line after the program's output:
 *   {"gc":..,"program":..,"total_ms":..,"gc_pause_ms":..,"gcs":..,"peak_rss_kb":..}
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lisp.h"

/* Present when heap_arena.c is linked in. */
extern const struct heap_backend heap_arena_backend __attribute__((weak));

struct options {
    const char *gc;
    size_t heap;
    int stats, generational;
    const char *file;
    char **args; /* after FILE: the program's *args* */
    int nargs;
    int status;
};

static char *slurp(FILE *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap)
            buf = realloc(buf, cap *= 2);
    }
    *len = n;
    return buf;
}

/* Evaluate every form of src; print the values when echo. 0, or 1 on an error. */
static int run_source(const char *src, size_t len, int echo)
{
    static struct reader r; /* static: survives the longjmp unchanged */
    jmp_buf jb;
    size_t base = L.nroots;
    r = (struct reader){src, 0, len, 0};
    L.on_error = &jb;
    if (setjmp(jb)) {
        L.nroots = base;
        L.depth = 0;
        return 1;
    }
    for (;;) {
        val form = read_form(&r);
        if (form == EOF_V)
            return 0;
        val v = eval(form, NIL);
        if (echo && v != UNSPEC) {
            print_val(stdout, v, 1);
            fputc('\n', stdout);
        }
    }
}

/* Does src hold at least one complete form, or only an unfinished one? */
static int complete(const char *src, size_t len)
{
    int depth = 0, in_str = 0;
    for (size_t i = 0; i < len; i++) {
        char c = src[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == ';') {
            while (i < len && src[i] != '\n')
                i++;
        } else if (c == '(' || c == '[') {
            depth++;
        } else if (c == ')' || c == ']') {
            depth--;
        }
    }
    return depth <= 0 && !in_str;
}

static void repl(void)
{
    char line[4096];
    char *acc = NULL;
    size_t len = 0;
    for (;;) {
        fputs(len ? "... " : "> ", stdout);
        fflush(stdout);
        if (!fgets(line, sizeof line, stdin))
            break;
        size_t n = strlen(line);
        acc = realloc(acc, len + n + 1);
        memcpy(acc + len, line, n + 1);
        len += n;
        if (!complete(acc, len))
            continue;
        run_source(acc, len, 1);
        fflush(stdout);
        len = 0;
    }
    fputc('\n', stdout);
    free(acc);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Peak resident set of this program in KiB. VmHWM, not getrusage's ru_maxrss: the
 * latter keeps the parent's peak across fork + exec, so a benchmark driver's own size
 * would show up in every child it runs. */
static long peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    if (kb < 0) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        kb = ru.ru_maxrss;
    }
    return kb;
}

static void print_stats(const struct options *o, uint64_t total_ns) /* R10.4 */
{
    if (L.mid_line)
        putchar('\n'); /* the stats line must be a line of its own */
    const char *prog = o->file ? strrchr(o->file, '/') : NULL;
    prog = prog ? prog + 1 : o->file ? o->file : "stdin";
    printf("{\"gc\":\"%s\",\"program\":\"%s\",\"total_ms\":%.3f,\"gc_pause_ms\":%.3f,\"gcs\":%llu,"
           "\"peak_rss_kb\":%ld,\"generational\":%s,\"allocated_mb\":%.1f",
           L.heap->name, prog, (double)total_ns / 1e6, (double)L.gc_ns / 1e6,
           (unsigned long long)L.gcs, peak_rss_kb(), o->generational ? "true" : "false",
           (double)L.bytes_allocated / (1 << 20));
    if (L.heap->describe)
        L.heap->describe(stdout);
    printf("}\n");
}

/* *args*: the command-line words after FILE, as a list of strings. */
static void define_args(char **args, int n)
{
    GC_BEGIN;
    val list = NIL, s = NIL;
    ROOT(list);
    ROOT(s);
    for (int i = n; i-- > 0;) {
        s = make_string(args[i], strlen(args[i]));
        list = cons(s, list);
    }
    val sym = intern("*args*");
    SYM_VALUE(sym) = list;
    GC_END;
}

static void *interpreter(void *arg)
{
    struct options *o = arg;
    uint64_t t0 = now_ns();
    if (L.heap->init(o->heap, o->generational) != 0) {
        fprintf(stderr, "arena-lisp: cannot create the %s heap\n", L.heap->name);
        o->status = 2;
        return NULL;
    }
    jmp_buf jb;
    L.on_error = &jb;
    if (setjmp(jb)) {
        fprintf(stderr, "arena-lisp: the prelude failed\n");
        o->status = 2;
        return NULL;
    }
    eval_init();
    define_args(o->args, o->nargs);
    if (o->file || !isatty(0)) {
        FILE *f = o->file ? fopen(o->file, "r") : stdin;
        if (!f) {
            perror(o->file);
            o->status = 2;
            return NULL;
        }
        size_t len;
        char *src = slurp(f, &len);
        if (f != stdin)
            fclose(f);
        o->status = run_source(src, len, 0);
        free(src);
    } else {
        repl();
    }
    fflush(stdout);
    if (o->stats)
        print_stats(o, now_ns() - t0);
    L.heap->fini();
    return NULL;
}

static size_t parse_size(const char *s)
{
    char *end;
    double d = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': d *= 1024; break;
    case 'm': case 'M': d *= 1024 * 1024; break;
    case 'g': case 'G': d *= 1024.0 * 1024 * 1024; break;
    default: break;
    }
    return d > 0 ? (size_t)d : 0;
}

static void usage(void)
{
    fputs("usage: arena-lisp [--gc=arena|semispace] [--heap SIZE] [--generational] [--stats] [--tracker=sigsegv|uffd]\n"
          "                  [--gc-stress=N] [--verbose-gc] [FILE [ARG...]]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    struct options o = {.gc = NULL, .heap = 1 << 20};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strncmp(a, "--gc=", 5))
            o.gc = a + 5;
        else if (!strcmp(a, "--gc") && i + 1 < argc)
            o.gc = argv[++i];
        else if (!strncmp(a, "--heap=", 7))
            o.heap = parse_size(a + 7);
        else if (!strcmp(a, "--heap") && i + 1 < argc)
            o.heap = parse_size(argv[++i]);
        else if (!strcmp(a, "--stats"))
            o.stats = 1;
        else if (!strcmp(a, "--generational"))
            o.generational = 1;
        else if (!strcmp(a, "--verbose-gc"))
            L.verbose_gc = 1;
        else if (!strcmp(a, "--tracker=sigsegv"))
            L.tracker = 1;
        else if (!strcmp(a, "--tracker=uffd"))
            L.tracker = 2;
        else if (!strncmp(a, "--gc-stress=", 12))
            L.stress = strtoull(a + 12, NULL, 10);
        else if (a[0] == '-' && a[1])
            usage();
        else {
            o.file = a;
            o.args = argv + i + 1;
            o.nargs = argc - i - 1;
            break;
        }
    }
    if (!o.heap)
        usage();
    if (!o.gc)
        o.gc = &heap_arena_backend ? "arena" : "semispace";
    if (!strcmp(o.gc, "semispace")) {
        L.heap = &heap_semispace;
    } else if (!strcmp(o.gc, "arena")) {
        if (!&heap_arena_backend) {
            fputs("arena-lisp: this build has no arena backend\n", stderr);
            return 2;
        }
        L.heap = &heap_arena_backend;
    } else {
        usage();
    }
    if (o.generational && strcmp(o.gc, "arena") != 0) {
        fputs("arena-lisp: --generational needs --gc=arena\n", stderr);
        return 2;
    }

    /* Deep (non-tail) recursion uses the C stack: give the interpreter a big one. */
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)512 << 20);
    if (pthread_create(&th, &attr, interpreter, &o) != 0) {
        fputs("arena-lisp: cannot start the interpreter thread\n", stderr);
        return 2;
    }
    pthread_join(th, NULL);
    pthread_attr_destroy(&attr);
    return o.status;
}
