/*
 * arena-compaction -- fragment a heap, collect it, and compare the remapping compactor
 * (mover AUTO: copy short runs, remap medium ones, 2 MiB-aligned mremap for long ones)
 * with a plain copying compactor (mover COPY) on the same heap shape.
 *
 *   arena-compaction [--heap SIZE] [--survive FRACTION|PERCENT%] [--seed N] [--page-size SIZE]
 *                    [--svg PATH | --no-svg]
 *
 * Prints what each compactor did side by side and writes an SVG heap map of the heap before
 * and after each collection. Exits 0 only when every surviving object was verified byte for
 * byte.
 */
#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
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
    double survive; /* the fraction of objects that survive, 0..1 */
    uint64_t seed;
    const char *svg; /* NULL: no map */
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

static void usage(FILE *f)
{
    fputs("usage: arena-compaction [--heap SIZE] [--survive FRACTION|PERCENT%] [--seed N] [--page-size SIZE]\n"
          "                        [--svg PATH | --no-svg]\n"
          "Fragments a heap (most objects die), collects it once with the remapping compactor and once\n"
          "with a plain copying compactor on the same heap shape, verifies every survivor and prints\n"
          "what each did side by side.\n"
          "  --heap SIZE       bytes of objects to allocate (default 64M; K, M, G suffixes; at least 1M)\n"
          "  --survive F       the share of objects that survive: a fraction (0.3) or a percentage (30%);\n"
          "                    default 0.3\n"
          "  --seed N          the heap shape (default 1)\n"
          "  --page-size SIZE  the arena's page size (default: the OS page)\n"
          "  --svg PATH        where the SVG heap map goes (default: compaction.svg next to this program)\n"
          "  --no-svg          write no heap map\n"
          "Exit status: 0 every survivor verified, 1 a survivor was lost or changed (or an error),\n"
          "64 a bad command line.\n", f);
}

/* "0.3" or "30%": the fraction of objects that survive. A bare number above 1 is refused
 * rather than guessed at: "30" could mean 30 % or be a slip. */
static double parse_survive(const char *text)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    bool percent = end != text && *end == '%';
    if (percent)
        end++;
    if (end == text || *end != '\0' || errno || !isfinite(v) || v < 0 || v > (percent ? 100 : 1))
        demo_usage_error("--survive: '%s' is neither a fraction from 0 to 1 (0.3) nor a percentage "
                         "from 0%% to 100%% (30%%)", text);
    return percent ? v / 100 : v;
}

/* compaction.svg in the directory of this program (build/ for the README's command). */
static const char *default_svg(void)
{
    static char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof path - sizeof "/compaction.svg");
    if (n <= 0)
        return "compaction.svg";
    path[n] = '\0';
    char *dir = dirname(path);
    if (dir != path)
        memmove(path, dir, strlen(dir) + 1);
    strcat(path, "/compaction.svg");
    return path;
}

