/*
 * arena-conservative -- a C program whose heap roots live only in its locals, as in a
 * runtime without a shadow stack: no root registration, no handles. Each round it builds
 * linked lists of small nodes (built interleaved, so a list's nodes are scattered over
 * many pages), drops most of them, collects with its stack and registers scanned
 * conservatively (arena_pin_stack: Bartlett's mostly-copying collection), and verifies
 * every reachable node by checksum. Nodes named by a stack word stay where they are; the
 * rest of each list is traced precisely and may move (arena_forward fixes the links).
 *
 *   arena-conservative [--gc arena|boehm] [--mesh on|off] [--slots N] [--rounds N]
 *                      [--survive PERCENT] [--seed N] [--quick] [--json]
 *
 * --gc boehm runs the same program on Boehm GC (GC_MALLOC, GC_gcollect at the same points),
 * when the build found libgc (exit 77 otherwise). Prints the live bytes, the heap's resident
 * memory after the last collection and the process's peak RSS (VmHWM); --json prints one
 * line for arena-bench instead. Exit 0 only when every reachable node verified.
 */
#include "common.h"

#include <stdalign.h>

#ifdef ARENA_CONSERVATIVE_HAVE_BOEHM
#include <gc/gc.h>
#endif

struct node {
    struct node *next;
    uint64_t key;         /* (list seed, index): what the checksum is made of */
    uint32_t index, words;
    uint32_t gcflag, pad;
    uint64_t payload[];   /* words payload words derived from key */
};

struct options {
    bool boehm, mesh, json;
    size_t slots, rounds;
    unsigned survive;     /* % of the lists of a round that survive it */
    uint64_t seed;
};

static uint64_t rng;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 29);
}

/* ----------------------------------------------------------------- the heaps -- */

static arena_t *A;

static void *node_alloc(const struct options *o, size_t size)
{
#ifdef ARENA_CONSERVATIVE_HAVE_BOEHM
    if (o->boehm) {
        void *p = GC_MALLOC(size);
        if (p == NULL)
            demo_die("GC_MALLOC(%zu) failed", size);
        return p;
    }
#else
    (void)o;
#endif
    void *p = arena_alloc(A, size);
    if (p == NULL)
        demo_die("arena_alloc(%zu) failed: %s", size, strerror(errno));
    return p;
}

/* The arena's collection: the stack names the roots; what they reach is traced. */
struct roots {
    struct node **v;
    size_t n, cap;
};

/* arena_pin_stack's callback: each node a stack word names (pinned already). */
static void on_root(void *obj, void *ctx)
{
    struct roots *r = ctx;
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4096;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        if (r->v == NULL)
            demo_die("out of memory for the roots");
    }
    r->v[r->n++] = obj;
}

/* Every object has one reference field, so the marking needs no gray stack: from each
 * root, the chain of links up to the first node marked already (gcflag). A pin keeps a
 * node, not what it points to, so the roots' nodes are marked here too. */
static void trace(const struct roots *r)
{
    for (size_t i = 0; i < r->n; i++)
        for (struct node *p = r->v[i]; p != NULL && !p->gcflag; p = p->next) {
            p->gcflag = 1;
            demo_check(arena_mark(A, p), "arena_mark");
        }
}

/* After the collection the roots are where they were (pinned); every link is forwarded
 * once: the flag set by trace() is cleared where a link is fixed. */
static void fix(const struct roots *r)
{
    for (size_t i = 0; i < r->n; i++) {
        for (struct node *p = r->v[i]; p != NULL && p->gcflag; p = p->next) {
            p->gcflag = 0;
            if (p->next) {
                p->next = arena_forward(A, p->next);
                if (p->next == NULL)
                    demo_die("a reachable node died in the collection");
            }
        }
    }
}

static arena_collect_stats_t last;
static uint64_t pause_ns, mesh_ns; /* totals over the run */

