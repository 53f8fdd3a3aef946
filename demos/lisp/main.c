/*
 * main.c -- arena-lisp: run a Scheme program, or a REPL, on a chosen collector.
 *
 *   arena-lisp [--gc=arena|semispace] [--heap SIZE] [--generational [--barrier cards|pages]]
 *              [--stats] [FILE [ARG...]]
 *
 * With FILE, runs it as a program (the ARGs are the list of strings *args*; the first
 * error ends it). Without, a REPL session on stdin, with prompts on a terminal and
 * without them on a pipe: each value is printed, each error reported and skipped. --stats prints one JSON line after the program's output:
 *   {"gc":..,"program":..,"total_ms":..,"gc_pause_ms":..,"gcs":..,"peak_rss_kb":..}
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "lisp.h"

#define EXIT_USAGE 64 /* a bad command line, as for every arena program */

/* Present when heap_arena.c is linked in. */
extern const struct heap_backend heap_arena_backend __attribute__((weak));

struct options {
    const char *gc;
    size_t heap;
    int stats, generational, barrier, tracker;
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
        if (n == cap) {
            char *b = realloc(buf, cap *= 2);
            if (!b)
                free(buf);
            buf = b;
        }
    }
    *len = n;
    return buf;
}

/* How run_forms treats a failing form. */
enum on_error { STOP, GO_ON };

/* Evaluate the forms of src[0, len) in order; print each value when echo. Returns how
 * many bytes were used up: all of them, or less when the text ends inside a form
 * (*incomplete is then set and the rest awaits more input). *failed is set when a
 * form fails; then STOP ends there, GO_ON carries on after the failing form. */
static size_t run_forms(const char *src, size_t len, int echo, enum on_error mode, int *incomplete, int *failed)
{
    /* static: survive the longjmp unchanged */
    static struct reader r;
    static size_t used;
    static int reading;
    jmp_buf jb;
    size_t base = L.nroots;
    r = (struct reader){src, 0, len, 0, 0};
    used = 0;
    *incomplete = 0;
    L.on_error = &jb;
    if (setjmp(jb)) {
        roots_restore(base);
        L.depth = 0;
        L.who = NULL;
        if (r.incomplete) {
            *incomplete = 1;
            return used;
        }
        *failed = 1;
        /* After a syntax error inside a list the next form's start is unknown: the
         * rest of the text is dropped. At top level (a stray ')') it is known. */
        if (mode == STOP || (reading && r.depth > 0))
            return len;
        if (reading)
            used = r.pos;
    }
    for (;;) {
        r.pos = used;
        r.depth = 0;
        reading = 1;
        val form = read_form(&r);
        reading = 0;
        if (form == EOF_V)
            return len;
        used = r.pos;
        val v = eval(form, NIL);
        if (echo && v != UNSPEC) {
            if (L.mid_line)
                putchar('\n');
            if (print_val(stdout, v, 1) != 0)
                fputs("#<too deeply nested to print>", stdout);
            putchar('\n');
            L.mid_line = 0;
        }
    }
}

/* Where the text read so far stands: inside a string, a comment, a character literal,
 * and how many lists are open. Fed one chunk at a time, so a long input is scanned
 * once; it only says when the reader is worth trying. */
struct scan {
    enum { CODE, COMMENT, STRING, STRING_ESC, HASH, CHAR } mode;
    long depth;
};

static void scan_text(struct scan *s, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        switch (s->mode) {
        case COMMENT:
            if (c == '\n')
                s->mode = CODE;
            break;
        case STRING: s->mode = c == '\\' ? STRING_ESC : c == '"' ? CODE : STRING; break;
        case STRING_ESC: s->mode = STRING; break;
        case CHAR: s->mode = CODE; break;
        case HASH:
            s->mode = CODE;
            if (c == '\\') {
                s->mode = CHAR;
                break;
            }
            /* #( opens a vector */
            /* fall through */
        case CODE:
            if (c == ';')
                s->mode = COMMENT;
            else if (c == '"')
                s->mode = STRING;
            else if (c == '#')
                s->mode = HASH;
            else if (c == '(' || c == '[')
                s->depth++;
            else if (c == ')' || c == ']')
                s->depth--;
            break;
        }
    }
}

static int blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)p[i]))
            return 0;
    return 1;
}

/* A REPL session on f: each complete form is evaluated as soon as its line is in,
 * its value printed; an error is reported and the session goes on with the next form.
 * Prompts when interactive. Returns 0, or 1 when any form failed. */
