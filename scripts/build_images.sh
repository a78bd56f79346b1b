#!/usr/bin/env bash
# Builds the teamd-hitless container images offline (`make images` runs it after `make setup`
# and scripts/docker_engine.sh). Nothing is fetched while an image builds: the bases are Debian
# packages (containers/base/build_base.sh: `product` for teamd, without Redis or Open vSwitch;
# `lab` with them for partner and lab), the Python wheels are built on the host (PyPI is
# reachable from the host only) by a venv of Debian's python3, the interpreter the images run,
# and every `docker build` runs with the legacy builder and --network none.
#
#   build_images.sh                    bases, teamd:<V> + :latest, partner:<V> + :latest,
#                                      lab:<V> + :latest (lab base + teamd's venv + the lab
#                                      package), and the
#                                      upgrade-test tag teamd:<U> (V = pyproject version,
#                                      U = --upgrade-version, default V with patch+1 and .dev1)
#   build_images.sh --version X        only teamd:<tag of X>, built from the same tree with the
#                                      wheel's version rewritten to X (no :latest)
#   options: --upgrade-version U | --no-upgrade | --force (rebuild even if up to date)
#            --clean (remove every teamd-hitless/* image and the cache dir, then exit)
#
# Tag scheme: the tag is the PEP 440 version, with '+' (not allowed in a docker tag) written
# as '_': version 0.1.1.dev1 -> tag 0.1.1.dev1, version 0.1.0+upgrade.1 -> tag 0.1.0_upgrade.1.
# An app image is rebuilt only when its content hash changes (label teamd-hitless.content):
# the files that go into it (pyproject.toml, README.md, teamd-shim/, orchestrator/,
# swsscommon-stub/ as in the work tree, tracked or untracked-not-ignored; containers/<image>/),
# the version, the base image, the pinned dependency versions and this script.
#
# Cache: $TEAMD_HITLESS_CACHE (default /var/cache/teamd-hitless): base/ rootfs tarballs,
# wheels/deps/ dependency wheels (pinned to the versions in .venv, so the images run what the
# tests run), wheels/<hash>/ the wheels of one image, logs/ build logs.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${TEAMD_HITLESS_CACHE:-/var/cache/teamd-hitless}
PIP=$REPO/.venv/bin/pip
PYTHON=$REPO/.venv/bin/python
SELF=$REPO/scripts/build_images.sh
export DOCKER_BUILDKIT=0   # BuildKit cannot run on a daemon without a bridge (--bridge=none)

die() { echo "images: $*" >&2; exit 1; }
say() { echo "images: $*"; }

version_arg="" upgrade_arg="" no_upgrade=0 force=0 clean=0
while [ $# -gt 0 ]; do
  case $1 in
    --version) [ $# -ge 2 ] || die "--version needs a value"; version_arg=$2; shift 2 ;;
    --version=*) version_arg=${1#*=}; shift ;;
    --upgrade-version) [ $# -ge 2 ] || die "--upgrade-version needs a value"; upgrade_arg=$2; shift 2 ;;
    --upgrade-version=*) upgrade_arg=${1#*=}; shift ;;
    --no-upgrade) no_upgrade=1; shift ;;
    --force) force=1; shift ;;
    --clean) clean=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "must run as root (docker, debootstrap, $CACHE)"
command -v docker >/dev/null || die "no docker client on PATH: run scripts/docker_engine.sh"
docker version >/dev/null 2>&1 \
  || die "no Docker engine answers on /var/run/docker.sock: run scripts/docker_engine.sh"

