#!/bin/bash
# TEST FIXTURE, not part of the product: the stand-in base image's entry script, shaped like the
# official /opt/startup/start_nonappservice.sh (import the platform's CA certificates, then start
# the host as root). The product's hardened image replaces it with an exec-form ENTRYPOINT.
source /opt/startup/install_ca_certificates.sh

# exec, so that the host is PID 1 and receives `podman stop`'s SIGTERM.
exec /azure-functions-host/Microsoft.Azure.WebJobs.Script.WebHost
