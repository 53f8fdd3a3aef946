/*
 * prop_util.h -- what the property tests share (test_collect.c, test_trace.c): a seeded
 * xorshift generator and the payload word each object's checksum compares.
 */
#ifndef ARENA_TEST_PROP_UTIL_H
#define ARENA_TEST_PROP_UTIL_H

#include <stddef.h>
#include <stdint.h>

static uint64_t rng_state;
static inline uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Word i of the payload of an object with this seed (splitmix64's finaliser). */
static inline uint64_t word_of(uint64_t seed, size_t i)
{
    uint64_t x = seed + i * 0x9E3779B97F4A7C15ull;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    return x ^ (x >> 29);
}

#endif
