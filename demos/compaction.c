/*
 * arena-compaction -- fragment a heap, collect it, and compare the remapping compactor
 * (mover AUTO: copy short runs, remap medium ones, 2 MiB-aligned mremap for long ones)
 * with a plain copying compactor (mover COPY) on the same heap shape.
 *
 *   arena-compaction [--heap SIZE] [--survive PERCENT] [--seed N] [--page-size SIZE] [--svg PATH]
 *
 * Prints one table row per compactor and writes an SVG heap map (before / after, for the
 * AUTO run). Exits 0 only when every surviving object was verified byte for byte.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"

struct obj {
    char *p;
    uint32_t size;
    bool live;
};

struct options {
    size_t heap, page;
    unsigned survive;
    uint64_t seed;
    const char *svg;
};

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t word_of(const struct obj *o, size_t i)
{
    uint64_t x = (uint64_t)o->size * 0x9E3779B97F4A7C15ull + i;
    x ^= x >> 29;
    return x * 0xBF58476D1CE4E5B9ull;
}

static size_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    switch (*end) {
    case 'k': case 'K': v *= 1024; break;
    case 'm': case 'M': v *= 1024 * 1024; break;
    case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
    default: break;
    }
    return (size_t)v;
}

static void usage(void)
{
    fprintf(stderr, "usage: arena-compaction [--heap SIZE] [--survive PERCENT] [--seed N] "
                    "[--page-size SIZE] [--svg PATH]\n");
    exit(2);
}

static struct options parse(int argc, char **argv)
{
    struct options o = {.heap = 64u << 20, .survive = 30, .seed = 1, .svg = "compaction.svg"};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v == NULL)
            usage();
        if (!strcmp(argv[i], "--heap"))
            o.heap = parse_size(v);
        else if (!strcmp(argv[i], "--survive"))
            o.survive = (unsigned)atoi(v);
        else if (!strcmp(argv[i], "--seed"))
            o.seed = strtoull(v, NULL, 0);
        else if (!strcmp(argv[i], "--page-size"))
            o.page = parse_size(v);
        else if (!strcmp(argv[i], "--svg"))
            o.svg = v;
        else
            usage();
        i++;
    }
    if (o.heap < (1u << 20) || o.survive > 100)
        usage();
    return o;
}

static void progress(const char *what, size_t done, size_t total, size_t *shown)
{
    unsigned pct = (unsigned)(done * 100 / total);
    if (isatty(STDERR_FILENO)) {
        if (pct != *shown || done == total)
            fprintf(stderr, "\r%s: %3u%% (%zu / %zu MiB)%s", what, pct, done >> 20, total >> 20,
                    done == total ? "\n" : "");
    } else if (pct / 25 != *shown / 25 || done == total) {
        fprintf(stderr, "%s: %u%% (%zu / %zu MiB)\n", what, pct, done >> 20, total >> 20);
    }
    *shown = pct;
}

/* The same heap shape for every run: the generator restarts from the seed. */
static struct obj *build(arena_t *a, const struct options *o, size_t *count, const char *label)
{
    size_t cap = 1024, n = 0, bytes = 0, shown = 101;
    struct obj *objs = malloc(cap * sizeof *objs);
    rng = o->seed * 2654435761u + 1;
    size_t page = arena_page_size(a);
    while (bytes < o->heap) {
        uint64_t k = rnd() % 1000;
        size_t size = k < 900 ? 16 + rnd() % 240 : k < 995 ? 256 + rnd() % (page - 256) : page + rnd() % (8 * page);
        size = (size + 15) & ~(size_t)15;
        if (n == cap)
            objs = realloc(objs, (cap *= 2) * sizeof *objs);
        struct obj *ob = &objs[n++];
        ob->p = arena_alloc(a, size);
        if (ob->p == NULL) {
            fprintf(stderr, "arena_alloc: %s\n", strerror(errno));
            exit(1);
        }
        ob->size = (uint32_t)size;
        ob->live = rnd() % 100 < o->survive;
        uint64_t *w = (uint64_t *)ob->p;
        for (size_t i = 0; i < size / 8; i++)
            w[i] = word_of(ob, i);
        bytes += size;
        if ((n & 1023) == 0 || bytes >= o->heap)
            progress(label, bytes < o->heap ? bytes : o->heap, o->heap, &shown);
    }
    *count = n;
    return objs;
}

/* Live fraction per heap page for the map; -1 where the slot shows no page. */
static double *density(arena_t *a, const struct obj *objs, size_t n, size_t slots)
{
    double *d = calloc(slots, sizeof *d);
    for (size_t s = 0; s < slots; s++)
        if (arena_view_file_page(arena_heap_view(a), s) == ARENA_NO_PAGE)
            d[s] = -1;
    const char *base = arena_view_base(arena_heap_view(a));
    size_t page = arena_page_size(a);
    for (size_t i = 0; i < n; i++) {
        if (!objs[i].live || objs[i].p == NULL)
            continue;
        size_t off = (size_t)(objs[i].p - base);
        for (size_t b = off; b < off + objs[i].size;) {
            size_t s = b / page, end = (s + 1) * page < off + objs[i].size ? (s + 1) * page : off + objs[i].size;
            if (s < slots)
                d[s] += (double)(end - b) / (double)page;
            b = end;
        }
    }
    return d;
}

