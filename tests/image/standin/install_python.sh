#!/bin/sh
# TEST FIXTURE, not part of the product: lays the stand-in's interpreter out as the official image
# of its version has it (README.md), from Debian's shared libpython and standard library.
#   install_python.sh docker   Python in /usr/local, as Docker's python:3.11-slim-bullseye (4-python3.11)
#   install_python.sh oryx     Python in /opt/python/<X.Y.Z> (Oryx's build), bin/* linked into /usr/bin
# Environment (the Containerfile's build args): PYTHON_VERSION (the image's), LIBPYTHON (Debian's),
# LIBRARY_LOOKUP (ldconfig, ld-library-path or usr-lib-link: how the loader finds libpython),
# REAL_PYTHON (X.Y.Z of a real CPython staged in /tmp/standin/real-python, which is laid out
# instead of Debian's libpython: its own executable, libpython and standard library).
set -eu
layout=$1
frontend=/tmp/standin/python

# The version directory is named after the real interpreter's version, or the image's version
# with Debian's micro version: only the shape of the path is reproduced, not a number Microsoft
# shipped.
if [ -n "${REAL_PYTHON:-}" ]; then
    full=$REAL_PYTHON
else
    micro=$(dpkg-query -W -f '${Version}' "libpython$LIBPYTHON" | sed -E 's/^[0-9]+\.[0-9]+\.([0-9]+).*/\1/')
    full=$PYTHON_VERSION.$micro
fi
case $layout in
    docker) prefix=/usr/local ;;
    oryx) prefix=/opt/python/$full ;;
    *) echo "install_python.sh: layout docker or oryx, not $layout" >&2; exit 2 ;;
esac

mkdir -p "$prefix/bin" "$prefix/lib"
if [ -n "${REAL_PYTHON:-}" ]; then
    LIBPYTHON=$PYTHON_VERSION
    cp -a /tmp/standin/real-python/lib/. "$prefix/lib/"
    install -m 755 "/tmp/standin/real-python/bin/python$PYTHON_VERSION" "$prefix/bin/"
    ln -s "libpython$LIBPYTHON.so.1.0" "$prefix/lib/libpython$LIBPYTHON.so"
    ln -s "python$PYTHON_VERSION" "$prefix/bin/python3"
    ln -s python3 "$prefix/bin/python"
else
    stdlib=$prefix/lib/python$LIBPYTHON
    cp -a "/usr/lib/python$LIBPYTHON" "$stdlib"
    rm -f "$stdlib/EXTERNALLY-MANAGED"
    # Debian patches the install scheme to <prefix>/local/lib/python3.X/dist-packages; a CPython
    # built from source (Docker's, Oryx's) installs into <prefix>/lib/python3.X/site-packages and
    # its scripts into <prefix>/bin. Undo exactly those two patches; the checks below prove it.
    sysconfig=$stdlib/sysconfig.py
    [ -f "$sysconfig" ] || sysconfig=$stdlib/sysconfig/__init__.py
    sed -i "s/prefix_scheme = 'posix_local'/prefix_scheme = 'posix_prefix'/" "$sysconfig"
    sed -i 's|"local/lib"|"lib"|; s|"dist-packages"|"site-packages"|' "$stdlib/site.py"

    library=$(dpkg -L "libpython$LIBPYTHON" | grep "/libpython$LIBPYTHON\.so\.1\.0\$")
    cp "$library" "$prefix/lib/"
    ln -s "libpython$LIBPYTHON.so.1.0" "$prefix/lib/libpython$LIBPYTHON.so"
    install -m 755 "$frontend" "$prefix/bin/python$PYTHON_VERSION"
    ln -s "python$PYTHON_VERSION" "$prefix/bin/python3"
    ln -s python3 "$prefix/bin/python"

    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "libpython$LIBPYTHON" \
        "libpython$LIBPYTHON-stdlib" "libpython$LIBPYTHON-minimal" >/dev/null
fi

case $LIBRARY_LOOKUP in
    ldconfig) ldconfig ;;  # Docker's python image runs ldconfig after installing into /usr/local
    usr-lib-link) ln -s "$prefix/lib/libpython$LIBPYTHON.so.1.0" /usr/lib/ ;;
    ld-library-path) ;;  # the Containerfile's ENV names the directory
    *) echo "install_python.sh: unknown LIBRARY_LOOKUP $LIBRARY_LOOKUP" >&2; exit 2 ;;
esac
if [ "$layout" = oryx ]; then
    ln -s "$full" "/opt/python/$PYTHON_VERSION"
fi

python=$prefix/bin/python$PYTHON_VERSION
if [ -n "${REAL_PYTHON:-}" ]; then
    # The build's own pip (ensurepip's bundled wheel), with its scripts in <prefix>/bin.
    "$python" -m ensurepip --default-pip >/dev/null
else
    wheel=$(echo /usr/share/python-wheels/pip-*.whl)
    "$python" "$wheel/pip" install --quiet --no-index --no-cache-dir --disable-pip-version-check \
        --root-user-action=ignore "$wheel"
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -q python3-pip-whl >/dev/null
fi

if [ "$layout" = oryx ]; then
    # The 3.12 Dockerfile links /opt/python/3.12/bin/* (through the version link), the 3.13 one
    # /opt/python/3.13.1/bin/* (the full version): both shapes, as upstream has them.
    case $LIBRARY_LOOKUP in ld-library-path) bin=/opt/python/$PYTHON_VERSION/bin ;; *) bin=$prefix/bin ;; esac
    for file in "$prefix"/bin/*; do
        ln -sf "$bin/${file##*/}" "/usr/bin/${file##*/}"
    done
fi

# The layout really is what the README says, or the build fails here.
"$python" - "$prefix" <<'PY'
import os, site, ssl, sqlite3, ctypes, sysconfig, sys, pip
prefix = sys.argv[1]
expected = f"{prefix}/lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"
assert sys.prefix == prefix, (sys.prefix, prefix)
assert sysconfig.get_paths()["purelib"] == expected, sysconfig.get_paths()
assert expected in site.getsitepackages(), site.getsitepackages()
assert sysconfig.get_paths()["scripts"] == f"{prefix}/bin", sysconfig.get_paths()
debian_stdlib = f"/usr/lib/python{sys.version_info[0]}.{sys.version_info[1]}"
assert not os.path.exists(debian_stdlib), f"{debian_stdlib} is still there"
PY
# Debian's own copy is purged: the loader must find the one in the prefix, by this layout's way.
found=$(ldd "$python" | grep "libpython$LIBPYTHON.so.1.0 => /" || true)
case $found in
    "" | *x86_64-linux-gnu*)
        echo "install_python.sh: $python does not load libpython from its prefix:" >&2
        ldd "$python" >&2; exit 1 ;;
esac
