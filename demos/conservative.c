/*
 * arena-conservative -- a C program whose heap roots live only in its locals, as in a
 * runtime without a shadow stack: no root registration, no handles. Each round it builds
 * linked lists of small nodes (built interleaved, so a list's nodes are scattered over
 * many pages), drops most of them, collects with its stack and registers scanned
 * conservatively (arena_pin_stack: Bartlett's mostly-copying collection), and verifies
 * every reachable node by checksum. Nodes named by a stack word stay where they are; the
 * rest of each list is traced precisely and may move (arena_forward fixes the links).
 *
 *   arena-conservative [--gc arena|boehm] [--pattern shift|uniform] [--mesh on|off|both]
 *                      [--slots N] [--rounds N] [--survive PERCENT] [--lifetime N]
 *                      [--seed N] [--quick] [--json]
 *
 * Two allocation patterns:
 * - shift (the default) models a program whose object sizes change with its phases while
 *   some objects of each phase outlive it: a cache whose entries grow as its requests
 *   change in kind, a server moving from one kind of request to another (the phase
 *   behaviour of Wilson, Johnstone, Neely and Boles, "Dynamic Storage Allocation: A Survey
 *   and Critical Review", IWMM 1995; the Redis experiment of Mesh, PLDI 2019, inserts
 *   small values, deletes most, then inserts larger ones). Round r's nodes take sizes from
 *   a band of six 8-byte steps that moves up by six steps each round, 40..80 bytes in round
 *   0 up to 376..416 in round 7, then starts again. A list survives its first round with
 *   --survive % and then lives 1..--lifetime further rounds. This is the fragmentation a
 *   collector that cannot move pays for: a segregated-fit heap (Boehm GC's blocks hold one
 *   size each) keeps a block of an old size as long as one survivor is in it, and cannot
 *   serve the new sizes from it.
 * - uniform (the pattern of earlier versions) draws every round's nodes from the same
 *   32..128 bytes and lets each list, old or new, survive each round with --survive %.
 *   Its peak is the live data right after a build (every slot full): it measures live
 *   bytes more than fragmentation, since Boehm GC reuses its blocks for the same sizes.
 * Every slot is refilled by the next build, so the live bytes peak right after a build;
 * both patterns print that peak, which no collector can go below.
 *
 * --gc boehm runs the same program on Boehm GC (default configuration: GC_INIT, GC_MALLOC,
 * GC_gcollect where the arena collects), when the build found libgc (exit 77 otherwise).
 * --mesh on|off sets arena_config_t.mesh; without it one run uses the library's default
 * (--json) or the arena runs twice, the default (no meshing) then meshing on, each with its
 * own peak RSS. Prints the live bytes (after the last collection and at their peak), the
 * heap at its largest, the heap after the last collection and the process's peak RSS
 * (VmHWM); --json prints one line for arena-bench instead. Exit 0 only when every reachable
 * node verified, 1 when one did not.
 */
#include "common.h"

#include <fcntl.h>
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

enum pattern {
    PATTERN_SHIFT,        /* the node sizes of each round differ from the last round's; survivors live on */
    PATTERN_UNIFORM,      /* one size mix every round; each list survives each round with --survive % */
};