static void svg_map(FILE *f, const double *d, size_t slots, double y, const char *title)
{
    enum { COLS = 128, CELLS = 128 * 48 };
    size_t per = (slots + CELLS - 1) / CELLS;
    per = per ? per : 1;
    fprintf(f, "<text x='4' y='%.0f' font-family='monospace' font-size='12'>%s (%zu page%s per cell)</text>\n",
            y - 4, title, per, per > 1 ? "s" : "");
    for (size_t c = 0; c * per < slots; c++) {
        double sum = 0;
        size_t mapped = 0;
        for (size_t s = c * per; s < (c + 1) * per && s < slots; s++) {
            sum += d[s] > 0 ? d[s] : 0;
            mapped += d[s] >= 0;
        }
        const char *fill = "#f4f4f4";
        char buf[32];
        if (mapped) {
            int shade = 230 - (int)(200 * (sum / (double)per));
            snprintf(buf, sizeof buf, "rgb(%d,%d,255)", shade < 0 ? 0 : shade, shade < 0 ? 0 : shade);
            fill = buf;
        }
        fprintf(f, "<rect x='%zu' y='%.0f' width='5' height='5' fill='%s'/>\n", 4 + (c % COLS) * 6,
                y + (double)(c / COLS) * 6, fill);
    }
}

struct row {
    arena_collect_stats_t st;
    arena_stats_t before, after;
    size_t bad;
};

static struct row run(const struct options *o, int mover, const char *label, FILE *svg)
{
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.mover = mover;
    cfg.page_size = o->page;
    cfg.reserve = o->heap * 4 + ((size_t)64 << 20);
    arena_t *a = NULL;
    int err = arena_create(&a, &cfg);
    if (err != 0) {
        fprintf(stderr, "arena_create: %s\n", arena_strerror(err));
        exit(1);
    }
    size_t n;
    struct obj *objs = build(a, o, &n, label);
    struct row r = {0};
    arena_stats(a, &r.before);
    arena_view_t *hv = arena_heap_view(a);
    size_t slots = r.before.heap_pages + 1;
    for (size_t s = slots; s < arena_view_slots(hv) && s < slots * 2 + 4096; s++)
        if (arena_view_file_page(hv, s) != ARENA_NO_PAGE)
            slots = s + 1;
    double *before = svg ? density(a, objs, n, slots) : NULL;
    for (size_t i = 0; i < n; i++)
        if (objs[i].live && arena_mark(a, objs[i].p + objs[i].size / 2) != 0)
            r.bad++;
    err = arena_collect(a, &r.st);
    if (err != 0) {
        fprintf(stderr, "arena_collect: %s\n", arena_strerror(err));
        r.bad++;
    }
    arena_stats(a, &r.after);
    for (size_t i = 0; i < n; i++) {
        char *now = arena_forward(a, objs[i].p);
        if (!objs[i].live) {
            r.bad += now != NULL;
            objs[i].p = NULL;
            continue;
        }
        objs[i].p = now;
        const uint64_t *w = (const uint64_t *)now;
        bool ok = now != NULL && arena_object_size(a, now) == objs[i].size;
        for (size_t k = 0; ok && k < objs[i].size / 8; k++)
            ok = w[k] == word_of(&objs[i], k);
        r.bad += !ok;
    }
    if (svg) {
        double *after = density(a, objs, n, slots);
        svg_map(svg, before, slots, 20, "before collection: survivors (darker = more live bytes; grey = no page)");
        svg_map(svg, after, slots, 340, "after collection (mover AUTO)");
        free(after);
        free(before);
    }
    free(objs);
    arena_destroy(a);
    return r;
}

static void print_row(const char *name, const struct row *r)
{
    printf("%-8s %9.1f %9.1f %9.1f %6zu %6zu %9zu %9zu %6zu %6zu %7zu %9.2f %9.2f %s\n", name,
           r->st.bytes_live / 1048576.0, r->before.resident_bytes / 1048576.0,
           r->after.resident_bytes / 1048576.0, r->st.vmas_before, r->st.vmas_after, r->st.pages_remapped,
           r->st.pages_copied, r->st.runs_mremap_2m, r->st.pages_released, r->st.objects_evacuated,
           r->st.pause_ns / 1e6,
           r->st.bytes_live ? (double)r->after.resident_bytes / (double)r->st.bytes_live : 0.0,
           r->bad ? "FAILED" : "verified");
}

int main(int argc, char **argv)
{
    struct options o = parse(argc, argv);
    FILE *svg = fopen(o.svg, "w");
    if (svg == NULL)
        fprintf(stderr, "cannot write %s: %s (continuing without the map)\n", o.svg, strerror(errno));
    else
        fprintf(svg, "<svg xmlns='http://www.w3.org/2000/svg' width='780' height='640'>\n"
                     "<rect width='100%%' height='100%%' fill='white'/>\n");
    struct row rauto = run(&o, ARENA_MOVE_AUTO, "building heap (auto)", svg);
    struct row rcopy = run(&o, ARENA_MOVE_COPY, "building heap (copy)", NULL);
    if (svg != NULL) {
        fprintf(svg, "</svg>\n");
        fclose(svg);
    }
    printf("heap %zu MiB, %u%% of objects survive, seed %" PRIu64 "\n", o.heap >> 20, o.survive, o.seed);
    printf("%-8s %9s %9s %9s %6s %6s %9s %9s %6s %6s %7s %9s %9s\n", "mover", "live MiB", "res MiB",
           "res' MiB", "VMAs", "VMAs'", "remapped", "copied", "2M", "freed", "evac", "pause ms", "res'/live");
    print_row("auto", &rauto);
    print_row("copy", &rcopy);
    if (svg != NULL)
        printf("heap map: %s\n", o.svg);
    return rauto.bad || rcopy.bad ? 1 : 0;
}
