#!/bin/sh
# check-req-tags.sh [SOURCE_DIR] -- requirement citations stay true (docs/design.md §3).
# Fails (exit 1), listing file:line, when
#  - a comment in arena/, include/, tests/, demos/ or a page in docs/ or README.md cites a
#    requirement tag (".req.view.all-or-nothing") that docs/design.md does not define;
#  - code in arena/, include/, tests/ or demos/ still cites a requirement by its former number
#    (R5.3, R7.3a, R7a.1, R9): numbers were renamed by stable tags and a number is not checked;
#  - a comment in arena/ states a measurement: a number with a unit of time (ns, us, µs, ms, s),
#    a rate (MiB/s, GiB/s), a percentage or a ratio (3x). Figures belong in design.md §1, the
#    README and generated bench output. Sizes (2 MiB aligned) are not measurements.
# A requirement is defined by a list item that opens with its tag in bold: "- **.req.view.
# all-or-nothing** (R5.3) ..." (the Memory Pool System's style; the number in parentheses is
# its former name, for reading old commits only). Needs only grep, sed, sort and comm.
set -eu
src=${1:-$(dirname "$0")/..}
design="$src/docs/design.md"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

# Files that cite requirements: sources under arena/, include/, tests/, demos/; the docs.
code_files() {
    find "$src/arena" "$src/include" "$src/tests" "$src/demos" -type f \
        \( -name '*.c' -o -name '*.h' -o -name '*.cmake' -o -name '*.sh' -o -name 'CMakeLists.txt' \) | sort
}
{ code_files; find "$src/docs" -name '*.md'; echo "$src/README.md"; } >"$tmp/files"

tag='\.req(\.[a-z0-9][a-z0-9-]*)+'
grep -oE "^- \*\*$tag" "$design" | sed 's/^- \*\*//' | sort -u >"$tmp/defined"
# file:line:tag for every citation; a tag ends before a sentence's full stop or dash.
xargs grep -onE "$tag" <"$tmp/files" | sed 's/[.-]$//' | sort -t: -k3 >"$tmp/cites"
cut -d: -f3 "$tmp/cites" | sort -u >"$tmp/cited"
comm -23 "$tmp/cited" "$tmp/defined" >"$tmp/missing"
echo "requirement tags defined in docs/design.md: $(wc -l <"$tmp/defined"), cited: $(wc -l <"$tmp/cited")"
if [ -s "$tmp/missing" ]; then
    echo "FAIL: cited but not defined in docs/design.md:"
    while read -r t; do
        grep -F ":$t" "$tmp/cites" | awk -F: -v t="$t" '$3 == t { print "  " $1 ":" $2 ": " t }' | sed "s|^  $src/|  |"
    done <"$tmp/missing"
    status=1
fi

# Former numbers: "R5.3", "R7.3a", "R7a.1", "R9" as a word (not inside an identifier).
code_files | xargs grep -nE '(^|[^A-Za-z0-9_])R[0-9]+a?(\.[0-9]+a?)?([^A-Za-z0-9_]|$)' >"$tmp/numbers" || true
if [ -s "$tmp/numbers" ]; then
    echo "FAIL: code cites a requirement by its former number (cite its .req tag, docs/design.md):"
    sed "s|^$src/|  |" "$tmp/numbers"
    status=1
fi

# Measurements in arena/ comments: the number with its unit after a comment opener.
num='[0-9][0-9.,]*[ -]?'
unit='(ns|us|µs|ms|s|sec|seconds|[KMG]i?B/s|%|x|×)'
grep -nE "(/\*|//|^[[:space:]]*\*).*(^|[^A-Za-z0-9_.])$num$unit([^A-Za-z0-9_]|$)" \
    "$src"/arena/*.c "$src"/arena/*.h >"$tmp/figures" || true
if [ -s "$tmp/figures" ]; then
    echo "FAIL: a comment in arena/ states a measurement (move it to docs/design.md §1):"
    sed "s|^$src/|  |" "$tmp/figures"
    status=1
fi

[ "$status" = 0 ] && echo "ok: every cited tag is defined, no former numbers in code, no figures in arena/ comments"
exit "$status"
