"""Tributary's MSK emulator: moto's Kafka (MSK control-plane) API, patched, served over HTTP.

    python moto_msk.py [--host 127.0.0.1] [--port 5055]

What this adds to moto (see docs/decisions/0005-msk-emulator.md):
  * timestamps in UTC with a zone, as MSK sends them ("2026-01-02T03:04:05.678Z"); moto's
    naive local times make aws-sdk-kafka (Rust) fail to parse creationTime;
  * state changes over time, evaluated lazily on each request: CREATING and UPDATING become
    ACTIVE after TRIBUTARY_MSK_ACTIVE_AFTER_SECONDS (default 3); DeleteCluster answers
    DELETING and the cluster is gone after TRIBUTARY_MSK_DELETE_AFTER_SECONDS (default 1);
  * GetBootstrapBrokers: BootstrapBrokerString is TRIBUTARY_MSK_BOOTSTRAP (default
    127.0.0.1:9092, the local broker); the TLS/SASL strings only when TRIBUTARY_MSK_BOOTSTRAP_TLS,
    _SASL_SCRAM or _SASL_IAM are set (the local broker speaks plaintext only);
  * UpdateBrokerCount, UpdateBrokerStorage, UpdateBrokerType (cluster must be ACTIVE and
    currentVersion must match, as in MSK; the change is recorded, the cluster is UPDATING for
    a while and gets a new currentVersion) and DescribeClusterOperation;
  * NotFoundException (404) for unknown cluster ARNs instead of a 500, ConflictException (409)
    for a second cluster with the same name, and CreateClusterV2's provisioned
    encryption/authentication/configuration/monitoring/logging settings kept.
"""

import argparse
import datetime
import functools
import json
import os
import secrets
import string
import threading
import time
import uuid

from moto.kafka import exceptions, urls
from moto.kafka.models import FakeKafkaCluster, KafkaBackend
from moto.kafka.responses import KafkaResponse


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _now() -> str:
    """The current UTC time as MSK writes it: ISO 8601, milliseconds, 'Z'."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _new_version() -> str:
    """A fresh cluster version, shaped like MSK's (e.g. K3AEGXETSR30VB)."""
    return "K" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(13))


def _error(cls, code: int, message: str) -> Exception:
    err = cls(message)
    err.code = code
    return err


def _not_found(arn: str) -> Exception:
    return _error(exceptions.NotFoundException, 404, f"Cluster {arn} does not exist.")


def _bad_request(message: str) -> Exception:
    return _error(exceptions.BadRequestException, 400, message)


class ConflictException(exceptions.KafkaException):
    code = 409

    def __init__(self, message: str):
        super().__init__("ConflictException", message)


# --- the model: timestamps, versions and a deadline for the next state change ---------------

_original_cluster_init = FakeKafkaCluster.__init__


def _cluster_init(self, *args, **kwargs):
    _original_cluster_init(self, *args, **kwargs)
    self.creation_time = _now()
    self.current_version = _new_version()
    self.active_operation_arn = None
    self.due = time.monotonic() + _seconds("TRIBUTARY_MSK_ACTIVE_AFTER_SECONDS", 3)


FakeKafkaCluster.__init__ = _cluster_init


def _tick(self: KafkaBackend) -> None:
    """Apply the state changes whose time has come."""
    now = time.monotonic()
    for arn, cluster in list(self.clusters.items()):
        if now < cluster.due:
            continue
        if cluster.state == "DELETING":
            self.clusters.pop(arn, None)
            self.policies.pop(arn, None)
        elif cluster.state in ("CREATING", "UPDATING"):
            cluster.state = "ACTIVE"
            op = self.operations.get(cluster.active_operation_arn or "")
            if op:
                op.update(operationState="UPDATE_COMPLETE", endTime=_now())
            cluster.active_operation_arn = None


def _cluster(self: KafkaBackend, arn: str) -> FakeKafkaCluster:
    if arn not in self.clusters:
        raise _not_found(arn)
    return self.clusters[arn]


KafkaBackend._tick = _tick
KafkaBackend._cluster = _cluster
KafkaBackend.operations = {}  # operation ARN -> ClusterOperationInfo (shared; ARNs are unique)
_lock = threading.RLock()  # moto's server is threaded; one request at a time changes state


def _ticking(method):
    """Wrap a backend method: apply due state changes first, 404 for an unknown cluster."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with _lock:
            self._tick()
            if "cluster_arn" in kwargs:
                self._cluster(kwargs["cluster_arn"])
            return method(self, *args, **kwargs)

    return wrapper


def _clean_info(self: KafkaBackend, info: dict) -> dict:
    """Replace moto's placeholder activeOperationArn/stateInfo with the real ones (or none)."""
    cluster = self.clusters[info["clusterArn"]]
    info.pop("stateInfo", None)
    info.pop("activeOperationArn", None)
    if cluster.active_operation_arn:
        info["activeOperationArn"] = cluster.active_operation_arn
    return info