static int session(FILE *f, int interactive)
{
    char *acc = NULL, *line = NULL;
    size_t len = 0, cap = 0, line_cap = 0;
    struct scan sc = {CODE, 0};
    int failed = 0, incomplete = 0;
    ssize_t n;
    for (;;) {
        if (interactive) {
            fputs(len ? "... " : "> ", stdout);
            fflush(stdout);
        }
        if ((n = getline(&line, &line_cap, f)) < 0)
            break;
        if (len + (size_t)n > cap) {
            size_t c = 2 * (len + (size_t)n);
            char *a = realloc(acc, c);
            if (!a) {
                fputs("error: out of memory for the input\n", stderr);
                failed = 1;
                len = 0;
                continue;
            }
            acc = a;
            cap = c;
        }
        memcpy(acc + len, line, (size_t)n);
        len += (size_t)n;
        scan_text(&sc, line, (size_t)n);
        if (sc.depth > 0 || sc.mode == STRING || sc.mode == STRING_ESC)
            continue;
        size_t used = run_forms(acc, len, 1, GO_ON, &incomplete, &failed);
        fflush(stdout);
        memmove(acc, acc + used, len - used);
        len -= used;
        sc = (struct scan){CODE, 0};
        scan_text(&sc, acc, len);
    }
    if (len && !blank(acc, len)) {
        run_forms(acc, len, 1, GO_ON, &incomplete, &failed);
        if (incomplete) {
            fputs("error: unexpected end of input\n", stderr);
            failed = 1;
        }
    }
    if (interactive)
        fputc('\n', stdout);
    free(acc);
    free(line);
    return failed;
}

/* A program: every form in order, the first error ends it. 0, or 1 on an error. */
static int run_program(const char *src, size_t len)
{
    int incomplete = 0, failed = 0;
    run_forms(src, len, 0, STOP, &incomplete, &failed);
    if (incomplete) {
        fputs("error: unexpected end of input\n", stderr);
        failed = 1;
    }
    return failed;
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

static void print_stats(const struct options *o, uint64_t total_ns) /* .req.runtime.stats-json */
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
    set_field(sym, &SYM_VALUE(sym), list);
    GC_END;
}

static void *interpreter(void *arg)
{
    struct options *o = arg;
    uint64_t t0 = now_ns();
    if (L.heap->init(o->heap, o->generational) != 0) {
        fprintf(stderr, "arena-lisp: cannot create the %s heap\n", L.heap->name);
        o->status = 1;
        return NULL;
    }
    jmp_buf jb;
    L.on_error = &jb;
    if (setjmp(jb)) {
        fprintf(stderr, "arena-lisp: the prelude failed\n");
        o->status = 1;
        return NULL;
    }
    eval_init();
    define_args(o->args, o->nargs);
    if (o->file) {
        FILE *f = fopen(o->file, "r");
        size_t len;
        char *src = f ? slurp(f, &len) : NULL;
        if (!src) {
            fprintf(stderr, "arena-lisp: %s: %s\n", o->file, strerror(errno));
            o->status = 1;
        } else {
            o->status = run_program(src, len);
        }
        if (f)
            fclose(f);
        free(src);
    } else {
        o->status = session(stdin, isatty(0));
    }
    fflush(stdout);
    if (o->stats)
        print_stats(o, now_ns() - t0);
    L.heap->fini();
    return NULL;
}

/* "1048576", "256k", "64M", "1g" -> bytes; 0 for anything else. */
static size_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (end == s || errno)
        return 0;
    switch (*end) {
    case 'k': case 'K': d *= 1024; end++; break;
    case 'm': case 'M': d *= 1024 * 1024; end++; break;
    case 'g': case 'G': d *= 1024.0 * 1024 * 1024; end++; break;
    default: break;
    }
    return *end == 0 && d >= 1 && d < 0x1p62 ? (size_t)d : 0;
}

static void usage(FILE *out)
{
    fputs("usage: arena-lisp [OPTION...] [FILE [ARG...]]\n"
          "Run the Scheme program FILE (ARGs are the list *args*); the first error ends it\n"
          "with status 1. Without FILE, a REPL session on stdin, prompting on a terminal:\n"
          "each form's value is printed, an error is reported and the session goes on;\n"
          "the status is 1 if any form failed.\n"
          "  --gc=arena|semispace  the collector (default arena when built in)\n"
          "  --heap SIZE           first semispace, or bytes allocated between collections\n"
          "                        (suffix k, m, g; default 1m); --generational: the\n"
          "                        nursery is twice that, what a semispace's two spaces hold\n"
          "  --generational        nursery (young) collections between full ones\n"
          "  --barrier=cards|pages the write barrier of --generational: cards (default), the\n"
          "                        interpreter's stores remember the old objects they write\n"
          "                        (a card byte per 256 bytes of a larger object), no\n"
          "                        system call; pages, the arena's page tracking\n"
          "                        of the old pages (a fault per page first written, and\n"
          "                        system calls per collection to read and re-arm them)\n"
          "  --tracker=sigsegv|uffd|auto  the page tracker of --barrier=pages (default auto:\n"
          "                        userfaultfd where the kernel allows it, else libsigsegv)\n"
          "  --stats               print one JSON line of timings and counts at the end\n"
          "  --gc-stress=N         collect every N allocations (finds rooting bugs)\n"
          "  --verbose-gc          one line per collection on stderr\n"
          "  --help                this text\n"
          "An option's value follows an '=' or a space: --heap=16k or --heap 16k.\n"
          "Exit status: 0 success, 1 an error in the program or the session, or the heap\n"
          "refused the interpreter (printed on stderr), 64 bad usage.\n",
          out);
}

