#!/usr/bin/env bash
# The base images of every teamd-hitless image, built offline-capable from Debian packages:
#   debootstrap --variant=minbase bookworm (+ the packages below), stripped, tarred into the
#   cache dir, then `docker import`ed. Two flavours:
#     product  teamd-hitless/base:<hash>      the teamd image's: no Redis, no Open vSwitch, no
#                                             nsenter (the product needs none of them inside)
#     lab      teamd-hitless/base-lab:<hash>  + redis-server, openvswitch-switch: the partner
#                                             and lab images (the compose lab's redis, partner,
#                                             wiring), never the product
# <hash> covers this file and the flavour (so the package lists and every step below): editing
# it makes new bases; anything else never rebuilds them. With the tarball cached, a rebuild is an
# import (~1 s); with the image present, nothing is done. Downloaded .debs are kept in
# $CACHE/base/debs, so the second flavour's debootstrap downloads only what the first lacked.
#
#   build_base.sh [--flavor product|lab] --print-tag   print its tag and exit
#   build_base.sh [--flavor product|lab]               make sure that image exists
#
# Environment: TEAMD_HITLESS_CACHE (default /var/cache/teamd-hitless), TEAMD_HITLESS_MIRROR
# (default: the Debian mirror of the host's apt sources, else http://deb.debian.org/debian).
set -euo pipefail

SUITE=bookworm
# python3-venv brings ensurepip's pip/setuptools wheels (python3-pip is not needed: the images
# create a venv); tini is PID 1 of every image; iproute2/procps (ip, ps) are what a person
# debugging needs. util-linux is Essential (always there); the product flavour drops nsenter
# from it: nothing in the teamd container enters namespaces (the process runtime uses the
# host's nsenter; without CAP_SYS_ADMIN setns would fail anyway).
PRODUCT_PACKAGES=(python3 python3-venv iproute2 tini procps)
# the lab flavour: redis-server serves the compose lab's Redis, openvswitch-switch is the
# partner; util-linux's nsenter is the wiring step's
LAB_PACKAGES=("${PRODUCT_PACKAGES[@]}" redis-server openvswitch-switch util-linux)

FLAVOR=product
PRINT=0
while [ $# -gt 0 ]; do
  case $1 in
    --flavor) FLAVOR=${2:-}; shift 2 ;;
    --flavor=*) FLAVOR=${1#*=}; shift ;;
    --print-tag) PRINT=1; shift ;;
    *) echo "images: base: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
case $FLAVOR in
  product) PACKAGES=("${PRODUCT_PACKAGES[@]}"); REPO_NAME=teamd-hitless/base ;;
  lab) PACKAGES=("${LAB_PACKAGES[@]}"); REPO_NAME=teamd-hitless/base-lab ;;
  *) echo "images: base: --flavor must be product or lab, not '$FLAVOR'" >&2; exit 2 ;;
esac

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${TEAMD_HITLESS_CACHE:-/var/cache/teamd-hitless}
HASH=$( { sha256sum "$HERE/build_base.sh" | cut -c1-64; echo "$FLAVOR"; } | sha256sum | cut -c1-12)
TAG=$REPO_NAME:$HASH

if [ $PRINT = 1 ]; then
  echo "$TAG"
  exit 0
fi

die() { echo "images: base ($FLAVOR): $*" >&2; exit 1; }

if docker image inspect "$TAG" >/dev/null 2>&1; then
  echo "images: base $TAG (cached)"
  exit 0
fi

mkdir -p "$CACHE/base"
TARBALL=$CACHE/base/$HASH.tar