_original = {
    name: getattr(KafkaBackend, name)
    for name in ("create_cluster_v2", "describe_cluster_v2", "describe_cluster", "list_clusters")
}


def create_cluster_v2(self, cluster_name, tags, provisioned, serverless):
    self._tick()
    if any(c.cluster_name == cluster_name for c in self.clusters.values()):
        raise ConflictException(f"A cluster named {cluster_name} already exists.")
    if not provisioned and not serverless:
        raise _bad_request("One of provisioned or serverless is required.")
    result = _original["create_cluster_v2"](self, cluster_name, tags, provisioned, serverless)
    cluster = self.clusters[result[0]]
    for key, attr in (
        ("encryptionInfo", "encryption_info"),
        ("clientAuthentication", "client_authentication"),
        ("configurationInfo", "configuration_info"),
        ("enhancedMonitoring", "enhanced_monitoring"),
        ("openMonitoring", "open_monitoring"),
        ("loggingInfo", "logging_info"),
    ):
        if (provisioned or {}).get(key) is not None:
            setattr(cluster, attr, provisioned[key])
    return result


def describe_cluster_v2(self, cluster_arn):
    return _clean_info(self, _original["describe_cluster_v2"](self, cluster_arn))


def describe_cluster(self, cluster_arn):
    return _clean_info(self, _original["describe_cluster"](self, cluster_arn))


def list_clusters(self, cluster_name_filter):
    listed = _original["list_clusters"](self, cluster_name_filter)
    return [self.describe_cluster(cluster_arn=c["clusterArn"]) for c in listed]


def delete_cluster(self, cluster_arn, current_version):
    cluster = self.clusters[cluster_arn]
    if current_version and current_version != cluster.current_version:
        raise _bad_request(
            f"The currentVersion {current_version} does not match {cluster.current_version}."
        )
    cluster.state = "DELETING"
    cluster.active_operation_arn = None
    cluster.due = time.monotonic() + _seconds("TRIBUTARY_MSK_DELETE_AFTER_SECONDS", 1)
    self._tick()
    return cluster_arn, "DELETING"


def get_bootstrap_brokers(self, cluster_arn):
    result = {"bootstrapBrokerString": os.environ.get("TRIBUTARY_MSK_BOOTSTRAP", "127.0.0.1:9092")}
    for suffix, key in (
        ("TLS", "bootstrapBrokerStringTls"),
        ("SASL_SCRAM", "bootstrapBrokerStringSaslScram"),
        ("SASL_IAM", "bootstrapBrokerStringSaslIam"),
    ):
        if os.environ.get(f"TRIBUTARY_MSK_BOOTSTRAP_{suffix}"):
            result[key] = os.environ[f"TRIBUTARY_MSK_BOOTSTRAP_{suffix}"]
    return result


def _mutable_info(cluster: FakeKafkaCluster) -> dict:
    group = cluster.broker_node_group_info or {}
    ebs = (group.get("storageInfo") or {}).get("ebsStorageInfo") or {}
    info = {"numberOfBrokerNodes": cluster.number_of_broker_nodes, "kafkaVersion": cluster.kafka_version}
    if group.get("instanceType"):
        info["instanceType"] = group["instanceType"]
    if ebs.get("volumeSize"):
        info["brokerEBSVolumeInfo"] = [{"kafkaBrokerNodeId": "ALL", "volumeSizeGB": ebs["volumeSize"]}]
    return info


def _update(self, cluster_arn, current_version, operation_type, change):
    """Start an update the way MSK does: check, record the change, go UPDATING for a while."""
    cluster = self.clusters[cluster_arn]
    if cluster.cluster_type != "PROVISIONED":
        raise _bad_request(f"{operation_type} applies to provisioned clusters only.")
    if cluster.state != "ACTIVE":
        raise _bad_request(f"The cluster is in state {cluster.state}; it must be ACTIVE.")
    if current_version != cluster.current_version:
        raise _bad_request(
            f"The currentVersion {current_version} does not match {cluster.current_version}."
        )
    source = _mutable_info(cluster)
    change(cluster)
    arn = cluster.arn.replace(":cluster/", ":cluster-operation/", 1) + "/" + str(uuid.uuid4())
    self.operations[arn] = {
        "clusterArn": cluster.arn,
        "operationArn": arn,
        "operationType": operation_type,
        "operationState": "UPDATE_IN_PROGRESS",
        "creationTime": _now(),
        "sourceClusterInfo": source,
        "targetClusterInfo": _mutable_info(cluster),
    }
    cluster.state = "UPDATING"
    cluster.current_version = _new_version()
    cluster.active_operation_arn = arn
    cluster.due = time.monotonic() + _seconds("TRIBUTARY_MSK_ACTIVE_AFTER_SECONDS", 3)
    return cluster.arn, arn


