#!/bin/bash
# The container start of bench/node.sh without the container network (`treadle node --network none`:
# containers get only lo), to read side by side with bench/node.sh's default (VIP, veth, firewall elements).
exec env NODE_ARGS="--network none ${NODE_ARGS:-}" "$(dirname "$0")/node.sh" "$@"
