/*
 * arena-vmacount -- the seed's VMA-counting example and TLPI exercise 49-4: the same
 * nonlinear layout (K pages reversed) built by remap_file_pages, by MAP_FIXED mmaps
 * and by mremap, side by side: the VMAs the kernel really holds for the view (lines of
 * /proc/self/maps), the arena's own accounting, the time to build the layout and the
 * time of the first touch after it.
 *
 * The seed expected remap_file_pages to keep one VMA; since Linux 3.16 it is emulated
 * with one VMA per discontiguous run, which is what this demo shows.
 */
#include "common.h"

#include <getopt.h>

static void usage(FILE *out)
{
    fprintf(out,
            "usage: arena-vmacount [--pages K] [--vma-budget N] [--cold]\n"
            "\n"
            "Builds a view whose slot i shows file page K-1-i with each primitive and prints, per\n"
            "primitive: the time to build it, the time of the first read of every page after it,\n"
            "the VMAs of the view's slots in /proc/self/maps and the arena's own count.\n"
            "\n"
            "  --pages K         pages to reverse (default 4096)\n"
            "  --vma-budget N    the arena's VMA budget (default: a safe share of vm.max_map_count)\n"
            "  --cold            do not touch the linear start before rearranging it (by default every\n"
            "                    page is faulted in first, so the build pays for tearing down or\n"
            "                    carrying page tables, as it would in a heap in use)\n"
            "\n"
            "Exit status: 0 every layout built and verified, 1 error or mismatch, 2 a layout was\n"
            "over the VMA budget, 64 bad usage.\n");
}

static inline uint64_t pattern(size_t page)
{
    return ((uint64_t)page + 1) * 0x9E3779B97F4A7C15u;
}

enum method { LINEAR, REMAP_FILE_PAGES, MMAP_FIXED, MREMAP, NMETHODS };

static const struct {
    const char *name;
    int mover;
    const char *how;
} methods[NMETHODS] = {
    [LINEAR] = {"linear", ARENA_MOVE_MMAP_FIXED, "one arena_view_map of the file in order (baseline)"},
    [REMAP_FILE_PAGES] = {"remap_file_pages", ARENA_MOVE_REMAP_FILE_PAGES,
                          "linear map, then arena_view_apply of the reversed table"},
    [MMAP_FIXED] = {"mmap_fixed", ARENA_MOVE_MMAP_FIXED, "linear map, then arena_view_apply of the reversed table"},
    [MREMAP] = {"mremap", ARENA_MOVE_MREMAP, "linear at staging slots K.., then arena_view_move of each page"},
};

struct row {
    int err;
    double build_ms, touch_ms;
    long maps;
    size_t view_vmas, arena_vmas, budget;
    bool verified;
};

/* Fault in every page of the linear start so that the "touch" column shows which
 * primitives keep page tables (mremap carries them) and which make every page fault
 * again. */
static void prefault(const arena_view_t *v, size_t ps, size_t slot, size_t k)
{
    volatile const char *base = (const char *)arena_view_base(v) + slot * ps;
    for (size_t i = 0; i < k; i++)
        (void)base[i * ps];
}

static bool cold;

static int build(enum method m, arena_view_t *v, size_t ps, size_t first, size_t k, uint64_t *ns)
{
    int err = 0;
    uint64_t t0 = 0;
    if (m == LINEAR) {
        t0 = demo_now_ns();
        err = arena_view_map(v, 0, first, k);
    } else if (m == MREMAP) {
        err = arena_view_map(v, k, first, k);
        if (!err && !cold)
            prefault(v, ps, k, k);
        t0 = demo_now_ns();
        for (size_t j = 0; !err && j < k; j++) {
            err = arena_view_move(v, k - 1 - j, k + j, 1);
            demo_progress(methods[m].name, j + 1, k);
        }
        demo_progress_done();
    } else {
        size_t *table = malloc(k * sizeof *table);
        if (!table)
            return ARENA_ENOMEM;
        for (size_t i = 0; i < k; i++)
            table[i] = first + k - 1 - i;
        err = arena_view_map(v, 0, first, k);
        if (!err && !cold)
            prefault(v, ps, 0, k);
        t0 = demo_now_ns();
        if (!err)
            err = arena_view_apply(v, 0, table, k);
        free(table);
    }
    *ns = demo_now_ns() - t0;
    return err;
}