__attribute__((noinline)) static void collect(const struct options *o)
{
#ifdef ARENA_CONSERVATIVE_HAVE_BOEHM
    if (o->boehm) {
        GC_gcollect();
        return;
    }
#else
    (void)o;
#endif
    struct roots r = {0};
    demo_check(arena_pin_stack(A, on_root, &r), "arena_pin_stack");
    trace(&r);
    demo_check(arena_collect(A, &last), "arena_collect");
    pause_ns += last.pause_ns;
    mesh_ns += last.mesh_ns;
    fix(&r);
    free(r.v);
}

/* ----------------------------------------------------------------- the program -- */

static uint64_t payload_word(uint64_t key, size_t i)
{
    return mix(key + i * 0x9E3779B97F4A7C15ull);
}

/* A list's nodes: 1..4 of them, each 32..128 bytes. */
static size_t list_len(uint64_t seed) { return 1 + seed % 4; }
static uint32_t node_words(uint64_t key) { return (uint32_t)(1 + (key >> 7) % 12); }

/* Sum over one list, checking every node; dies on a mismatch. */
static uint64_t verify(const struct node *head, uint64_t seed, size_t *bytes)
{
    uint64_t sum = seed;
    size_t i = 0;
    for (const struct node *p = head; p != NULL; p = p->next, i++) {
        uint64_t key = mix(seed + i);
        if (p->key != key || p->index != i || p->words != node_words(key))
            demo_die("list %016" PRIx64 " node %zu: header corrupt", seed, i);
        for (size_t w = 0; w < p->words; w++)
            if (p->payload[w] != payload_word(key, w))
                demo_die("list %016" PRIx64 " node %zu: payload word %zu corrupt", seed, i, w);
        sum = mix(sum ^ key);
        *bytes += sizeof *p + p->words * 8;
    }
    if (i != list_len(seed))
        demo_die("list %016" PRIx64 ": %zu nodes, expected %zu", seed, i, list_len(seed));
    return sum;
}

/* Build the lists of the slots marked in fresh[], one node of each in turn, so every
 * list's nodes are scattered among the others'. The tails are kept in a local array
 * too: they are roots only while the lists are being built. */
__attribute__((noinline)) static void build(const struct options *o, struct node **heads, uint64_t *seeds,
                                            const bool *fresh, size_t n)
{
    struct node **tails = calloc(n, sizeof *tails);
    if (tails == NULL)
        demo_die("out of memory");
    for (size_t i = 0; i < 4; i++) {
        for (size_t s = 0; s < n; s++) {
            if (!fresh[s] || i >= list_len(seeds[s]))
                continue;
            uint64_t key = mix(seeds[s] + i);
            struct node *p = node_alloc(o, sizeof *p + node_words(key) * 8);
            *p = (struct node){.key = key, .index = (uint32_t)i, .words = node_words(key)};
            for (size_t w = 0; w < p->words; w++)
                p->payload[w] = payload_word(key, w);
            if (i == 0)
                heads[s] = p;
            else
                tails[s]->next = p;
            tails[s] = p;
        }
    }
    free(tails);
}

static long proc_status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "re");
    char line[256];
    long kb = -1;
    size_t len = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':') {
            kb = strtol(line + len + 1, NULL, 10);
            break;
        }
    if (f)
        fclose(f);
    return kb;
}

/* The program. Its roots: heads[], a local (a VLA on this frame), and nothing else. */
__attribute__((noinline)) static uint64_t run(const struct options *o, size_t *live_bytes)
{
    size_t n = o->slots;
    struct node *heads[n];
    uint64_t seeds[n];
    bool fresh[n];
    for (size_t s = 0; s < n; s++) {
        heads[s] = NULL;
        seeds[s] = rnd();
        fresh[s] = true;
    }
    uint64_t sum = 0;
    for (size_t round = 0; round < o->rounds; round++) {
        build(o, heads, seeds, fresh, n);
        /* Most lists die: the slots not surviving are refilled next round. */
        for (size_t s = 0; s < n; s++) {
            fresh[s] = rnd() % 100 >= o->survive;
            if (fresh[s]) {
                heads[s] = NULL;
                seeds[s] = rnd();
            }
        }
        collect(o);
        *live_bytes = 0;
        for (size_t s = 0; s < n; s++)
            if (heads[s] != NULL)
                sum = mix(sum ^ verify(heads[s], seeds[s], live_bytes));
    }
    return sum;
}

