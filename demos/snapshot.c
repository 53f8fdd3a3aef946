/*
 * arena-snapshot -- incremental snapshots of a heap through page tracking.
 *
 *   arena-snapshot [--tracker auto|sigsegv|uffd] [--rounds N] [--objects N] [--file PATH]
 *
 * The heap view is tracked for writes. Round 0 writes every heap page to the snapshot
 * file (the file is an image of the heap view: page i at offset i * page size); every
 * later round mutates and allocates some objects, then writes only the pages
 * arena_track_take reports. After each round the snapshot is restored from the file and
 * compared with the live heap by checksum: it must match byte for byte.
 */
#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arena.h"

static void die(const char *what, int err)
{
    fprintf(stderr, "arena-snapshot: %s: %s\n", what, arena_strerror(err));
    exit(1);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Checksum of the heap view's pages [0, slots): pages that show nothing count as zeros. */
static uint64_t heap_sum(arena_view_t *h, size_t slots, size_t page, const unsigned char *zero)
{
    const unsigned char *base = arena_view_base(h);
    uint64_t sum = 0xcbf29ce484222325ull;
    for (size_t s = 0; s < slots; s++)
        sum = fnv(sum, arena_view_file_page(h, s) == ARENA_NO_PAGE ? zero : base + s * page, page);
    return sum;
}

static uint64_t file_sum(int fd, size_t slots, size_t page, unsigned char *buf)
{
    uint64_t sum = 0xcbf29ce484222325ull;
    for (size_t s = 0; s < slots; s++) {
        ssize_t got = pread(fd, buf, page, (off_t)(s * page));
        if (got < 0)
            die("pread", errno);
        memset(buf + got, 0, page - (size_t)got); /* past the end of the file: zeros */
        sum = fnv(sum, buf, page);
    }
    return sum;
}

static size_t used_slots(arena_view_t *h)
{
    size_t n = arena_view_slots(h), used = 0;
    for (size_t s = 0; s < n; s++)
        if (arena_view_file_page(h, s) != ARENA_NO_PAGE)
            used = s + 1;
    return used;
}

static void save_page(int fd, arena_view_t *h, const char *addr, size_t page)
{
    size_t slot = (size_t)(addr - (const char *)arena_view_base(h)) / page;
    if (pwrite(fd, addr, page, (off_t)(slot * page)) != (ssize_t)page)
        die("pwrite", errno);
}

static void usage(FILE *f)
{
    fputs("usage: arena-snapshot [--tracker auto|sigsegv|uffd] [--rounds N] [--objects N] [--file PATH]\n"
          "Incremental snapshots of a heap: round 0 writes every heap page to the snapshot file, each\n"
          "later round mutates some objects and writes only the pages tracking reports as written;\n"
          "after every round the file is checked against the heap by checksum.\n"
          "  --tracker NAME  how written pages are found: libsigsegv, userfaultfd, or auto (default)\n"
          "  --rounds N      incremental rounds after the full one (default 6)\n"
          "  --objects N     objects allocated before round 0 (default 4000)\n"
          "  --file PATH     keep the snapshot in PATH (default: an unlinked file in /tmp)\n"
          "Exit status: 0 every round matched, 1 a mismatch or an error, 64 a bad command line.\n", f);
}

int main(int argc, char **argv)
{
    int tracker = ARENA_TRACKER_AUTO, rounds = 6, objects = 4000;
    const char *path = NULL;
    static const struct option longopts[] = {
        {"tracker", required_argument, NULL, 't'}, {"rounds", required_argument, NULL, 'r'},
        {"objects", required_argument, NULL, 'o'}, {"file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},          {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (!strcmp(optarg, "sigsegv"))
                tracker = ARENA_TRACKER_SIGSEGV;
            else if (!strcmp(optarg, "uffd"))
                tracker = ARENA_TRACKER_UFFD;
            else if (!strcmp(optarg, "auto"))
                tracker = ARENA_TRACKER_AUTO;
            else
                demo_usage_error("--tracker: unknown tracker '%s' (auto, sigsegv, uffd)", optarg);
            break;
        case 'r': rounds = (int)demo_parse_uint("--rounds", optarg, 0, 100000); break;
        case 'o': objects = (int)demo_parse_uint("--objects", optarg, 1, 10000000); break;
        case 'f': path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return DEMO_EXIT_USAGE;
        }
    }
    if (optind < argc)
        demo_usage_error("unexpected argument '%s' (see --help)", argv[optind]);
    arena_config_t cfg;
    arena_config_init(&cfg);
    cfg.tracker = tracker;
    cfg.reserve = (size_t)1 << 30;
    arena_t *a;
    int err = arena_create(&a, &cfg);
    if (err)
        die("arena_create", err);
    size_t page = arena_page_size(a);

    char tmpl[] = "/tmp/arena-snapshot-XXXXXX";
    int fd = path ? open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : mkstemp(tmpl);
    if (fd < 0)
        die("snapshot file", errno);
    if (!path)
        unlink(tmpl);

    unsigned char **obj = calloc((size_t)objects * 2, sizeof *obj);
    size_t *len = calloc((size_t)objects * 2, sizeof *len);
    size_t nobj = 0;
    for (; nobj < (size_t)objects; nobj++) {
        len[nobj] = 16 + rnd() % 1500;
        if (!(obj[nobj] = arena_alloc(a, len[nobj])))
            die("arena_alloc", errno);
        memset(obj[nobj], (int)(nobj & 0xff), len[nobj]);
    }

    arena_view_t *h = arena_heap_view(a);
    if ((err = arena_track_start(h, ARENA_TRACK_WRITES)))
        die("arena_track_start", err);
    printf("tracker: %s\n", arena_track_backend(h) == ARENA_TRACKER_UFFD ? "userfaultfd" : "libsigsegv");

    size_t cap = 4096;
    void **pages = malloc(cap * sizeof *pages);
    unsigned char *zero = calloc(1, page), *buf = malloc(page);
    int bad = 0;
    for (int r = 0; r <= rounds; r++) {
        size_t written = 0;
        if (r == 0) {
            /* The full image; pages touched meanwhile are reported again next round. */
            size_t got;
            do {
                if ((err = arena_track_take(h, pages, cap, &got)))
                    die("arena_track_take", err);
            } while (got == cap);
            size_t used = used_slots(h);
            for (size_t s = 0; s < used; s++)
                if (arena_view_file_page(h, s) != ARENA_NO_PAGE) {
                    save_page(fd, h, (char *)arena_view_base(h) + s * page, page);
                    written++;
                }
        } else {
            /* Mutate a few percent of the objects and grow the heap a little. */
            for (size_t i = 0; i < nobj / 30; i++) {
                size_t k = rnd() % nobj;
                obj[k][rnd() % len[k]] ^= (unsigned char)(1 + rnd() % 255);
            }
            for (int i = 0; i < 20 && nobj < (size_t)objects * 2; i++, nobj++) {
                len[nobj] = 16 + rnd() % 3000;
                if (!(obj[nobj] = arena_alloc(a, len[nobj])))
                    die("arena_alloc", errno);
                memset(obj[nobj], 0x5a, len[nobj]);
            }
            size_t got;
            do {
                if ((err = arena_track_take(h, pages, cap, &got)))
                    die("arena_track_take", err);
                for (size_t i = 0; i < got; i++)
                    save_page(fd, h, pages[i], page);
                written += got;
            } while (got == cap);
        }
        size_t used = used_slots(h);
        uint64_t live = heap_sum(h, used, page, zero);
        uint64_t saved = file_sum(fd, used, page, buf);
        printf("round %d: %zu pages written of %zu heap pages, heap %016llx snapshot %016llx %s\n",
               r, written, used, (unsigned long long)live, (unsigned long long)saved,
               live == saved ? "ok" : "MISMATCH");
        bad |= live != saved;
    }
    arena_track_stop(h);
    arena_destroy(a);
    close(fd);
    free(pages), free(zero), free(buf), free(obj), free(len);
    printf("%s\n", bad ? "snapshot differs from the heap" : "every round restored byte for byte");
    return bad;
}
