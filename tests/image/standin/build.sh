#!/bin/sh
# TEST FIXTURE, not part of the product: builds the offline stand-in images the template's image
# tests build the product's Dockerfile on (no registry is reachable from these machines):
#   localhost/standin/debian:<release>           debootstrap --variant=minbase, podman import
#   localhost/standin/functions-python:<version> the official Functions Python base, imitated
#   localhost/standin/builder                    a Debian C toolchain, in place of gcc:14-bookworm
# Usage: build.sh <python version>   (3.11 from bookworm, 3.13 from trixie). Idempotent: an image
# is rebuilt only when missing or when its sources here changed (a hash kept in a label).
set -eu

version=${1:?usage: build.sh <python version, 3.11 or 3.13>}
here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
host_ca=/etc/ssl/certs/ca-certificates.crt

case "$version" in
    3.11) release=bookworm link_dir=/usr/local/bin ;;
    3.13) release=trixie link_dir=/usr/bin ;;
    *) echo "standin: no Debian release ships Python $version; use 3.11 (bookworm) or 3.13 (trixie)." >&2
       exit 2 ;;
esac
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
flock 9

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
    cp "$here"/*.sh "$here"/*.py "$here"/*.json "$context/"
    cp "$host_ca" "$context/host-ca.crt"
    echo "standin: building $image"
    podman build --label "$label=$hash" -f "$here/$containerfile" "$@" -t "$image" "$context" \
        >"$context.log" 2>&1 \
        || { tail -30 "$context.log" >&2; rm -rf "$context"
             echo "standin: building $image failed (the end of its log is above)." >&2; exit 1; }
    rm -rf "$context" "$context.log"
}

sources_hash() {  # the Containerfile, every file it copies, the host's CA bundle, the build args
    { cat "$here/$1" "$here"/*.sh "$here"/*.py "$here"/*.json "$host_ca"; shift; echo "$@"
      image_id "localhost/standin/debian:$release"; } \
        | sha256sum | cut -c1-16
}

debian_image bookworm
debian_image "$release"
build localhost/standin/builder builder.Containerfile \
    "$({ cat "$here/builder.Containerfile"; image_id localhost/standin/debian:bookworm; } \
        | sha256sum | cut -c1-16)"
build "localhost/standin/functions-python:$version" functions-python.Containerfile \
    "$(sources_hash functions-python.Containerfile "$version $release $link_dir")" \
    --build-arg "DEBIAN_IMAGE=localhost/standin/debian:$release" \
    --build-arg "PYTHON_VERSION=$version" --build-arg "LINK_DIR=$link_dir"
