#!/bin/sh
# Installs what the template's tests need on a Debian or Ubuntu machine, once: Debian packages
# (when any is missing; needs root) and, where absent, Podman's configuration for these
# machines (runc, and lower rlimits than Podman's default). An existing containers.conf that
# this script did not write is left alone, so a developer's own Podman set-up keeps working.
set -eu

# command:package pairs; a command already on PATH (however it got there) is not reinstalled.
# gosu and sudo (with util-linux's setpriv and runuser) are the launcher benchmark's anchors.
NEEDS="podman:podman runc:runc debootstrap:debootstrap clang:clang gcc:gcc make:make
readelf:binutils npm:npm musl-gcc:musl-tools jq:jq gosu:gosu sudo:sudo"
CONF=/etc/containers/containers.conf
MARK="# written by the template's tests/machine/setup.sh"

install_packages() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages: $*; run 'sudo make machine' once." >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

missing=""
for need in $NEEDS; do
    command -v "${need%%:*}" >/dev/null 2>&1 || missing="$missing ${need#*:}"
done
if [ -n "$missing" ]; then
    install_packages $missing
fi
# libFuzzer and clang's sanitizer runtimes are a package named after clang's major version.
clang_major=$(clang -dumpversion | cut -d. -f1)
dpkg-query -W -f='${Status}' "libclang-rt-$clang_major-dev" 2>/dev/null | grep -q "ok installed" \
    || install_packages "libclang-rt-$clang_major-dev"
if [ ! -e "$CONF" ] || grep -qF "$MARK" "$CONF"; then
    if [ "$(id -u)" -eq 0 ]; then
        mkdir -p /etc/containers
        cat > "$CONF.tmp" <<CONF
$MARK
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
        mv "$CONF.tmp" "$CONF"
    fi
fi
