"""The local AWS test bed: moto's server, in-process, on 127.0.0.1.

Runs moto the way its ThreadedMotoServer does, plus one control route that
moto lacks: EKS clusters that answer DescribeCluster with a test's own fake
Kubernetes API server (endpoint and CA) instead of moto's random ones, so the
real path DescribeCluster -> IAM token -> kube list runs in tests.

    POST /_testbed/eks-clusters
    {"account": "123456789012", "region": "eu-west-1", "name": "eks-a",
     "endpoint": "https://127.0.0.1:4321", "caData": "<base64 PEM>",
     "version": "1.33"}

And asynchronous Lambda invocations (`InvocationType: Event`, the API's
refresh) are recorded instead of run (moto would need Docker to run them):

    GET /_testbed/lambda-invocations  ->  [{"function": "...", "payload": {...}}]

Usage: python scripts/testbed.py --port-file PATH   (port 0 = any free port)
"""

import argparse
import json
import os
import signal
import sys
import threading

from moto.awslambda.models import LambdaBackend
from moto.core import DEFAULT_ACCOUNT_ID
from moto.eks.models import eks_backends
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server

CONTROL_PREFIX = "/_testbed/"


def register_eks_cluster(spec):
    account = spec.get("account") or DEFAULT_ACCOUNT_ID
    region = spec["region"]
    name = spec["name"]
    backend = eks_backends[account][region]
    cluster = backend.clusters.get(name)
    if cluster is None:
        cluster = backend.create_cluster(
            name=name,
            role_arn=f"arn:aws:iam::{account}:role/eks-cluster-role",
            resources_vpc_config={},
            version=spec.get("version"),
        )
    cluster.endpoint = spec["endpoint"]
    cluster.certificate_authority = {"data": spec["caData"]}
    return {"arn": cluster.arn, "endpoint": cluster.endpoint}


LAMBDA_INVOCATIONS = []
_moto_lambda_invoke = LambdaBackend.invoke


def record_event_invocations(self, function_name, qualifier, body, headers, response_headers):
    if headers.get("X-Amz-Invocation-Type") != "Event":
        return _moto_lambda_invoke(self, function_name, qualifier, body, headers, response_headers)
    payload = json.loads(body) if body else None
    LAMBDA_INVOCATIONS.append({"function": function_name, "qualifier": qualifier, "payload": payload})
    return b""


LambdaBackend.invoke = record_event_invocations


class TestbedApp:
    """moto's WSGI app with the control routes in front of it."""

    def __init__(self):
        self.moto = DomainDispatcherApplication(create_backend_app)
        # moto evaluates DynamoDB condition expressions without a lock, so two
        # racing conditional writes to one item can both succeed on its
        # threaded server. DynamoDB itself never allows that; serialising
        # DynamoDB requests here keeps the guarantee our contract tests check.
        self.dynamodb_lock = threading.Lock()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.dynamodb_lock:
                return list(self.moto(environ, start_response))
        if not path.startswith(CONTROL_PREFIX):
            return self.moto(environ, start_response)
        try:
            if path == "/_testbed/health":
                return reply(start_response, "200 OK", {"ok": True})
            if path == "/_testbed/eks-clusters" and environ["REQUEST_METHOD"] == "POST":
                length = int(environ.get("CONTENT_LENGTH") or 0)
                spec = json.loads(environ["wsgi.input"].read(length))
                return reply(start_response, "200 OK", register_eks_cluster(spec))
            if path == "/_testbed/lambda-invocations":
                return reply(start_response, "200 OK", LAMBDA_INVOCATIONS)
            return reply(start_response, "404 Not Found", {"error": "no such control route"})
        except (KeyError, ValueError) as err:
            return reply(start_response, "400 Bad Request", {"error": repr(err)})


def reply(start_response, status, body):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()

    server = make_server("127.0.0.1", args.port, TestbedApp(), threaded=True, request_handler=MotoRequestHandler)
    port = server.server_address[1]
    # Written atomically: the launcher polls for this file.
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, args.port_file)
    print(f"testbed: moto listening on http://127.0.0.1:{port} (pid {os.getpid()})", file=sys.stderr, flush=True)

    def stop(*_):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