if [ $clean = 1 ]; then
  # the app images first, then untagged leftovers of failed builds, then the base(s)
  apps=$(docker images --format '{{.Repository}}:{{.Tag}}' | grep '^teamd-hitless/' \
         | grep -vE '^teamd-hitless/base(-lab)?:' || true)
  bases=$(docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^teamd-hitless/base(-lab)?:' || true)
  for imgs in "$apps" prune "$bases"; do
    if [ "$imgs" = prune ]; then
      docker image prune -f --filter label=teamd-hitless.role >/dev/null
    elif [ -n "$imgs" ]; then
      # shellcheck disable=SC2086
      docker rmi $imgs >/dev/null \
        || die "docker rmi failed: stop the containers that use these images first" \
               "(docker ps -a --filter label=teamd-hitless.role)"
      say "removed $(echo $imgs)"
    fi
  done
  rm -rf "$CACHE"
  say "removed cache $CACHE"
  exit 0
fi

[ -x "$PIP" ] || die "$PIP not found: run 'make setup' first"
mkdir -p "$CACHE/wheels/deps" "$CACHE/logs"
exec 9>"$CACHE/.lock"
flock -n 9 || { say "waiting for another build_images.sh (lock $CACHE/.lock)"; flock 9; }

# The wheels and their dependencies are resolved by the interpreter the images run, Debian's
# /usr/bin/python3 (3.11.2), not by .venv's (which may be another build, e.g. pyenv 3.11.7):
# environment markers differ (redis needs async-timeout only below 3.11.3). A venv of it in the
# cache does the `pip wheel` (python3-venv is installed by `make setup`).
SYS_PYTHON=/usr/bin/python3
BUILD_VENV=$CACHE/build-venv
[ -x $SYS_PYTHON ] || die "$SYS_PYTHON not found (Debian package python3)"
if [ ! -x "$BUILD_VENV/bin/pip" ] \
   || [ "$("$BUILD_VENV/bin/python" -V 2>&1)" != "$($SYS_PYTHON -V 2>&1)" ]; then
  rm -rf "$BUILD_VENV"
  $SYS_PYTHON -m venv "$BUILD_VENV" \
    || die "$SYS_PYTHON -m venv failed: install Debian package python3-venv"
fi
BUILD_PIP=$BUILD_VENV/bin/pip
BUILD_PY_VERSION=$("$BUILD_VENV/bin/python" -c 'import platform; print(platform.python_version())')

TMP=$(mktemp -d /tmp/teamd-hitless-images.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

PROJECT_VERSION=$("$PYTHON" - "$REPO/pyproject.toml" <<'EOF'
import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])
EOF
)