static void usage(FILE *f)
{
    fputs("usage: arena-conservative [--gc arena|boehm] [--mesh on|off] [--slots N] [--rounds N]\n"
          "                          [--survive PERCENT] [--seed N] [--quick] [--json]\n"
          "  A program whose roots live only in its C locals: lists of small nodes built\n"
          "  interleaved, most dropped each round, a collection with the stack scanned\n"
          "  conservatively (arena_pin_stack), every reachable node verified by checksum.\n"
          "  --gc      arena (default) or boehm (Boehm GC, exit 77 when built without libgc)\n"
          "  --mesh    on or off: mesh sparse pinned pages in each collection (default: run\n"
          "            the arena twice, on then off, and print both; with --json: off)\n"
          "  --slots   lists alive at once (default 60000; --quick 4000)\n"
          "  --rounds  rounds (default 12; --quick 4)\n"
          "  --survive % of a round's lists that outlive it (default 25)\n"
          "  --json    one line of figures for arena-bench\n",
          f);
}

static struct options parse(int argc, char **argv, bool *both)
{
    bool mesh_given = false;
    static const struct option longopts[] = {
        {"gc", required_argument, NULL, 'g'},     {"mesh", required_argument, NULL, 'm'},
        {"slots", required_argument, NULL, 's'},  {"rounds", required_argument, NULL, 'r'},
        {"survive", required_argument, NULL, 'v'}, {"seed", required_argument, NULL, 'e'},
        {"quick", no_argument, NULL, 'q'},        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {0, 0, 0, 0},
    };
    /* A single run (--json, arena-bench's peer.conservative) meshes only when asked: new
     * objects fill the gaps of the pinned pages (.req.heap.recycle-pinned), so meshing saves
     * little here, while meshed pages are never recycled and each mesh costs a mapping and a
     * re-fault (docs/design.md §7). */
    struct options o = {.mesh = false, .survive = 25, .seed = 42};
    bool quick = false;
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'g':
            if (strcmp(optarg, "arena") && strcmp(optarg, "boehm"))
                demo_usage_error("--gc: arena or boehm, not '%s'", optarg);
            o.boehm = !strcmp(optarg, "boehm");
            break;
        case 'm':
            if (strcmp(optarg, "on") && strcmp(optarg, "off"))
                demo_usage_error("--mesh: on or off, not '%s'", optarg);
            o.mesh = !strcmp(optarg, "on");
            mesh_given = true;
            break;
        case 's': o.slots = (size_t)demo_parse_uint("--slots", optarg, 1, 200000); break;
        case 'r': o.rounds = (size_t)demo_parse_uint("--rounds", optarg, 1, 1000); break;
        case 'v': o.survive = (unsigned)demo_parse_uint("--survive", optarg, 0, 100); break;
        case 'e': o.seed = demo_parse_uint("--seed", optarg, 1, UINT64_MAX); break;
        case 'q': quick = true; break;
        case 'j': o.json = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); exit(DEMO_EXIT_USAGE);
        }
    }
    if (optind < argc)
        demo_usage_error("unexpected argument '%s' (see --help)", argv[optind]);
    if (o.slots == 0)
        o.slots = quick ? 4000 : 60000;
    if (o.rounds == 0)
        o.rounds = quick ? 4 : 12;
    *both = !mesh_given && !o.json && !o.boehm;
    return o;
}

