#!/bin/sh
# TEST FIXTURE, not part of the product: builds the offline stand-in images the template's image
# tests build the product's Dockerfile on (no registry is reachable from these machines):
#   localhost/standin/debian:<release>           debootstrap --variant=minbase, podman import
#   localhost/standin/functions-python:<version>-<sources hash>  the official Functions Python base
#   localhost/standin/builder                    a Debian C toolchain, in place of gcc:14-bookworm
# Usage: build.sh <python version>   (3.11, 3.12 or 3.13; README.md says from what). Idempotent: an
# image is rebuilt only when missing or when its sources here changed (a hash kept in a label).
set -eu

version=${1:?usage: build.sh <python version, 3.11, 3.12 or 3.13>}
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
host_ca=/etc/ssl/certs/ca-certificates.crt

# Per version: the Debian release and its libpython, the Containerfile's target (the upstream
# layout), and the prefix the interpreter lives under (the stand-in host's Python home).
case "$version" in
    3.11) release=bookworm libpython=3.11 target=docker-python home=/usr/local ;;
    3.12) release=bookworm libpython=3.11 target=oryx-ld-library-path home=/opt/python/3.12 ;;
    3.13) release=trixie libpython=3.13 target=oryx-usr-lib-link home=/opt/python/3.13 ;;
    *) echo "standin: no stand-in for Python $version; use 3.11, 3.12 or 3.13." >&2
       exit 2 ;;
esac
# 3.12 and 3.13 (Oryx's CPython, built --enable-shared, on bookworm in the official images): a real
# CPython of the version with a shared libpython found on this machine (pyenv's builds are), on
# bookworm as upstream; else Debian's libpython behind a python<version> front end, as said here.
real=
if [ "$version" != 3.11 ]; then
    for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$version".*; do
        [ -f "$candidate/lib/libpython$version.so.1.0" ] && [ -x "$candidate/bin/python$version" ] \
            && real=$candidate
    done
    if [ -n "$real" ]; then
        release=bookworm libpython=
        echo "standin: Python $version is this machine's CPython $real (shared libpython)"
    else
        echo "standin: no CPython $version with a shared libpython on this machine" \
            "(\$PYENV_ROOT/versions/$version.*): Debian's libpython$libpython behind a" \
            "python$version front end instead (tests/image/standin/README.md)"
    fi
fi
for tool in podman debootstrap flock; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "standin: $tool is missing; run 'make machine' (tests/machine/setup.sh) first." >&2
        exit 1
    }
done
[ -r "$host_ca" ] || {
    echo "standin: $host_ca is missing; install ca-certificates on this machine." >&2
    exit 1
}

# Tests of several sessions may ask at once; one build at a time, the others then find it cached.
exec 9>/var/tmp/standin-build.lock
flock -n 9 || { echo "standin: another build holds /var/tmp/standin-build.lock; waiting for it" >&2; flock 9; }

label=org.example.standin.sources
current_hash() {
    podman image inspect --format "{{index .Labels \"$label\"}}" "$1" 2>/dev/null || true
}
image_id() { podman image inspect --format '{{.Id}}' "$1"; }

debian_image() {  # $1 release
    image=localhost/standin/debian:$1
    podman image exists "$image" && return 0
    rootfs=$(mktemp -d /var/tmp/standin-rootfs.XXXXXX)
    trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT
    echo "standin: debootstrap $1 (about 30 s)"
    debootstrap --variant=minbase "$1" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 \
        || { tail -20 "$rootfs.log" >&2; echo "standin: debootstrap $1 failed (above)." >&2; exit 1; }
    # debootstrap leaves its downloads and package lists behind; every build runs apt-get update.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import --quiet - "$image" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
    trap - EXIT
}

build() {  # $1 image, $2 Containerfile, $3 sources hash, then build args
    image=$1 containerfile=$2 hash=$3
    shift 3
    if [ "$(current_hash "$image")" = "$hash" ]; then
        echo "standin: $image is up to date"
        return 0
    fi
    context=$(mktemp -d /var/tmp/standin-context.XXXXXX)
    cp -r "$here"/. "$context/"
    stage_real_python "$context/real-python"
    find "$context" -name __pycache__ -prune -exec rm -rf {} +
    cp "$host_ca" "$context/host-ca.crt"
    echo "standin: building $image"
    # STANDIN_NO_CACHE=1 builds without Podman's layer cache: what a fresh machine (CI) pays.
    podman build ${STANDIN_NO_CACHE:+--no-cache} --label "$label=$hash" -f "$here/$containerfile" \
        "$@" -t "$image" "$context" \
        >"$context.log" 2>&1 \
        || { tail -30 "$context.log" >&2; rm -rf "$context"
             echo "standin: building $image failed (the end of its log is above)." >&2; exit 1; }
    rm -rf "$context" "$context.log"
}

stage_real_python() {  # $1 directory: the real interpreter's files the image needs, or nothing
    mkdir -p "$1"
    [ -n "$real" ] || return 0
    # The interpreter, libpython and the standard library; not its tests, caches, static
    # library, or whatever this machine installed into its site-packages (pip comes from the
    # standard library's ensurepip).
    mkdir -p "$1/bin" "$1/lib/python$version/site-packages"
    cp "$real/bin/python$version" "$1/bin/"
    cp "$real/lib/libpython$version.so.1.0" "$1/lib/"
    cp -r "$real/include" "$1/"
    (cd "$real/lib" && tar -c --exclude="python$version/test" --exclude=__pycache__ \
        --exclude="python$version/site-packages" --exclude="python$version/config-*" \
        "python$version") | tar -C "$1/lib" -x
}

sources_hash() {  # every file here (names and contents), the host's CA bundle, the build args
    { (cd "$here" && find . -type f ! -name '*.md' ! -name '*.pyc' | LC_ALL=C sort | xargs -d '\n' sha256sum)
      cat "$host_ca"; echo "$@"; image_id "localhost/standin/debian:$release"
      [ -z "$real" ] || sha256sum "$real/bin/python$version" "$real/lib/libpython$version.so.1.0"; } \
        | sha256sum | cut -c1-16
}

debian_image bookworm
debian_image "$release"
build localhost/standin/builder builder.Containerfile \
    "$({ cat "$here/builder.Containerfile"; image_id localhost/standin/debian:bookworm; } \
        | sha256sum | cut -c1-16)"
# The sources' hash is part of the name: checkouts whose stand-in sources differ (branches built
# side by side on one machine) each keep their own image instead of rebuilding over each other's.
hash=$(sources_hash "$version $release $libpython $target $home ${real##*/}")
image=localhost/standin/functions-python:$version-$hash
build "$image" functions-python.Containerfile "$hash" \
    --target "$target" --build-arg "DEBIAN_IMAGE=localhost/standin/debian:$release" \
    --build-arg "PYTHON_VERSION=$version" --build-arg "LIBPYTHON=$libpython" \
    --build-arg "PYTHON_HOME=$home" --build-arg "REAL_PYTHON=${real##*/}"
# A stable name as well, for a person's `make run BASE_IMAGE=...` (the template's README): the last
# `make standin` of this version wins it. Tests use the hashed name above.
podman tag "$image" "localhost/standin/functions-python:$version"
echo "standin: $image is also localhost/standin/functions-python:$version"
echo "$image"  # the last line: the image's name, for tests/image/standins.py
