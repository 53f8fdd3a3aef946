/*
 * driver.c -- runs fuzz_api.c without libFuzzer (a compiler without -fsanitize=fuzzer):
 * `fuzz_api_driver N [seed]` feeds N pseudo-random inputs; `fuzz_api_driver FILE...`
 * replays inputs (crash reproducers saved by libFuzzer). Deterministic for a given seed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static int replay(const char *path)
{
    static uint8_t buf[1 << 16];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

int main(int argc, char **argv)
{
    char *end;
    unsigned long runs = argc > 1 ? strtoul(argv[1], &end, 10) : 2000;
    if (argc > 1 && *end != '\0') {
        int rc = 0;
        for (int i = 1; i < argc; i++)
            rc |= replay(argv[i]);
        return rc;
    }
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) | 1 : 0x9e3779b97f4a7c15u;
    static uint8_t buf[2048];
    for (unsigned long r = 0; r < runs; r++) {
        size_t n = next(&seed) % sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)next(&seed);
        LLVMFuzzerTestOneInput(buf, n);
    }
    printf("fuzz_api_driver: %lu inputs\n", runs);
    return 0;
}
