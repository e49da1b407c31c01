#!/usr/bin/env bash
# A PostgreSQL listing page of 100 installations in instructions (valgrind --tool=callgrind), the
# client's side only (Benchmarks/PageCount; PostgreSQL runs outside valgrind): the store's
# `metadata(matching:after:limit:)`, the same query on the store's `PostgresClient` reading only
# the rows, and the same query decoding each row with PostgresNIO's `decode`; then the same three
# for a page of 1,000 of the background refresher's due rows (`dueForRefresh(before:after:limit:)`,
# the bare query decoding cell by cell as the store does). A run with the same set-up and no pages
# is subtracted, so each figure is a page's own instructions.
#
#   Scripts/callgrind-page.sh [PAGES]     (default 200; builds it first, with the benchmarks)
#
# Needs valgrind (apt-get install valgrind), and initdb/pg_ctl unless DATABASE_URL names a server.
set -euo pipefail
source "$(dirname "$0")/callgrind-lib.sh"
pages="${1:-200}"
callgrind_prepare PageCount
none="$(callgrind_count none "$pages" pages)"
bare="$(callgrind_count bare "$pages" pages)"
decoded="$(callgrind_count decoded "$pages" pages)"
ours="$(callgrind_count ours "$pages" pages)"
due_bare="$(callgrind_count due-bare "$pages" pages)"
due_decoded="$(callgrind_count due-decoded "$pages" pages)"
due_ours="$(callgrind_count due-ours "$pages" pages)"
python3 - "$pages" "$none" "$bare" "$decoded" "$ours" "$due_bare" "$due_decoded" "$due_ours" <<'PY'
import sys
n, none, bare, decoded, ours, due_bare, due_decoded, due_ours = (int(x) for x in sys.argv[1:])
b, d, o = ((x - none) / n for x in (bare, decoded, ours))
print(f"pages {n} of 100 rows (101 asked); set-up {none:,} instructions")
print(f"bare query, rows not read:                 {b:,.0f} instructions a page")
print(f"bare query, rows decoded by PostgresNIO:   {d:,.0f} instructions a page")
print(f"the store's page (decoded, 15 columns):    {o:,.0f} instructions a page")
print(f"ratio: {o / b:.2f}x the bare query that reads no row, {o / d:.2f}x the one that decodes")
b, d, o = ((x - none) / n for x in (due_bare, due_decoded, due_ours))
print(f"the refresher's page of 1,000 due rows: bare query, rows not read {b:,.0f}; decoded by PostgresNIO {d:,.0f}; "
      f"the store's {o:,.0f} instructions a page")
print(f"ratio: {o / b:.2f}x the bare query that reads no row, {o / d:.2f}x the one that decodes")
PY