static struct options parse(int argc, char **argv)
{
    struct options o = {.heap = 64u << 20, .survive = 0.3, .seed = 1, .svg = NULL};
    bool no_svg = false;
    static const struct option longopts[] = {
        {"heap", required_argument, NULL, 'H'}, {"survive", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'}, {"page-size", required_argument, NULL, 'p'},
        {"svg", required_argument, NULL, 'o'},  {"no-svg", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},       {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': o.heap = demo_parse_size("--heap", optarg); break;
        case 's': o.survive = parse_survive(optarg); break;
        case 'S': o.seed = demo_parse_uint("--seed", optarg, 0, UINT64_MAX); break;
        case 'p': o.page = demo_parse_size("--page-size", optarg); break;
        case 'o': o.svg = optarg; break;
        case 'n': no_svg = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(DEMO_EXIT_USAGE);
        }
    }
    if (optind < argc)
        demo_usage_error("unexpected argument '%s' (see --help)", argv[optind]);
    if (o.heap < (1u << 20) || o.heap > ((size_t)1 << 30))
        demo_usage_error("--heap: from 1M to 1G");
    if (no_svg && o.svg)
        demo_usage_error("--svg and --no-svg together");
    if (!no_svg && !o.svg)
        o.svg = default_svg();
    return o;
}

/* The same heap shape for every run: the generator restarts from the seed. */
static struct obj *build(arena_t *a, const struct options *o, size_t *count, const char *label)
{
    size_t cap = 1024, n = 0, bytes = 0;
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
        ob->live = (double)(rnd() >> 11) * 0x1p-53 < o->survive;
        uint64_t *w = (uint64_t *)ob->p;
        for (size_t i = 0; i < size / 8; i++)
            w[i] = word_of(ob, i);
        bytes += size;
        if ((n & 1023) == 0 || bytes >= o->heap)
            demo_progress(label, (bytes < o->heap ? bytes : o->heap) >> 20, o->heap >> 20);
    }
    demo_progress_done();
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

/* One line of the side-by-side table: what, unit, the AUTO figure, the COPY figure. */
static void line(const char *what, const char *unit, double a, double c, int decimals)
{
    printf("  %-44s %-4s %12.*f %12.*f\n", what, unit, decimals, a, decimals, c);
}

static void print_table(const struct options *o, const struct row *ra, const struct row *rc)
{
    const arena_collect_stats_t *a = &ra->st, *c = &rc->st;
    size_t all = a->objects_live + a->objects_freed;
    printf("heap %zu MiB of objects (seed %" PRIu64 ", %zu-byte pages): %zu objects, %zu survive "
           "(%.1f %%; asked for %.3g %%)\n\n",
           o->heap >> 20, o->seed, ra->before.page_size, all, a->objects_live,
           all ? 100.0 * (double)a->objects_live / (double)all : 0.0, o->survive * 100);
    printf("  %-44s %-4s %12s %12s\n", "", "", "remapping", "copying");
    printf("  %-44s %-4s %12s %12s\n", "", "", "(mover auto)", "(mover copy)");
    line("live data (surviving objects)", "MiB", a->bytes_live / 1048576.0, c->bytes_live / 1048576.0, 1);
    line("resident memory before the collection", "MiB", ra->before.resident_bytes / 1048576.0,
         rc->before.resident_bytes / 1048576.0, 1);
    line("resident memory after", "MiB", ra->after.resident_bytes / 1048576.0,
         rc->after.resident_bytes / 1048576.0, 1);
    line("  resident after / live data", "",
         a->bytes_live ? (double)ra->after.resident_bytes / (double)a->bytes_live : 0,
         c->bytes_live ? (double)rc->after.resident_bytes / (double)c->bytes_live : 0, 2);
    line("heap pages in use before", "", (double)a->pages_before, (double)c->pages_before, 0);
    line("  dead pages freed (punched out of the file)", "", (double)a->pages_released,
         (double)c->pages_released, 0);
    line("  live pages left where they were", "", (double)a->pages_in_place, (double)c->pages_in_place, 0);
    line("  live pages moved by remapping (no copy)", "", (double)a->pages_remapped, (double)c->pages_remapped, 0);
    line("    of them in whole 2 MiB mremap runs", "runs", (double)a->runs_mremap_2m, (double)c->runs_mremap_2m, 0);
    line("  live pages moved by copying", "", (double)a->pages_copied, (double)c->pages_copied, 0);
    line("objects evacuated out of sparse pages", "", (double)a->objects_evacuated, (double)c->objects_evacuated, 0);
    line("heap pages in use after", "", (double)a->pages_after, (double)c->pages_after, 0);
    line("kernel mappings (VMAs) before", "", (double)a->vmas_before, (double)c->vmas_before, 0);
    line("kernel mappings (VMAs) after", "", (double)a->vmas_after, (double)c->vmas_after, 0);
    line("pause (wall time of arena_collect)", "ms", a->pause_ns / 1e6, c->pause_ns / 1e6, 2);
    printf("  %-44s %-4s %12s %12s\n", "every survivor checked byte for byte", "", ra->bad ? "FAILED" : "verified",
           rc->bad ? "FAILED" : "verified");
}

int main(int argc, char **argv)
{
    struct options o = parse(argc, argv);
    FILE *svg = NULL;
    if (o.svg != NULL && (svg = fopen(o.svg, "w")) == NULL)
        fprintf(stderr, "arena-compaction: cannot write %s: %s (continuing without the map)\n", o.svg,
                strerror(errno));
    if (svg != NULL)
        fprintf(svg, "<svg xmlns='http://www.w3.org/2000/svg' width='780' height='640'>\n"
                     "<rect width='100%%' height='100%%' fill='white'/>\n");
    struct row rauto = run(&o, ARENA_MOVE_AUTO, "building the heap for auto (MiB)", svg);
    struct row rcopy = run(&o, ARENA_MOVE_COPY, "building the heap for copy (MiB)", NULL);
    if (svg != NULL) {
        fprintf(svg, "</svg>\n");
        fclose(svg);
    }
    print_table(&o, &rauto, &rcopy);
    if (svg != NULL)
        printf("\nheap map: %s\n", o.svg);
    return rauto.bad || rcopy.bad ? 1 : 0;
}
