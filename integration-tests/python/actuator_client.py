"""A client that is not ours: Python grpcio with stubs generated from proto/ by grpcio-tools.

Usage: actuator_client.py STUBS_DIR ADDRESS
Lists workflows, applies a configuration (and a malformed one), reads three telemetry windows,
and prints a JSON summary on stdout.
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

import grpc  # noqa: E402
from faasconf.v1 import actuator_pb2, actuator_pb2_grpc  # noqa: E402

channel = grpc.insecure_channel(sys.argv[2])
stub = actuator_pb2_grpc.ActuatorStub(channel)

names = [w.name for w in stub.ListWorkflows(actuator_pb2.ListWorkflowsRequest(), timeout=10).workflows]
got = stub.GetWorkflow(actuator_pb2.GetWorkflowRequest(workflow="parallel"), timeout=10)
config = got.current_config
for f in config.functions:
    f.cpu_millis = 1500
applied = stub.ApplyConfig(
    actuator_pb2.ApplyConfigRequest(workflow="parallel", config=config, expected_version=got.config_version), timeout=10
)

config.functions[0].replicas = 42
try:
    stub.ApplyConfig(actuator_pb2.ApplyConfigRequest(workflow="parallel", config=config), timeout=10)
    invalid = {"code": "OK"}
except grpc.RpcError as e:
    invalid = {"code": e.code().name, "message": e.details()}

windows = []
for window in stub.StreamTelemetry(actuator_pb2.StreamTelemetryRequest(workflow="parallel"), timeout=30):
    windows.append(
        {
            "index": window.index,
            "config_version": window.config_version,
            "functions": len(window.functions),
            "total_requests": window.workflow_metrics.total_requests,
        }
    )
    if len(windows) == 3:
        break

print(
    json.dumps(
        {
            "workflows": names,
            "version_before": got.config_version,
            "version_after": applied.config_version,
            "diff": len(applied.diff),
            "invalid": invalid,
            "windows": windows,
        }
    )
)