# The mirror the host's apt uses for the suite (deb822 *.sources or one-line *.list).
host_mirror() {
  python3 - "$1" <<'EOF'
import glob, sys
suite = sys.argv[1]
files = ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*.list")) \
    + sorted(glob.glob("/etc/apt/sources.list.d/*.sources"))
for f in files:
    try:
        text = open(f).read()
    except OSError:
        continue
    if f.endswith(".sources"):
        for stanza in text.split("\n\n"):
            d = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[0].isspace():
                    continue
                k, v = line.split(":", 1)
                d[k.strip().lower()] = v.split()
            if (d.get("enabled", ["yes"])[0] != "no" and "deb" in d.get("types", [])
                    and suite in d.get("suites", []) and "main" in d.get("components", [])):
                print(d["uris"][0]); sys.exit(0)
    else:
        for line in text.splitlines():
            w = line.split("#", 1)[0].split()
            if w[:1] != ["deb"]:
                continue
            w = [x for x in w[1:] if not x.startswith("[")]
            if len(w) >= 3 and w[1] == suite and "main" in w[2:]:
                print(w[0]); sys.exit(0)
print("http://deb.debian.org/debian")
EOF
}

if [ ! -s "$TARBALL" ]; then
  command -v debootstrap >/dev/null || {
    echo "images: base: installing Debian package debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap \
      >/dev/null || die "apt-get install debootstrap failed; run it by hand to see why"
  }
  MIRROR=${TEAMD_HITLESS_MIRROR:-$(host_mirror "$SUITE")}
  pkgs=$(IFS=,; echo "${PACKAGES[*]}")
  ROOT=$CACHE/base/$HASH.root
  rm -rf "$ROOT"
  echo "images: base ($FLAVOR): debootstrap --variant=minbase $SUITE from $MIRROR (about a minute)"
  t0=$(date +%s)
  mkdir -p "$CACHE/base/debs"
  if ! debootstrap --variant=minbase --cache-dir="$CACHE/base/debs" --include="$pkgs" \
      "$SUITE" "$ROOT" "$MIRROR" \
      >"$CACHE/base/$HASH.debootstrap.log" 2>&1; then
    tail -n 20 "$CACHE/base/$HASH.debootstrap.log" >&2
    [ -f "$ROOT/debootstrap/debootstrap.log" ] && tail -n 20 "$ROOT/debootstrap/debootstrap.log" >&2
    rm -rf "$ROOT"
    die "debootstrap failed (log $CACHE/base/$HASH.debootstrap.log); check the mirror $MIRROR" \
        "or set TEAMD_HITLESS_MIRROR"
  fi
  # Nothing specific to the machine that built it: generic apt sources, no hostname, no
  # resolver, no machine id, no OVS database or system id (the partner creates a fresh one).
  cat >"$ROOT/etc/apt/sources.list" <<EOF
deb http://deb.debian.org/debian $SUITE main
deb http://deb.debian.org/debian $SUITE-updates main
deb http://deb.debian.org/debian-security $SUITE-security main
EOF
  : >"$ROOT/etc/hostname"
  : >"$ROOT/etc/resolv.conf"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$ROOT/etc/hosts"
  [ -e "$ROOT/etc/machine-id" ] && : >"$ROOT/etc/machine-id"
  rm -f "$ROOT/var/lib/dbus/machine-id"
  rm -f "$ROOT"/etc/openvswitch/conf.db "$ROOT"/etc/openvswitch/.conf.db.~lock~ \
        "$ROOT"/etc/openvswitch/system-id.conf
  # Strip: apt lists and caches, docs (copyright files stay), man pages, locales, logs.
  rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/* "$ROOT"/var/cache/debconf/*-old \
         "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* "$ROOT"/usr/share/locale/* \
         "$ROOT"/usr/share/lintian "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/* \
         "$ROOT"/debootstrap
  if [ "$FLAVOR" = product ]; then
    # nothing in the teamd container enters namespaces; dpkg keeps it out on later installs
    rm -f "$ROOT/usr/bin/nsenter"
    echo "path-exclude /usr/bin/nsenter" >"$ROOT/etc/dpkg/dpkg.cfg.d/teamd-hitless-no-nsenter"
  fi
  find "$ROOT/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$ROOT/usr/share/doc" -mindepth 1 -type d -empty -delete
  # Later dpkg runs in derived images skip the same files.
  cat >"$ROOT/etc/dpkg/dpkg.cfg.d/teamd-hitless-nodoc" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF
  tar -C "$ROOT" --numeric-owner -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  rm -rf "$ROOT"
  echo "images: base ($FLAVOR): rootfs tarball $TARBALL ($(du -m "$TARBALL" | cut -f1) MB) in" \
       "$(( $(date +%s) - t0 )) s"
fi

t0=$(date +%s)
docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' \
  --change "LABEL org.opencontainers.image.title=teamd-hitless-base" \
  --change "LABEL teamd-hitless.role=base" \
  --change "LABEL teamd-hitless.base=$HASH" \
  --change "LABEL teamd-hitless.base-flavor=$FLAVOR" \
  --message "debootstrap --variant=minbase $SUITE + ${PACKAGES[*]}" \
  "$TARBALL" "$TAG" >/dev/null || die "docker import $TARBALL failed"
echo "images: base $TAG imported from $TARBALL in $(( $(date +%s) - t0 )) s"
