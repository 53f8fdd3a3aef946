/*
 * os_memory.c -- how much memory the machine (or the memory cgroup the process lives in) has,
 * and how much of it is left: the backing file's default cap and the check that a large
 * request can be met before any of it is committed (docs/design.md §4, .req.backing.first-fit).
 *
 * Why this matters: the backing file's pages are shmem. Once fallocated they are charged to
 * no process, so a request larger than the machine does not make this process the OOM
 * killer's choice: it fills memory until the killer has shot everything else.
 *
 * Sources: /proc/meminfo (MemTotal, SwapTotal, MemAvailable, SwapFree) and the process's
 * memory cgroup from /proc/self/cgroup, v1 (memory.limit_in_bytes, memory.usage_in_bytes
 * under /sys/fs/cgroup/memory) or v2 (memory.max, memory.current under /sys/fs/cgroup), every
 * ancestor included, since each one's limit applies. Queries only: never injected.
 *
 * Layer 0, the OS layer with os.c (docs/design.md §2): calls the kernel and libc only.
 */
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NO_LIMIT SIZE_MAX

/* A byte count from a cgroup file; "max" (v2) and absurd v1 values mean no limit. */
static size_t read_bytes(const char *path)
{
    char buf[64];
    if (arena__os_read_small(path, buf, sizeof buf) <= 0 || strncmp(buf, "max", 3) == 0)
        return NO_LIMIT;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (errno || end == buf || v >= (1ull << 62))
        return NO_LIMIT;
    return (size_t)v;
}

/* kB value of a /proc/meminfo field, or 0. */
static size_t meminfo_kb(const char *text, const char *field)
{
    const char *p = strstr(text, field);
    if (!p)
        return 0;
    return (size_t)strtoull(p + strlen(field), NULL, 10) * 1024;
}

struct machine {
    size_t total, left;
};

static struct machine machine_memory(void)
{
    struct machine m = {NO_LIMIT, NO_LIMIT};
    char text[4096];
    if (arena__os_read_small("/proc/meminfo", text, sizeof text) <= 0)
        return m;
    size_t mem = meminfo_kb(text, "MemTotal:"), avail = meminfo_kb(text, "MemAvailable:");
    if (mem == 0)
        return m;
    m.total = mem + meminfo_kb(text, "SwapTotal:");
    m.left = (avail ? avail : meminfo_kb(text, "MemFree:")) + meminfo_kb(text, "SwapFree:");
    return m;
}

/* The directory of the process's memory cgroup, or "" when there is none we can read. */
static void cgroup_dir(char *dir, size_t cap)
{
    char text[4096];
    dir[0] = '\0';
    if (arena__os_read_small("/proc/self/cgroup", text, sizeof text) <= 0)
        return;
    const char *v1 = NULL, *v2 = NULL;
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (!c2)
            continue;
        *c2 = '\0';
        const char *ctrls = c1 + 1, *path = c2 + 1;
        if (strcmp(line, "0") == 0 && *ctrls == '\0')
            v2 = path;
        for (const char *s = ctrls; s && *s; s = strchr(s, ',') ? strchr(s, ',') + 1 : NULL)
            if (strncmp(s, "memory", 6) == 0 && (s[6] == ',' || s[6] == '\0'))
                v1 = path;
    }
    /* Paths are relative to the namespace's root, which is where the mounts are too. */
    if (v1 && access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) == 0) {
        if ((size_t)snprintf(dir, cap, "/sys/fs/cgroup/memory%s", strcmp(v1, "/") ? v1 : "") >= cap)
            dir[0] = '\0';
    } else if (v2 && access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
        if ((size_t)snprintf(dir, cap, "/sys/fs/cgroup%s", strcmp(v2, "/") ? v2 : "") >= cap)
            dir[0] = '\0';
    }
}

/* The lowest limit on the way from the process's cgroup to the root, and what it leaves. */
static struct machine cgroup_memory(void)
{
    struct machine m = {NO_LIMIT, NO_LIMIT};
    char dir[512], path[600];
    cgroup_dir(dir, sizeof dir);
    bool v1 = strncmp(dir, "/sys/fs/cgroup/memory", 21) == 0;
    size_t root_len = v1 ? 21 : 14;
    while (strlen(dir) >= root_len) {
        snprintf(path, sizeof path, "%s/%s", dir, v1 ? "memory.limit_in_bytes" : "memory.max");
        size_t limit = read_bytes(path);
        if (limit != NO_LIMIT) {
            snprintf(path, sizeof path, "%s/%s", dir, v1 ? "memory.usage_in_bytes" : "memory.current");
            size_t used = read_bytes(path);
            size_t left = used == NO_LIMIT ? limit : (used < limit ? limit - used : 0);
            if (limit < m.total)
                m.total = limit;
            if (left < m.left)
                m.left = left;
        }
        char *slash = strrchr(dir, '/');
        if (!slash || (size_t)(slash - dir) < root_len)
            break;
        *slash = '\0';
    }
    return m;
}

static struct machine memory_now(void)
{
    struct machine m = machine_memory(), c = cgroup_memory();
    if (c.total < m.total)
        m.total = c.total;
    if (c.left < m.left)
        m.left = c.left;
    return m;
}

size_t arena__os_memory_limit(void)
{
    return memory_now().total;
}

size_t arena__os_memory_left(void)
{
    return memory_now().left;
}