/* One run of the program on the chosen collector; prints its figures. */
static uint64_t one_run(const struct options *o)
{
    rng = o->seed;
    if (!o->boehm) {
        arena_config_t cfg;
        arena_config_init(&cfg);
        cfg.reserve = (size_t)4 << 30;
        cfg.mesh = o->mesh ? ARENA_MESH_AUTO : ARENA_MESH_OFF;
        demo_check(arena_create(&A, &cfg), "arena_create");
    }
    uint64_t t0 = demo_now_ns();
    size_t live = 0;
    uint64_t sum = run(o, &live);
    double ms = (double)(demo_now_ns() - t0) / 1e6;
    size_t resident = 0;
    if (!o->boehm) {
        /* Retained pages are the allocator's reserve, not the program's: released first. */
        demo_check(arena_trim(A, 0), "arena_trim");
        arena_stats_t s;
        demo_check(arena_stats(A, &s), "arena_stats");
        resident = s.file_bytes; /* not resident_bytes: mincore counts a meshed file page at each slot */
    }
#ifdef ARENA_CONSERVATIVE_HAVE_BOEHM
    else
        resident = GC_get_heap_size() - GC_get_free_bytes();
#endif
    long peak = proc_status_kb("VmHWM"), rss = proc_status_kb("VmRSS");
    if (o->json) {
        printf("{\"gc\":\"%s\",\"mesh\":%s,\"total_ms\":%.3f,\"live_bytes\":%zu,\"heap_resident_bytes\":%zu,"
               "\"rss_kb\":%ld,\"peak_rss_kb\":%ld,\"pages_meshed\":%zu,\"checksum\":\"%016" PRIx64 "\"}\n",
               o->boehm ? "boehm" : "arena", o->boehm ? "false" : o->mesh ? "true" : "false", ms, live, resident,
               rss, peak, last.pages_meshed, sum);
    } else {
        printf("arena-conservative: %s%s, %zu lists, %zu rounds, %u%% survive\n", o->boehm ? "Boehm GC" : "arena",
               o->boehm ? "" : o->mesh ? " (meshing on)" : " (meshing off)", o->slots, o->rounds, o->survive);
        printf("  live after the last collection  %8.2f MiB\n", (double)live / 1048576.0);
        printf("  heap memory                     %8.2f MiB (%.2fx live)%s\n", (double)resident / 1048576.0,
               live ? (double)resident / (double)live : 0.0,
               o->boehm ? ", Boehm's heap less its free bytes" : ", the backing file's blocks, retained pages released");
        if (!o->boehm) {
            printf("  last collection: %zu pages pinned, %zu meshed, %zu objects live, %zu evacuated\n",
                   last.pages_pinned, last.pages_meshed, last.objects_live, last.objects_evacuated);
            printf("  collections took %.1f ms, meshing %.1f ms of it\n", (double)pause_ns / 1e6, (double)mesh_ns / 1e6);
        }
        printf("  process RSS %ld KiB, peak %ld KiB, %.1f ms\n", rss, peak, ms);
        printf("  checksum %016" PRIx64 ": every reachable node verified\n", sum);
    }
    arena_destroy(A);
    A = NULL;
    pause_ns = mesh_ns = 0;
    return sum;
}

int main(int argc, char **argv)
{
    bool both = false;
    struct options o = parse(argc, argv, &both);
#ifdef ARENA_CONSERVATIVE_HAVE_BOEHM
    if (o.boehm)
        GC_INIT();
#else
    if (o.boehm)
        demo_exit(77, "built without Boehm GC (libgc-dev, pkg-config bdw-gc)");
#endif
    /* Without --mesh (and without --json) the arena runs twice: meshing on, then off. */
    if (both)
        o.mesh = true;
    uint64_t sum = one_run(&o);
    if (both) {
        o.mesh = false;
        if (one_run(&o) != sum)
            demo_die("the runs with and without meshing disagree");
    }
    return 0;
}
