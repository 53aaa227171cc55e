#!/usr/bin/env bash
# Fails when a file under src/ includes a header of a layer it must not reach.
#
# The directions are the architecture's: main.c wires everything; api and ingest use events and
# the store; delivery uses the store and crypto; nothing below api includes api; api reaches
# ingest and the dispatcher only through the callbacks main hands it (struct hl_api_hooks), and
# includes from delivery/ only the URL and address checks it needs to register a webhook.
#
# Usage: scripts/check-layering.sh [SRC_DIR]   check a source tree (default: src/ beside scripts/)
#        scripts/check-layering.sh --self-test  check this script on planted violations
set -euo pipefail

# What each folder of src/ may include besides its own headers: folders, or single headers.
# A folder that is not listed fails the check until it gets a rule here.
allowed_for() {
    case "$1" in
    # The receiver library's public header is a leaf (constants and types, nothing of src/): the
    # option table bounds listen's values by it.
    common) echo "hookline/verify.h" ;;
    crypto) echo "common" ;;
    store) echo "common" ;;
    events) echo "common store" ;;
    delivery) echo "common crypto store" ;;
    ingest) echo "common events store" ;;
    api) echo "common events store delivery/target.h crypto/token.h" ;;
    # The web console sits beside the API: its handlers are the API's (api/http.h), which
    # reaches the console only through the hook main hands it (hl_api_hooks.console).
    console) echo "common crypto events store api" ;;
    receiver) echo "common crypto hookline" ;;
    # The API client talks to a server over HTTP like any other client: it knows no store, no
    # event and no handler, only the common pieces (and libcurl).
    cli) echo "common" ;;
    *) return 1 ;;
    esac
}

# Prints "file:line: message" for every forbidden include under src_dir; returns 1 if any.
check_tree() {
    local src_dir=$1 bad=0 file rel layer allowed line num target norm top ok a
    # Project headers are named from src/ ("store/store.h") or include/ ("hookline/verify.h").
    local -a tops=(hookline)
    for d in "$src_dir"/*/; do
        tops+=("$(basename "$d")")
    done
    while IFS= read -r -d '' file; do
        rel=${file#"$src_dir"/}
        case "$rel" in
        */*) layer=${rel%%/*} ;;
        *) continue ;; # main.c wires everything
        esac
        if ! allowed=$(allowed_for "$layer"); then
            echo "src/$rel: no layering rule for src/$layer/; add one to $0" >&2
            bad=1
            continue
        fi
        while IFS= read -r line; do
            num=${line%%:*}
            [[ $line =~ include[[:space:]]*[\<\"]([^\"\>]+) ]] || continue
            target=${BASH_REMATCH[1]}
            # Resolve "../x/y.h" and same-folder "y.h" against the including file.
            if [[ $target == ../* || $target == ./* ]]; then
                norm=$(realpath -m --relative-to="$src_dir" "$(dirname "$file")/$target")
            elif [[ $target != */* && $line == *'"'* && -e $(dirname "$file")/$target ]]; then
                norm=$layer/$target
            else
                norm=$target
            fi
            top=${norm%%/*}
            [[ $norm == */* ]] || continue # a system header
            ok=0
            [[ " ${tops[*]} " == *" $top "* ]] || ok=1 # a system header such as <openssl/evp.h>
            [[ $top == "$layer" ]] && ok=1
            for a in $allowed; do
                [[ $a == "$top" || $a == "$norm" ]] && ok=1
            done
            if [[ $ok == 0 ]]; then
                echo "src/$rel:$num: $layer must not include $norm" \
                    "($layer may include: ${allowed:-nothing} and its own headers)" >&2
                bad=1
            fi
        done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "$file" || true)
    done < <(find "$src_dir" -type f \( -name '*.c' -o -name '*.h' \) -print0 | sort -z)
    return $bad
}

# Each case: a file, the include line it gets, and whether the check must pass (0) or fail (1).
self_test() {
    local -a cases=(
        'store/a.c|#include "common/err.h"|0'
        'store/a.c|#include "api/http.h"|1'
        'store/a.c|#include <api/http.h>|1'
        'store/a.c|#include "../api/http.h"|1'
        'store/a.c|  #  include "events/envelope.h"|1'
        'store/a.c|#include <stdio.h>|0'
        'store/a.c|#include <openssl/evp.h>|0'
        'common/a.h|#include "store/store.h"|1'
        'events/a.c|#include "store/store.h"|0'
        'events/a.c|#include "api/http.h"|1'
        'ingest/a.c|#include "events/envelope.h"|0'
        'ingest/a.c|#include "api/publish.h"|1'
        'delivery/a.c|#include "api/http.h"|1'
        'delivery/a.c|#include "ingest/worker.h"|1'
        'delivery/a.c|#include "crypto/sign.h"|0'
        'api/a.c|#include "delivery/target.h"|0'
        'api/a.c|#include "delivery/dispatcher.h"|1'
        'api/a.c|#include "ingest/worker.h"|1'
        'api/a.c|#include "api/http.h"|0'
        'api/a.c|#include "http.h"|0'
        'api/a.c|#include "crypto/token.h"|0'
        'api/a.c|#include "crypto/sign.h"|1'
        'api/a.c|#include "console/console.h"|1'
        'console/a.c|#include "api/http.h"|0'
        'console/a.c|#include "crypto/token.h"|0'
        'console/a.c|#include "delivery/dispatcher.h"|1'
        'store/a.c|#include "console/console.h"|1'
        'receiver/a.c|#include "hookline/verify.h"|0'
        'receiver/a.c|#include "store/store.h"|1'
        'cli/a.c|#include "common/json.h"|0'
        'cli/a.c|#include "cli/output.h"|0'
        'cli/a.c|#include "api/http.h"|1'
        'cli/a.c|#include "store/store.h"|1'
        'cli/a.c|#include "events/envelope.h"|1'
        'newlayer/a.c|#include "common/err.h"|1'
        'main.c|#include "api/http.h"|0'
    )
    local tmp fails=0 c file inc want got
    tmp=$(mktemp -d)
    mkdir -p "$tmp"/src/{common,crypto,store,events,delivery,ingest,api,console,receiver,cli,newlayer}
    touch "$tmp/src/api/http.h"
    for c in "${cases[@]}"; do
        IFS='|' read -r file inc want <<<"$c"
        printf '%s\n' "$inc" >"$tmp/src/$file"
        got=0
        check_tree "$tmp/src" 2>/dev/null || got=1
        rm "$tmp/src/$file"
        if [[ $got != "$want" ]]; then
            echo "self-test: src/$file with '$inc': check gave $got, want $want" >&2
            fails=1
        fi
    done
    rm -rf "$tmp"
    [[ $fails == 0 ]] && echo "self-test: ${#cases[@]} cases pass"
    return $fails
}

if [[ ${1:-} == --self-test ]]; then
    self_test
    exit
fi
src=${1:-$(cd "$(dirname "$0")/.." && pwd)/src}
if check_tree "$src"; then
    echo "layering: every include under $src points the allowed way"
else
    echo "layering: forbidden includes (see above)" >&2
    exit 1
fi
