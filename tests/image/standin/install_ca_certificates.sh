#!/bin/bash
# TEST FIXTURE, not part of the product: the stand-in of the official install_ca_certificates.sh,
# which copies certificates that App Service mounts under /var/ssl/root into the system store at
# start-up. The stand-in has no update-ca-certificates, so it only reports what it would import.
if compgen -G "/var/ssl/root/*.crt" >/dev/null; then
    echo "stand-in: certificates under /var/ssl/root are not imported (no ca-certificates here)"
fi