struct options {
    bool boehm, json;
    int mesh;             /* arena_config_t.mesh: ARENA_MESH_AUTO (the library's default), _ON or _OFF */
    enum pattern pattern;
    size_t slots, rounds;
    unsigned survive;     /* % of the lists of a round that survive it */
    unsigned lifetime;    /* shift: a surviving list lives 1..lifetime further rounds */
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

/* A list's nodes: 1..4 of them. uniform: each 32..128 bytes whatever the round. shift:
 * a band of SHIFT_WIDTH sizes that moves up by SHIFT_WIDTH words each round and starts
 * again after SHIFT_BANDS rounds: round 0 40..80 bytes, round 1 88..128, ..., round 7
 * 376..416, round 8 40..80 again. */
enum { SHIFT_BANDS = 8, SHIFT_WIDTH = 6 };
static size_t list_len(uint64_t seed) { return 1 + seed % 4; }
static uint32_t node_words(const struct options *o, uint64_t key, size_t round)
{
    if (o->pattern == PATTERN_UNIFORM)
        return (uint32_t)(1 + (key >> 7) % 12);
    return (uint32_t)(1 + SHIFT_WIDTH * (round % SHIFT_BANDS) + (key >> 7) % SHIFT_WIDTH);
}

/* Sum over one list built in round born, checking every node; dies on a mismatch. */
static uint64_t verify(const struct options *o, const struct node *head, uint64_t seed, size_t born,
                       size_t *bytes)
{
    uint64_t sum = seed;
    size_t i = 0;
    for (const struct node *p = head; p != NULL; p = p->next, i++) {
        uint64_t key = mix(seed + i);
        if (p->key != key || p->index != i || p->words != node_words(o, key, born))
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
 * too: they are roots only while the lists are being built. Returns the bytes built. */
__attribute__((noinline)) static size_t build(const struct options *o, struct node **heads, uint64_t *seeds,
                                              const bool *fresh, size_t n, size_t round)
{
    size_t bytes = 0;
    struct node **tails = calloc(n, sizeof *tails);
    if (tails == NULL)
        demo_die("out of memory");
    for (size_t i = 0; i < 4; i++) {
        for (size_t s = 0; s < n; s++) {
            if (!fresh[s] || i >= list_len(seeds[s]))
                continue;
            uint64_t key = mix(seeds[s] + i);
            uint32_t words = node_words(o, key, round);
            struct node *p = node_alloc(o, sizeof *p + words * 8);
            bytes += sizeof *p + words * 8;
            *p = (struct node){.key = key, .index = (uint32_t)i, .words = words};
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
    return bytes;
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

/* The heap's own size now: the arena's backing file blocks (retained pages included),
 * Boehm's heap (GC_get_heap_size: its blocks, free or not, less any it unmapped). */
static size_t heap_bytes(const struct options *o)
{
#ifdef ARENA_CONSERVATIVE_HAVE_BOEHM
    if (o->boehm)
        return GC_get_heap_size();
#else
    (void)o;
#endif
    arena_stats_t st;
    demo_check(arena_stats(A, &st), "arena_stats");
    return st.file_bytes;
}

struct figures {
    size_t live;          /* bytes reachable after the last collection */
    size_t peak_live;     /* the most bytes reachable at once: right after a round's build */
    size_t heap_peak;     /* the largest heap_bytes() seen after a build or a collection */
};

/* Which lists die in this round. uniform: every list, old or new, survives with --survive
 * %. shift: a list survives its first round with --survive %, then lives 1..lifetime
 * further rounds (dies[] holds the round it dies in). */
static void drop(const struct options *o, struct node **heads, uint64_t *seeds, bool *fresh, uint16_t *born,
                 uint16_t *dies, size_t n, size_t round)
{
    for (size_t s = 0; s < n; s++) {
        if (o->pattern == PATTERN_UNIFORM) {
            fresh[s] = rnd() % 100 >= o->survive;
        } else {
            if (fresh[s])
                dies[s] = (uint16_t)(rnd() % 100 < o->survive ? round + 1 + rnd() % o->lifetime : round);
            fresh[s] = dies[s] <= round;
        }
        if (fresh[s]) {
            heads[s] = NULL;
            seeds[s] = rnd();
            born[s] = (uint16_t)(round + 1);
        }
    }
}

/* The program. Its roots: heads[], a local (a VLA on this frame), and nothing else. */
__attribute__((noinline)) static uint64_t run(const struct options *o, struct figures *fig)
{
    size_t n = o->slots;
    struct node *heads[n];
    uint64_t seeds[n];
    bool fresh[n];
    uint16_t born[n], dies[n];
    for (size_t s = 0; s < n; s++) {
        heads[s] = NULL;
        seeds[s] = rnd();
        fresh[s] = true;
        born[s] = dies[s] = 0;
    }
    uint64_t sum = 0;
    *fig = (struct figures){0};
    for (size_t round = 0; round < o->rounds; round++) {
        /* Reachable now: last round's survivors (fig->live) and what this round built. */
        size_t now = fig->live + build(o, heads, seeds, fresh, n, round);
        fig->peak_live = now > fig->peak_live ? now : fig->peak_live;
        size_t h = heap_bytes(o);
        fig->heap_peak = h > fig->heap_peak ? h : fig->heap_peak;
        drop(o, heads, seeds, fresh, born, dies, n, round);
        collect(o);
        h = heap_bytes(o);
        fig->heap_peak = h > fig->heap_peak ? h : fig->heap_peak;
        fig->live = 0;
        for (size_t s = 0; s < n; s++)
            if (heads[s] != NULL)
                sum = mix(sum ^ verify(o, heads[s], seeds[s], born[s], &fig->live));
    }
    return sum;
}

static void usage(FILE *f)
{
    fputs("usage: arena-conservative [--gc arena|boehm] [--pattern shift|uniform] [--mesh on|off|both]\n"
          "                          [--slots N] [--rounds N] [--survive PERCENT] [--lifetime N]\n"
          "                          [--seed N] [--quick] [--json]\n"
          "  A program whose roots live only in its C locals: lists of small nodes built\n"
          "  interleaved, most dropped each round, a collection with the stack scanned\n"
          "  conservatively (arena_pin_stack), every reachable node verified by checksum.\n"
          "  --gc       arena (default) or boehm (Boehm GC, exit 77 when built without libgc)\n"
          "  --pattern  shift (default): each round's node sizes differ from the last round's\n"
          "             (a band of 40..80 bytes in round 0 moving up to 376..416 in round 7,\n"
          "             then again), and survivors live on for several rounds: a program whose\n"
          "             phases change its object sizes, which fragments a heap that cannot move\n"
          "             (a size class's block stays while one survivor is in it);\n"
          "             uniform: every round 32..128 bytes, each list survives each round with\n"
          "             --survive % (its peak is the live data, not fragmentation)\n"
          "  --mesh     on, off (arena_config_t.mesh) or both: run the arena twice, the library's\n"
          "             default (ARENA_MESH_AUTO, which does not mesh) then on (default: both;\n"
          "             with --json one run with the library's default); --gc arena only\n"
          "  --slots    lists alive at once right after a build (default 20000, uniform 60000;\n"
          "             --quick 4000)\n"
          "  --rounds   rounds (default 12; --quick 4)\n"
          "  --survive  % of a round's new lists that outlive it (default 25)\n"
          "  --lifetime shift: a surviving list lives 1..N further rounds (default 4)\n"
          "  --seed     seeds the sizes and survivors (default 42)\n"
          "  --quick    small sizes for a smoke test (the --slots and --rounds above)\n"
          "  --json     one line of figures for arena-bench\n"
          "Exit status: 0 every reachable node verified, 1 a node lost or changed (or an error),\n"
          "64 bad usage, 77 --gc boehm in a build without Boehm GC.\n",
          f);
}

static struct options parse(int argc, char **argv, bool *both)
{
    bool mesh_given = false, mesh_both = false;
    static const struct option longopts[] = {
        {"gc", required_argument, NULL, 'g'},     {"mesh", required_argument, NULL, 'm'},
        {"slots", required_argument, NULL, 's'},  {"rounds", required_argument, NULL, 'r'},
        {"survive", required_argument, NULL, 'v'}, {"seed", required_argument, NULL, 'e'},
        {"quick", no_argument, NULL, 'q'},        {"json", no_argument, NULL, 'j'},
        {"pattern", required_argument, NULL, 'p'}, {"lifetime", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},         {0, 0, 0, 0},
    };
    /* A single run (--json, arena-bench's peer.conservative) takes the library's default for
     * meshing, as a program that does not set it would. */
    struct options o = {.mesh = ARENA_MESH_AUTO, .pattern = PATTERN_SHIFT, .survive = 25, .lifetime = 4, .seed = 42};
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
            if (strcmp(optarg, "on") && strcmp(optarg, "off") && strcmp(optarg, "both"))
                demo_usage_error("--mesh: on, off or both, not '%s'", optarg);
            mesh_both = !strcmp(optarg, "both");
            o.mesh = !strcmp(optarg, "on") ? ARENA_MESH_ON : !strcmp(optarg, "off") ? ARENA_MESH_OFF : ARENA_MESH_AUTO;
            mesh_given = true;
            break;
        case 'p':
            if (strcmp(optarg, "shift") && strcmp(optarg, "uniform"))
                demo_usage_error("--pattern: shift or uniform, not '%s'", optarg);
            o.pattern = !strcmp(optarg, "shift") ? PATTERN_SHIFT : PATTERN_UNIFORM;
            break;
        case 'l': o.lifetime = (unsigned)demo_parse_uint("--lifetime", optarg, 1, 100); break;
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
    if (o.boehm && mesh_given)
        demo_usage_error("--mesh: meshing is the arena's, not Boehm GC's (--gc arena)");
    if (o.slots == 0)
        o.slots = quick ? 4000 : o.pattern == PATTERN_UNIFORM ? 60000 : 20000;
    if (o.rounds == 0)
        o.rounds = quick ? 4 : 12;
    *both = !o.boehm && (mesh_both || (!mesh_given && !o.json));
    return o;
}

static const char *mesh_name(const struct options *o)
{
    return o->boehm ? "none" : o->mesh == ARENA_MESH_ON ? "on" : o->mesh == ARENA_MESH_OFF ? "off" : "library default";
}

/* One run of the program on the chosen collector; prints its figures. */
static uint64_t one_run(const struct options *o)
{
    rng = o->seed;
    if (!o->boehm) {
        arena_config_t cfg;
        arena_config_init(&cfg);
        cfg.reserve = (size_t)4 << 30;
        cfg.mesh = o->mesh;
        demo_check(arena_create(&A, &cfg), "arena_create");
    }
    uint64_t t0 = demo_now_ns();
    struct figures fig;
    uint64_t sum = run(o, &fig);
    size_t live = fig.live;
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
        printf("{\"gc\":\"%s\",\"mesh\":\"%s\",\"total_ms\":%.3f,\"live_bytes\":%zu,\"heap_resident_bytes\":%zu,"
               "\"peak_live_bytes\":%zu,\"heap_peak_bytes\":%zu,\"rss_kb\":%ld,\"peak_rss_kb\":%ld,\"pages_meshed\":%zu,"
               "\"checksum\":\"%016" PRIx64 "\"}\n",
               o->boehm ? "boehm" : "arena", mesh_name(o), ms, live, resident,
               fig.peak_live, fig.heap_peak, rss, peak, last.pages_meshed, sum);
    } else {
        printf("arena-conservative: %s%s%s%s, %s pattern, %zu lists, %zu rounds, %u%% survive\n",
               o->boehm ? "Boehm GC" : "arena", o->boehm ? "" : " (meshing: ",
               o->boehm ? "" : mesh_name(o), o->boehm ? "" : ")",
               o->pattern == PATTERN_SHIFT ? "shift" : "uniform", o->slots, o->rounds, o->survive);
        printf("  live after the last collection  %8.2f MiB, at most %.2f MiB (after a build)\n",
               (double)live / 1048576.0, (double)fig.peak_live / 1048576.0);
        printf("  heap at its largest             %8.2f MiB (%.2fx the most live)%s\n",
               (double)fig.heap_peak / 1048576.0, fig.peak_live ? (double)fig.heap_peak / (double)fig.peak_live : 0.0,
               o->boehm ? ", GC_get_heap_size" : ", the backing file's blocks, retained pages included");
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

static bool reset_peak_rss(void)
{
    int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = write(fd, "5", 1) == 1;
    close(fd);
    return ok;
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
    if (!both) {
        one_run(&o);
        return 0;
    }
    /* Twice: the library's default (which does not mesh), then meshing on. Each run's peak
     * RSS is its own: writing 5 to clear_refs resets the process's VmHWM (Linux 4.0+). */
    o.mesh = ARENA_MESH_AUTO;
    uint64_t sum = one_run(&o);
    o.mesh = ARENA_MESH_ON;
    if (!reset_peak_rss())
        printf("  (the next run's peak RSS is the process's: /proc/self/clear_refs refused)\n");
    if (one_run(&o) != sum)
        demo_die("the runs with and without meshing disagree");
    return 0;
}