tag_of() {  # PEP 440 version -> docker tag
  local t=${1//+/_}
  [[ $t =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] \
    || die "version '$1' gives the tag '$t', which docker refuses (letters, digits, _ . - only)"
  echo "$t"
}

# Revision of the tree: HEAD, with -dirty if anything differs from it (untracked files too).
if git -C "$REPO" rev-parse HEAD >/dev/null 2>&1; then
  REVISION=$(git -C "$REPO" rev-parse HEAD)
  [ -z "$(git -C "$REPO" status --porcelain --untracked-files=normal)" ] || REVISION+=-dirty
else
  REVISION=unknown
fi

# The dependency versions pinned to those in .venv (what `make test` runs).
CONSTRAINTS=$TMP/constraints.txt
"$PIP" freeze --exclude-editable --disable-pip-version-check 2>/dev/null \
  | grep -E '^[A-Za-z0-9_.-]+==' | grep -viE '^(teamd-hitless|swsscommon-stub)==' \
  >"$CONSTRAINTS" || true

T0=$SECONDS
# -- bases --------------------------------------------------------------------------------------
# product: the teamd image's (no redis-server, no Open vSwitch); lab: partner's and lab's
bash "$REPO/containers/base/build_base.sh" --flavor product
BASE=$(bash "$REPO/containers/base/build_base.sh" --flavor product --print-tag)
BASE_ID=$(docker image inspect --format '{{.Id}}' "$BASE")
LAB_BASE=""
LAB_BASE_ID=""
lab_base() {  # only when partner/lab are built (not for --version X)
  bash "$REPO/containers/base/build_base.sh" --flavor lab
  LAB_BASE=$(bash "$REPO/containers/base/build_base.sh" --flavor lab --print-tag)
  LAB_BASE_ID=$(docker image inspect --format '{{.Id}}' "$LAB_BASE")
}

label_of() { docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null; }

# docker build with the labels every image gets; $1 = role, $2 = context, $3 = version,
# $4 = content hash, rest = -t TAG ...
docker_build() {
  local role=$1 ctx=$2 version=$3 hash=$4; shift 4
  local log=$CACHE/logs/$role-$(tag_of "$version").build.log t0=$SECONDS
  if ! docker build --network none --force-rm --build-arg "BASE=$BASE" \
      --label "org.opencontainers.image.title=teamd-hitless" \
      --label "org.opencontainers.image.version=$version" \
      --label "org.opencontainers.image.revision=$REVISION" \
      --label "org.opencontainers.image.created=$(date -u +%FT%TZ)" \
      --label "org.opencontainers.image.base.name=$BASE" \
      --label "teamd-hitless.role=$role" \
      --label "teamd-hitless.content=$hash" \
      "$@" "$ctx" >"$log" 2>&1; then
    tail -n 25 "$log" >&2
    die "docker build of $role $version failed (log $log)"
  fi
  BUILD_SECONDS=$(( SECONDS - t0 ))
}

# Remove the image a rebuild replaced, if nothing refers to it any more.
drop_replaced() {
  local old=$1 new=$2
  [ -n "$old" ] && [ "$old" != "$new" ] || return 0
  [ -z "$(docker image inspect --format '{{join .RepoTags " "}}' "$old" 2>/dev/null)" ] || return 0
  docker rmi "$old" >/dev/null 2>&1 || true
}

size_of() { docker image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }

# Copy the wheel inputs of the work tree (tracked + untracked-not-ignored) to $1.
copy_tree() {
  local dst=$1
  mkdir -p "$dst"
  local paths=(pyproject.toml README.md teamd-shim orchestrator swsscommon-stub)
  if [ "$REVISION" != unknown ]; then
    (cd "$REPO" && git ls-files -z -co --exclude-standard -- "${paths[@]}" \
       | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
       | tar --null -T - -cf -) | tar -C "$dst" -xf -
  else
    (cd "$REPO" && tar --exclude=__pycache__ --exclude='*.egg-info' --exclude=build \
       --exclude=dist -cf - "${paths[@]}") | tar -C "$dst" -xf -
  fi
}

hash_dir() {  # content hash of every file under $1 named like $2 (default: all; paths and bytes)
  (cd "$1" && find . -type f -name "${2:-*}" -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -c1-16
}

# -- teamd ----------------------------------------------------------------------------------------
# build_teamd VERSION [latest]
build_teamd() {
  local version=$1 latest=${2:-} tag src whash hash image old wheels
  tag=$(tag_of "$version")
  image=teamd-hitless/teamd:$tag
  src=$TMP/src-$tag
  copy_tree "$src"
  if [ "$version" != "$PROJECT_VERSION" ]; then
    "$PYTHON" - "$src/pyproject.toml" "$version" <<'EOF'
import re, sys
path, version = sys.argv[1], sys.argv[2]
text = open(path).read()
new, n = re.subn(r'(?m)^(version\s*=\s*)"[^"]*"', lambda m: f'{m.group(1)}"{version}"', text, 1)
if n != 1:
    sys.exit(f"images: no version line in {path}")
open(path, "w").write(new)
EOF
  fi
  # wheels: the tree, the version, the interpreter, the pins; the image: those + Dockerfile, base
  whash=$( { hash_dir "$src"; sha256sum "$SELF" | cut -c1-64;
             echo "$version $BUILD_PY_VERSION"; cat "$CONSTRAINTS"; } | sha256sum | cut -c1-16)
  hash=$( { echo "$whash $BASE_ID"; sha256sum "$REPO/containers/teamd/"* \
               "$REPO/containers/sonic/critical_processes" | cut -c1-64; } \
          | sha256sum | cut -c1-16)
  old=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  if [ $force = 0 ] && [ -n "$old" ] && [ "$(label_of "$image" teamd-hitless.content)" = "$hash" ]
  then
    say "$image up to date (content $hash, revision $(label_of "$image" org.opencontainers.image.revision))"
  else
    wheels=$CACHE/wheels/$whash
    if [ -f "$wheels/.complete" ]; then
      say "wheels $version (cached, $wheels)"
    else
      build_wheels "$src" "$wheels" "$version"
    fi
    local ctx=$TMP/ctx-teamd-$tag
    mkdir -p "$ctx/wheels"
    cp "$REPO/containers/teamd/Dockerfile" "$REPO/containers/sonic/critical_processes" "$ctx/"
    cp "$wheels"/*.whl "$ctx/wheels/"
    say "building $image"
    docker_build teamd "$ctx" "$version" "$hash" -t "$image"
    local new; new=$(docker image inspect --format '{{.Id}}' "$image")
    [ "$(label_of "$image" teamd-hitless.content)" = "$hash" ] || die "$image lacks its labels"
    drop_replaced "$old" "$new"
    say "$image built in $BUILD_SECONDS s ($(size_of "$image"), revision $REVISION)"
  fi
  if [ "$latest" = latest ]; then
    local id lid
    id=$(docker image inspect --format '{{.Id}}' "$image")
    lid=$(docker image inspect --format '{{.Id}}' teamd-hitless/teamd:latest 2>/dev/null || true)
    if [ "$id" != "$lid" ]; then
      docker tag "$image" teamd-hitless/teamd:latest
      drop_replaced "$lid" "$id"
      say "teamd-hitless/teamd:latest -> $tag"
    fi
  fi
}

# build_wheels SRC DEST VERSION: the project's and swsscommon-stub's wheels plus every
# dependency, offline from the cache when it can, else with PyPI (host only).
build_wheels() {
  local src=$1 dest=$2 version=$3 t0=$SECONDS out=$TMP/wheels.tmp log
  log=$CACHE/logs/wheels-$(tag_of "$version").log
  rm -rf "$out"; mkdir -p "$out"
  local common=(wheel -q --disable-pip-version-check --no-cache-dir -c "$CONSTRAINTS"
                --find-links "$CACHE/wheels/deps" -w "$out" "$src" "$src/swsscommon-stub")
  if PIP_NO_INPUT=1 "$BUILD_PIP" "${common[@]}" --no-index >"$log" 2>&1; then
    say "wheels $version built offline from $CACHE/wheels/deps"
  else
    say "wheels $version: fetching dependencies from PyPI into $CACHE/wheels/deps"
    rm -rf "$out"; mkdir -p "$out"
    # the build backend too, so that the next wheel build can run offline
    if ! "$BUILD_PIP" download -q --disable-pip-version-check --only-binary :all: \
           -d "$CACHE/wheels/deps" 'setuptools>=68' wheel >>"$log" 2>&1 \
       || ! PIP_NO_INPUT=1 "$BUILD_PIP" "${common[@]}" >>"$log" 2>&1; then
      tail -n 25 "$log" >&2
      die "pip wheel failed (log $log); PyPI must be reachable from this host the first time"
    fi
  fi
  local w
  for w in "$out"/*.whl; do
    case ${w##*/} in
      teamd_hitless-*|swsscommon_stub-*) ;;
      *) cp -n "$w" "$CACHE/wheels/deps/" ;;
    esac
  done
  # The wheel must carry exactly the requested version (setuptools normalizes PEP 440).
  local got
  got=$("$PYTHON" - "$out" <<'EOF'
import glob, sys, zipfile
(w,) = glob.glob(f"{sys.argv[1]}/teamd_hitless-*.whl")
with zipfile.ZipFile(w) as z:
    meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
    for line in z.read(meta).decode().splitlines():
        if line.startswith("Version: "):
            print(line.split(": ", 1)[1]); break
EOF
)
  [ "$got" = "$version" ] \
    || die "the wheel's version is '$got', not '$version' (PEP 440 normal form): pass --version $got"
  rm -rf "$dest"; mv "$out" "$dest"; touch "$dest/.complete"
  # keep the 10 most recent per-image wheel sets
  ls -1dt "$CACHE"/wheels/*/ | grep -v '/deps/$' | tail -n +11 | xargs -r rm -rf
  say "wheels $version: $(ls "$dest" | wc -l) wheels in $(( SECONDS - t0 )) s ($dest)"
}

# -- partner --------------------------------------------------------------------------------------
build_partner() {
  local version=$1 tag image hash old
  tag=$(tag_of "$version")
  image=teamd-hitless/partner:$tag
  hash=$( { sha256sum "$REPO/containers/partner/"* "$SELF" | cut -c1-64;
            echo "$version $LAB_BASE_ID"; } | sha256sum | cut -c1-16)
  old=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  if [ $force = 0 ] && [ -n "$old" ] && [ "$(label_of "$image" teamd-hitless.content)" = "$hash" ]
  then
    say "$image up to date (content $hash)"
    return
  fi
  local ctx=$TMP/ctx-partner
  mkdir -p "$ctx"
  cp "$REPO/containers/partner/"* "$ctx/"
  say "building $image"
  BASE=$LAB_BASE docker_build partner "$ctx" "$version" "$hash" -t "$image"
  drop_replaced "$old" "$(docker image inspect --format '{{.Id}}' "$image")"
  say "$image built in $BUILD_SECONDS s ($(size_of "$image"))"
}

# -- lab ------------------------------------------------------------------------------------------
# build_lab VERSION: teamd-hitless/lab:<V> + :latest, the lab base (Open vSwitch's ovs-vsctl,
# nsenter) plus the product image's venv plus the lab package (the compose lab's wiring step);
# the product image itself holds no lab code.
build_lab() {
  local version=$1 tag image hash old from from_id
  tag=$(tag_of "$version")
  image=teamd-hitless/lab:$tag
  from=teamd-hitless/teamd:$tag
  from_id=$(docker image inspect --format '{{.Id}}' "$from")
  # the package's sources only (not the __pycache__ a test run leaves beside them)
  hash=$( { hash_dir "$REPO/lab/teamd_lab" '*.py';
            sha256sum "$REPO/containers/lab/"* "$SELF" | cut -c1-64;
            echo "$version $from_id $LAB_BASE_ID"; } | sha256sum | cut -c1-16)
  old=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
  if [ $force = 0 ] && [ -n "$old" ] && [ "$(label_of "$image" teamd-hitless.content)" = "$hash" ]
  then
    say "$image up to date (content $hash)"
  else
    local ctx=$TMP/ctx-lab
    mkdir -p "$ctx/teamd_lab"
    cp "$REPO/containers/lab/Dockerfile" "$ctx/"
    (cd "$REPO/lab/teamd_lab" && find . -name '*.py' -print0 | tar --null -T - -cf -) \
      | tar -C "$ctx/teamd_lab" -xf -
    say "building $image"
    BASE=$LAB_BASE docker_build lab "$ctx" "$version" "$hash" --build-arg "TEAMD=$from" \
      -t "$image"
    drop_replaced "$old" "$(docker image inspect --format '{{.Id}}' "$image")"
    say "$image built in $BUILD_SECONDS s ($(size_of "$image"))"
  fi
  tag_latest teamd-hitless/lab "$version"
}

# tag_latest REPO VERSION: REPO:latest -> REPO:<tag of VERSION> (the compose lab's default); the
# image :latest named before is dropped if nothing else names it
tag_latest() {
  local repo=$1 tag id lid
  tag=$(tag_of "$2")
  id=$(docker image inspect --format '{{.Id}}' "$repo:$tag")
  lid=$(docker image inspect --format '{{.Id}}' "$repo:latest" 2>/dev/null || true)
  if [ "$id" != "$lid" ]; then
    docker tag "$repo:$tag" "$repo:latest"
    drop_replaced "$lid" "$id"
    say "$repo:latest -> $tag"
  fi
}


if [ -n "$version_arg" ]; then
  build_teamd "$version_arg"
else
  build_teamd "$PROJECT_VERSION" latest
  lab_base
  build_partner "$PROJECT_VERSION"
  tag_latest teamd-hitless/partner "$PROJECT_VERSION"
  build_lab "$PROJECT_VERSION"
  if [ $no_upgrade = 0 ]; then
    UPGRADE_VERSION=${upgrade_arg:-$("$PYTHON" - "$PROJECT_VERSION" <<'EOF'
import re, sys
m = re.match(r"^(\d+)\.(\d+)\.(\d+)$", sys.argv[1])
print(f"{m[1]}.{m[2]}.{int(m[3]) + 1}.dev1" if m else f"{sys.argv[1]}.post1.dev1")
EOF
)}
    [ "$UPGRADE_VERSION" != "$PROJECT_VERSION" ] \
      || die "the upgrade version must differ from the project version $PROJECT_VERSION"
    build_teamd "$UPGRADE_VERSION"
  fi
fi
say "done in $(( SECONDS - T0 )) s: $(docker images --format '{{.Repository}}:{{.Tag}}' \
  | grep '^teamd-hitless/' | grep -vE '^teamd-hitless/base(-lab)?:' | sort | tr '\n' ' ')"
