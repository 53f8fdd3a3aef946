#!/bin/sh
# check-layers.sh LIBARENA.a -- the file call graph of arena/ from the library's own object
# files, and the layering rules of docs/design.md §2 checked on it.
#
# nm gives, per object file, the global symbols it defines and the ones it uses; a use of a
# symbol another file of the library defines is a call edge (or a data reference) between
# the two files. The check fails (exit 1) when
#   - the graph has a circle (tsort finds a loop): a lower layer calls an upper one;
#   - a file outside the mapping, view and tracking layers calls a mapping wrapper
#     (arena__os_mmap, _mremap, _munmap, _mprotect, _madvise);
#   - a file other than map.c takes the backing file's descriptor (arena__backing_fd);
#   - a file outside the OS layer (os.c, os_*.c) calls the kernel's file and mapping calls.
# Needs only nm (binutils), awk, sort and tsort (coreutils): what the build itself needs.
set -eu
lib=${1:?usage: check-layers.sh path/to/libarena.a}
NM=${NM:-nm}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "file symbol" rows; nm -A prints archive:member: value type symbol.
"$NM" -A -g --defined-only "$lib" |
    awk '{ n = split($1, p, ":"); f = p[n - 1]; sub(/\.o$/, "", f); print f, $NF }' | sort -u >"$tmp/def"
"$NM" -A -u "$lib" |
    awk '{ n = split($1, p, ":"); f = p[n - 1]; sub(/\.o$/, "", f); print f, $NF }' | sort -u >"$tmp/use"
[ -s "$tmp/def" ] || { echo "check-layers: no symbols in $lib" >&2; exit 1; }

# Edges "caller callee symbol", then grouped per file pair.
awk 'NR == FNR { def[$2] = $1; next } ($2 in def) && def[$2] != $1 { print $1, def[$2], $2 }' \
    "$tmp/def" "$tmp/use" | sort >"$tmp/edges"
echo "call graph of arena/ (file -> file it calls: symbols)"
awk '{ k = $1 " -> " $2; if (k != last) { if (last != "") print line; line = "  " k ": " $3; last = k }
       else line = line ", " $3 }
     END { if (last != "") print line }' "$tmp/edges"
files=$(cut -d' ' -f1 "$tmp/def" | sort -u | wc -l)
edges=$(awk '{ print $1, $2 }' "$tmp/edges" | sort -u | wc -l)
echo "files $files, file pairs with calls $edges"

status=0
# tsort lists callers before callees; reversed, the layers from the bottom up.
if awk '{ print $1, $2 } END { }' "$tmp/edges" | sort -u | tsort >"$tmp/order" 2>"$tmp/loop"; then
    echo "bottom-up order: $(tac "$tmp/order" | tr '\n' ' ')"
else
    echo "FAIL: the call graph has a circle (a lower layer calls an upper one):"
    sed 's/^/  /' "$tmp/loop"
    status=1
fi

check() { # rule-name allowed-files-regex symbols-regex
    awk -v allow="$2" -v syms="$3" '$2 ~ ("^(" syms ")$") && $1 !~ ("^(" allow ")$") { print "  " $1 " uses " $2 }' \
        "$tmp/use" >"$tmp/bad"
    if [ -s "$tmp/bad" ]; then
        echo "FAIL: $1:"
        cat "$tmp/bad"
        status=1
    else
        echo "ok: $1"
    fi
}
check "mapping wrappers only in the mapping, view and tracking layers" \
    'map\.c|view\.c|track\.c|track_sigsegv\.c|track_uffd\.c|os(_[a-z]+)?\.c' \
    'arena__os_(mmap|mremap|munmap|mprotect|madvise)'
check "the backing file's descriptor only in the mapping layer" 'map\.c|backing\.c' 'arena__backing_fd'
check "only the OS layer (os.c, os_*.c) calls the kernel's file and mapping calls" 'os(_[a-z]+)?\.c' \
    'mmap|mmap64|munmap|mremap|mprotect|madvise|remap_file_pages|memfd_create|open|open64|openat|ftruncate|ftruncate64|fallocate|fallocate64|fcntl|fcntl64|ioctl|syscall|mincore|pipe2|read|write|close|fstat|fstat64'
exit $status
