#!/bin/sh
# check-req-tags.sh [SOURCE_DIR] -- every requirement a comment in arena/ cites is defined in
# docs/design.md. Fails (exit 1) listing the citations that name no requirement there.
#
# A requirement is defined by a list item that opens with its tag in bold: "- **.req.view.
# all-or-nothing**" (the Memory Pool System's style of stable mnemonic tags; "(R5.3)" after it
# keeps the old number as a second name while code still cites it) or, for requirements not yet
# given a tag, "- **R4.3**" / "- **R6.1 Title.**". Code cites either form; new code cites tags.
# Needs only grep, sed, sort and comm.
set -eu
src=${1:-$(dirname "$0")/..}
design="$src/docs/design.md"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

tag='(\.req(\.[a-z0-9][a-z0-9-]*)+|R[0-9]+\.[0-9]+)'
{
    grep -oE "^- \*\*$tag" "$design" | sed 's/^- \*\*//'
    # "- **.req.x.y** (R5.3)": the old number stays a name of the same requirement.
    grep -oE '^- \*\*\.req[^*]*\*\* \(R[0-9]+\.[0-9]+\)' "$design" | sed 's/.*(\(R[0-9.]*\))/\1/'
} | sort -u >"$tmp/defined"
grep -ohE "$tag" "$src"/arena/*.c "$src"/arena/*.h | sed 's/[.-]$//' | sort -u >"$tmp/cited"
comm -23 "$tmp/cited" "$tmp/defined" >"$tmp/missing"
echo "requirements defined in docs/design.md: $(wc -l <"$tmp/defined"), cited in arena/: $(wc -l <"$tmp/cited")"
if [ -s "$tmp/missing" ]; then
    echo "FAIL: cited in arena/ but not defined in docs/design.md:"
    while read -r t; do
        printf '  %s:' "$t"
        grep -lE "(^|[^0-9A-Za-z.])$(printf '%s' "$t" | sed 's/\./\\./g')([^0-9a-z-]|$)" "$src"/arena/*.c "$src"/arena/*.h |
            sed 's|.*/| |' | tr -d '\n'
        echo
    done <"$tmp/missing"
    exit 1
fi
echo "ok: every cited requirement is defined"