static _Noreturn void usage_error(const char *fmt, const char *arg)
{
    fputs("arena-lisp: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see --help)\n", stderr);
    exit(EXIT_USAGE);
}

int main(int argc, char **argv)
{
    struct options o = {.gc = NULL, .heap = 1 << 20};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *heap = NULL, *barrier = NULL, *tracker = NULL, *stress = NULL;
        if (!strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strncmp(a, "--gc=", 5)) {
            o.gc = a + 5;
        } else if (!strcmp(a, "--gc") && i + 1 < argc) {
            o.gc = argv[++i];
        } else if (!strncmp(a, "--heap=", 7)) {
            heap = a + 7;
        } else if (!strcmp(a, "--heap") && i + 1 < argc) {
            heap = argv[++i];
        } else if (!strcmp(a, "--stats")) {
            o.stats = 1;
        } else if (!strcmp(a, "--generational")) {
            o.generational = 1;
        } else if (!strcmp(a, "--verbose-gc")) {
            L.verbose_gc = 1;
        } else if (!strncmp(a, "--barrier=", 10)) {
            barrier = a + 10;
        } else if (!strcmp(a, "--barrier") && i + 1 < argc) {
            barrier = argv[++i];
        } else if (!strncmp(a, "--tracker=", 10)) {
            tracker = a + 10;
        } else if (!strcmp(a, "--tracker") && i + 1 < argc) {
            tracker = argv[++i];
        } else if (!strncmp(a, "--gc-stress=", 12)) {
            stress = a + 12;
        } else if (!strcmp(a, "--gc-stress") && i + 1 < argc) {
            stress = argv[++i];
        } else if (!strcmp(a, "--gc") || !strcmp(a, "--heap") || !strcmp(a, "--barrier") ||
                   !strcmp(a, "--tracker") || !strcmp(a, "--gc-stress")) {
            usage_error("%s: missing value", a);
        } else if (a[0] == '-' && a[1]) {
            usage_error("unknown option '%s'", a);
        } else {
            o.file = a;
            o.args = argv + i + 1;
            o.nargs = argc - i - 1;
            break;
        }
        if (stress) {
            char *end;
            L.stress = strtoull(stress, &end, 10);
            if (end == stress || *end)
                usage_error("--gc-stress: not a count: '%s'", stress);
        }
        if (heap && !(o.heap = parse_size(heap)))
            usage_error("--heap: not a size: '%s'", heap);
        if (barrier && !strcmp(barrier, "cards"))
            L.barrier = LISP_BARRIER_CARDS;
        else if (barrier && !strcmp(barrier, "pages"))
            L.barrier = LISP_BARRIER_PAGES;
        else if (barrier)
            usage_error("--barrier: unknown barrier '%s' (cards, pages)", barrier);
        o.barrier |= barrier != NULL;
        if (tracker && !strcmp(tracker, "auto"))
            L.tracker = 0;
        else if (tracker && !strcmp(tracker, "sigsegv"))
            L.tracker = 1;
        else if (tracker && !strcmp(tracker, "uffd"))
            L.tracker = 2;
        else if (tracker)
            usage_error("--tracker: unknown tracker '%s' (sigsegv, uffd, auto)", tracker);
        o.tracker |= tracker != NULL;
    }
    if (!o.gc)
        o.gc = &heap_arena_backend ? "arena" : "semispace";
    if (!strcmp(o.gc, "semispace")) {
        L.heap = &heap_semispace;
    } else if (!strcmp(o.gc, "arena")) {
        if (!&heap_arena_backend) {
            fputs("arena-lisp: this build has no arena backend\n", stderr);
            return 1;
        }
        L.heap = &heap_arena_backend;
    } else {
        usage_error("--gc: unknown collector '%s' (arena, semispace)", o.gc);
    }
    if (o.generational && strcmp(o.gc, "arena") != 0)
        usage_error("%s", "--generational needs --gc=arena");
    if (o.barrier && !o.generational)
        usage_error("%s", "--barrier needs --generational");
    /* Only page tracking uses a tracker: with cards it would be silently ignored. */
    if (o.tracker && L.barrier != LISP_BARRIER_PAGES)
        usage_error("%s", "--tracker needs --barrier=pages");

    /* Deep (non-tail) recursion uses the C stack: give the interpreter a big one. */
    pthread_attr_t attr;
    pthread_t th;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, (size_t)512 << 20);
    if (pthread_create(&th, &attr, interpreter, &o) != 0) {
        fputs("arena-lisp: cannot start the interpreter thread\n", stderr);
        return 1;
    }
    pthread_join(th, NULL);
    pthread_attr_destroy(&attr);
    return o.status;
}
