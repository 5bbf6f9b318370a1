#!/usr/bin/env bash
# Moved: bench/run.sh measures bare reverse_proxy, gatehouse (warm and
# uncached) and optionally oauth2-proxy; see bench/README.md.
#
#   scripts/load.sh [seconds-per-round] [rounds] [connections]
exec "$(dirname "$0")/../bench/run.sh" "$@"