def update_broker_count(self, cluster_arn, current_version, target):
    def change(cluster):
        cluster.number_of_broker_nodes = int(target)

    return _update(self, cluster_arn, current_version, "UPDATE_BROKER_COUNT", change)


def update_broker_storage(self, cluster_arn, current_version, volumes):
    def change(cluster):
        group = cluster.broker_node_group_info = cluster.broker_node_group_info or {}
        ebs = group.setdefault("storageInfo", {}).setdefault("ebsStorageInfo", {})
        for volume in volumes or []:
            size = int(volume["volumeSizeGB"])
            if size <= int(ebs.get("volumeSize") or 0):
                raise _bad_request("Broker storage can only grow.")
            ebs["volumeSize"] = size
            if volume.get("provisionedThroughput"):
                ebs["provisionedThroughput"] = volume["provisionedThroughput"]

    return _update(self, cluster_arn, current_version, "UPDATE_BROKER_STORAGE", change)


def update_broker_type(self, cluster_arn, current_version, instance_type):
    def change(cluster):
        cluster.broker_node_group_info = cluster.broker_node_group_info or {}
        cluster.broker_node_group_info["instanceType"] = instance_type

    return _update(self, cluster_arn, current_version, "UPDATE_BROKER_TYPE", change)


def describe_cluster_operation(self, operation_arn):
    if operation_arn not in self.operations:
        raise _error(exceptions.NotFoundException, 404, f"Operation {operation_arn} does not exist.")
    return self.operations[operation_arn]


for _method in (
    create_cluster_v2, describe_cluster_v2, describe_cluster, list_clusters, delete_cluster,
    get_bootstrap_brokers, update_broker_count, update_broker_storage, update_broker_type,
    describe_cluster_operation,
):
    setattr(KafkaBackend, _method.__name__, _ticking(_method))
# list_clusters_v2 calls describe_cluster_v2 (now cleaned); it only needs the clock to tick.
KafkaBackend.list_clusters_v2 = _ticking(KafkaBackend.list_clusters_v2)


# --- the HTTP side: the operations moto has no handler for ---------------------------------

def _arn(self: KafkaResponse) -> str:
    return self.uri_match["clusterArn"]


def _handler(call):
    def handler(self: KafkaResponse) -> str:
        return json.dumps(call(self, self.kafka_backend))

    return handler


@_handler
def get_bootstrap_brokers_handler(self, backend):
    return backend.get_bootstrap_brokers(cluster_arn=_arn(self))


@_handler
def update_broker_count_handler(self, backend):
    arn, op = backend.update_broker_count(
        cluster_arn=_arn(self),
        current_version=self._get_param("currentVersion"),
        target=self._get_param("targetNumberOfBrokerNodes"),
    )
    return {"clusterArn": arn, "clusterOperationArn": op}


@_handler
def update_broker_storage_handler(self, backend):
    arn, op = backend.update_broker_storage(
        cluster_arn=_arn(self),
        current_version=self._get_param("currentVersion"),
        volumes=self._get_param("targetBrokerEBSVolumeInfo"),
    )
    return {"clusterArn": arn, "clusterOperationArn": op}


@_handler
def update_broker_type_handler(self, backend):
    arn, op = backend.update_broker_type(
        cluster_arn=_arn(self),
        current_version=self._get_param("currentVersion"),
        instance_type=self._get_param("targetInstanceType"),
    )
    return {"clusterArn": arn, "clusterOperationArn": op}


@_handler
def describe_cluster_operation_handler(self, backend):
    info = backend.describe_cluster_operation(operation_arn=self.uri_match["clusterOperationArn"])
    return {"clusterOperationInfo": info}


for _name, _fn in (
    ("get_bootstrap_brokers", get_bootstrap_brokers_handler),
    ("update_broker_count", update_broker_count_handler),
    ("update_broker_storage", update_broker_storage_handler),
    ("update_broker_type", update_broker_type_handler),
    ("describe_cluster_operation", describe_cluster_operation_handler),
):
    setattr(KafkaResponse, _name, _fn)
urls.url_paths["{0}/v1/operations/(?P<clusterOperationArn>.+)$"] = KafkaResponse.dispatch

_original_call_action = KafkaResponse.call_action


def call_action(self: KafkaResponse):
    """Label every answer as JSON, as MSK does (moto's default is text/html)."""
    status, headers, body = _original_call_action(self)
    if not any(key.lower() == "content-type" for key in headers):
        headers["Content-Type"] = "application/json"
    return status, headers, body


KafkaResponse.call_action = call_action


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="5055")
    args = parser.parse_args()
    from moto.server import main as moto_server

    moto_server(["--host", args.host, "--port", args.port])


if __name__ == "__main__":
    main()