static struct row run(arena_t *a, enum method m, size_t first, size_t k)
{
    struct row r = {0};
    size_t ps = arena_page_size(a);
    arena_view_t *v;
    r.err = arena_view_open(a, ARENA_VIEW_EMPTY, m == MREMAP ? 2 * k : k, ARENA_PROT_READ | ARENA_PROT_WRITE, 0,
                            &v);
    if (r.err)
        return r;
    r.err = arena_view_set_mover(v, methods[m].mover);
    uint64_t ns = 0;
    if (!r.err)
        r.err = build(m, v, ps, first, k, &ns);
    r.build_ms = (double)ns / 1e6;
    const char *base = arena_view_base(v);
    if (!r.err) {
        /* first touch: one read per page, which refaults pages whose tables did not move */
        volatile uint64_t sink = 0;
        uint64_t t0 = demo_now_ns();
        for (size_t i = 0; i < k; i++)
            sink += *(const uint64_t *)(base + i * ps);
        r.touch_ms = (double)(demo_now_ns() - t0) / 1e6;
        (void)sink;
        r.verified = true;
        for (size_t i = 0; i < k && r.verified; i++) {
            size_t want = m == LINEAR ? i : k - 1 - i;
            const uint64_t *w = (const uint64_t *)(base + i * ps);
            r.verified = w[0] == pattern(want) && w[ps / 8 - 1] == pattern(want);
        }
    }
    r.maps = demo_maps_count(base, base + k * ps);
    r.view_vmas = arena_view_vmas(v);
    arena_stats_t st;
    if (arena_stats(a, &st) == 0) {
        r.arena_vmas = st.vmas;
        r.budget = st.vma_budget;
    }
    int cerr = arena_view_close(v);
    if (!r.err)
        r.err = cerr;
    return r;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"pages", required_argument, NULL, 'p'},
        {"vma-budget", required_argument, NULL, 'b'},
        {"cold", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {0, 0, 0, 0},
    };
    size_t k = 4096, budget = 0;
    int c;
    while ((c = getopt_long(argc, argv, "p:b:ch", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': k = demo_parse_size("--pages", optarg); break;
        case 'b': budget = demo_parse_size("--vma-budget", optarg); break;
        case 'c': cold = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return DEMO_EXIT_USAGE;
        }
    }
    if (optind < argc)
        demo_usage_error("unexpected argument '%s' (see --help)", argv[optind]);
    if (k < 2)
        demo_usage_error("--pages must be at least 2");

    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.vma_budget = budget;
    arena_t *a;
    demo_check(arena_create(&a, &cfg), "arena_create");
    size_t ps = arena_page_size(a), first;
    demo_check(arena_file_alloc(a, k, &first), "arena_file_alloc");

    /* Fill the file once through a linear view kept open, so every build finds the
     * pages resident and only the mapping work is timed. */
    arena_view_t *src;
    demo_check(arena_view_open(a, ARENA_VIEW_EMPTY, k, ARENA_PROT_READ | ARENA_PROT_WRITE, 0, &src),
               "arena_view_open");
    demo_check(arena_view_map(src, 0, first, k), "arena_view_map");
    char *sbase = arena_view_base(src);
    for (size_t p = 0; p < k; p++)
        for (size_t i = 0; i < ps / 8; i++)
            ((uint64_t *)(sbase + p * ps))[i] = pattern(p);

    printf("reversing %zu pages of %zu bytes: slot i shows file page %zu-i (%s)\n", k, ps, k - 1,
           cold ? "cold: the linear start is not touched first" : "the linear start is faulted in first");
    printf("process VMAs before: %ld\n\n", demo_maps_count(NULL, (void *)UINTPTR_MAX));
    for (int m = 0; m < NMETHODS; m++)
        printf("  %-17s %s\n", methods[m].name, methods[m].how);
    printf("\n%-17s %10s %9s %10s %11s %11s %14s  %s\n", "primitive", "build ms", "us/page", "touch ms",
           "VMAs(maps)", "VMAs(view)", "arena/budget", "verified");

    int status = 0;
    for (int m = 0; m < NMETHODS; m++) {
        struct row r = run(a, (enum method)m, first, k);
        if (r.err) {
            printf("%-17s failed%s: %s\n", methods[m].name, r.err == ARENA_EVMA ? " (over the VMA budget)" : "",
                   arena_strerror(r.err));
            int s = r.err == ARENA_EVMA ? DEMO_EXIT_BUDGET : DEMO_EXIT_FAIL;
            status = status == DEMO_EXIT_FAIL ? status : s;
            continue;
        }
        printf("%-17s %10.3f %9.2f %10.3f %11ld %11zu %7zu/%-6zu  %s\n", methods[m].name, r.build_ms,
               r.build_ms * 1e3 / (double)k, r.touch_ms, r.maps, r.view_vmas, r.arena_vmas, r.budget,
               r.verified ? "yes" : "NO");
        if (!r.verified)
            status = DEMO_EXIT_FAIL;
    }
    printf("\nVMAs(maps): lines of /proc/self/maps inside slots 0..K-1 of the view; VMAs(view): "
           "arena_view_vmas;\narena/budget: arena_stats vmas (all views, the source view and the heap "
           "included) and vma_budget.\n");

    demo_check(arena_view_close(src), "arena_view_close");
    arena_destroy(a);
    if (status)
        demo_exit(status, "not every layout was built and verified");
    printf("Test passed\n");
    return 0;
}
