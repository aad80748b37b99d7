#!/bin/sh
# TEST FIXTURE, not part of the product: puts the worker's packages where the official image has
# them, beside worker.py in /azure-functions-host/workers/python/<version>/LINUX/X64
# (Azure/azure-functions-docker, host/4/bookworm/python/python313/python313.Dockerfile, copies the
# host build's workers/python/3.13/LINUX there): the real azure-functions-runtime with grpcio and
# protobuf, hash-checked from protocol/worker-requirements.txt, and the Python stubs of
# protocol/function_rpc.proto as the package standin_rpc, generated now by grpcio-tools
# (hash-checked from protocol/protoc-requirements.txt, then removed).
# Environment (the Containerfile's build args): PYTHON_VERSION.
set -eu
worker=/azure-functions-host/workers/python/$PYTHON_VERSION/LINUX/X64
protocol=/tmp/standin/protocol
# azure-functions-runtime declares Python 3.13 and later; the 3.11 and 3.12 stand-ins (Debian's
# 3.11) run it all the same, in place of the 4.x worker no registry here offers (README.md).
case $PYTHON_VERSION in 3.13) ignore= ;; *) ignore=--ignore-requires-python ;; esac
install() {  # $1 requirements file, $2 target directory
    python -m pip install --quiet --no-cache-dir --disable-pip-version-check \
        --root-user-action=ignore --require-hashes --only-binary :all: $ignore \
        --target "$2" -r "$1"
}
install "$protocol/worker-requirements.txt" "$worker"
install "$protocol/protoc-requirements.txt" /tmp/standin/protoc
mkdir -p "$worker/standin_rpc"
PYTHONPATH=/tmp/standin/protoc python -m grpc_tools.protoc -I"standin_rpc=$protocol" \
    --python_out="$worker" --grpc_python_out="$worker" standin_rpc/function_rpc.proto
touch "$worker/standin_rpc/__init__.py"
rm -rf "$worker/bin" /tmp/standin/protoc
PYTHONPATH=$worker python -c 'import azure_functions_runtime, standin_rpc.function_rpc_pb2_grpc'
