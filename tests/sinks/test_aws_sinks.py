"""The AWS sinks of a real ``kubeguard serve`` against moto in server mode: EventBridge, SNS, SQS, Security
Hub, S3 (a configured sink and a GuardDuty publishing destination made through the API).

The emulator is stopped in the middle of the lab log and started again on the same port (its state lives
on in this process, like a real service's): every sink reports the outage with its reason, keeps the
events, and afterwards each destination holds exactly every finding occurrence, nothing lost, nothing
doubled. Credentials and the endpoint come the standard way (``AWS_*`` environment variables).
"""

from __future__ import annotations

import gzip
import socket
import time
from typing import Any

import boto3
import orjson
import pytest
from api.conftest import guardduty_client
from api.publishing import detector_id, feed, lab_batches, sinks_config, stored_findings, wait_for
from findings.shapes import ShapeChecker
from moto.server import ThreadedMotoServer

from kubeguard.findings.formats import render
from sinks.test_http_sinks import PUBLIC_URL, all_published, link, sink_health

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

ACCOUNT = "123456789012"  # moto's account
REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Moto:
    """moto's server on a fixed port, which can be stopped and started again with its state kept."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION, aws_access_key_id="testing",
                            aws_secret_access_key="testing")


@pytest.fixture
def moto():
    emulator = Moto()
    emulator.start()
    emulator.client("s3").list_buckets()  # up and answering
    yield emulator
    emulator.stop()


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"],
                                       WaitTimeSeconds=0).get("Messages"):
        messages += batch
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])
    return messages


def s3_lines(s3: Any, bucket: str) -> tuple[list[str], list[dict[str, Any]]]:
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    lines = [orjson.loads(line) for key in sorted(keys, key=lambda k: s3.head_object(Bucket=bucket, Key=k)["LastModified"])
             for line in gzip.decompress(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).splitlines()]
    return keys, lines


def make_resources(moto: Moto) -> dict[str, str]:
    sqs, sns, events, s3 = moto.client("sqs"), moto.client("sns"), moto.client("events"), moto.client("s3")
    queues = {name: sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("kg-queue", "eb-target", "sns-target")}
    arn = {name: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
           for name, url in queues.items()}
    events.create_event_bus(Name="kg-bus")
    events.put_rule(Name="findings", EventBusName="kg-bus",
                    EventPattern=orjson.dumps({"source": ["kubeguard"], "detail-type": ["GuardDuty Finding"]}).decode())
    events.put_targets(Rule="findings", EventBusName="kg-bus", Targets=[{"Id": "q", "Arn": arn["eb-target"]}])
    topic = sns.create_topic(Name="kg-topic")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn["sns-target"], Attributes={"RawMessageDelivery": "true"})
    for bucket in ("kg-findings", "gd-export"):
        s3.create_bucket(Bucket=bucket)
    moto.client("securityhub").enable_security_hub()
    return {**queues, "topic": topic}


def test_aws_destinations_receive_every_finding_across_an_outage(make_server, moto, tmp_path):
    resources = make_resources(moto)
    reference = tmp_path / "all.jsonl"
    common = {"max_backoff_seconds": 0.5}
    config = f'account_id = "{ACCOUNT}"\nregion = "{REGION}"\n' + sinks_config(
        {"type": "jsonl", "path": reference, "format": "guardduty"},
        {"type": "eventbridge", "event_bus": "kg-bus", **common},
        {"type": "sns", "topic_arn": resources["topic"], **common},
        {"type": "sqs", "queue_url": resources["kg-queue"], **common},
        {"type": "securityhub", **common},
        {"type": "s3", "bucket": "kg-findings", "prefix": "exports", "interval_seconds": 0.5, **common},
        serve={"public_url": PUBLIC_URL, "publishing_interval_seconds": 0.5},
    )
    server = make_server(config, env={**CREDENTIALS, "AWS_ENDPOINT_URL": moto.url})
    detector = detector_id(server)
    gd = guardduty_client(server.url)
    destination = gd.create_publishing_destination(
        DetectorId=detector, DestinationType="S3",
        DestinationProperties={"DestinationArn": "arn:aws:s3:::gd-export/guardduty",
                               "KmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0e4d1b8e-1111-2222-3333-444455556666"},
    )["DestinationId"]
    assert gd.list_publishing_destinations(DetectorId=detector)["Destinations"] == [
        {"DestinationId": destination, "DestinationType": "S3", "Status": "PUBLISHING"}]

    batches = lab_batches()
    feed(server, batches[:9])
    first = all_published(server, reference)
    sinks = ["eventbridge:kg-bus", f"sns:{resources['topic']}", "sqs:kg-queue", "securityhub", "s3:kg-findings/exports",
             f"publishing-destination:{destination}"]
    wait_for(lambda: all(sink_health(server)[s]["delivered"] == len(first) for s in sinks), timeout=20)

    moto.stop()  # the emulator goes down in the middle of the log
    feed(server, batches[9:])
    events = all_published(server, reference)
    assert len(events) > len(first)

    def all_failing():
        health = sink_health(server)
        return health if all(health[s]["state"] == "failing" and health[s]["outboxDepth"] > 0 for s in sinks) else None

    down = wait_for(all_failing, timeout=20)
    assert all("connect" in down[s]["lastError"].lower() for s in sinks), {s: down[s]["lastError"] for s in sinks}
    described = gd.describe_publishing_destination(DetectorId=detector, DestinationId=destination)
    assert described["Status"] == "UNABLE_TO_PUBLISH_FIX_DESTINATION_PROPERTY"
    assert described["PublishingFailureStartTimestamp"] > 0
    log = (tmp_path / "server.log").read_text()
    assert "sink securityhub: delivery failed (EndpointConnectionError" in log

    moto.start()
    def all_delivered():
        health = sink_health(server)
        done = all(health[s]["outboxDepth"] == 0 and health[s]["delivered"] == len(events) for s in sinks)
        return health if done else None

    healthy = wait_for(all_delivered, timeout=30)
    for sink in sinks:
        assert (healthy[sink]["droppedTotal"], healthy[sink]["state"]) == (0, "ok"), healthy[sink]
        assert healthy[sink]["retried"] > 0

    sqs, s3 = moto.client("sqs"), moto.client("s3")
    # SQS: one message per occurrence, the EventBridge envelope, with attributes to filter on.
    queued = drain(sqs, resources["kg-queue"])
    assert [orjson.loads(m["Body"])["detail"] for m in queued] == events
    assert {m["MessageAttributes"]["cluster"]["StringValue"] for m in queued} == {"lab"}
    assert [m["MessageAttributes"]["consoleUrl"]["StringValue"] for m in queued] == [link(e["id"]) for e in events]
    # EventBridge: the bus's rule matched every event (source kubeguard) and put it on its target queue.
    routed = [orjson.loads(m["Body"]) for m in drain(sqs, resources["eb-target"])]
    assert sorted((e["detail"]["id"], e["detail"]["updatedAt"]) for e in routed) == sorted(
        (e["id"], e["updatedAt"]) for e in events)
    assert {(e["source"], e["detail-type"]) for e in routed} == {("kubeguard", "GuardDuty Finding")}
    assert all(e["resources"] == [link(e["detail"]["id"])] for e in routed)
    # SNS: the topic fanned every message out to its SQS subscription.
    fanned = [orjson.loads(m["Body"])["detail"] for m in drain(sqs, resources["sns-target"])]
    assert sorted(f["updatedAt"] + f["id"] for f in fanned) == sorted(e["updatedAt"] + e["id"] for e in events)
    # Security Hub: one ASFF finding per GuardDuty finding, updated in place to its latest occurrence.
    stored = stored_findings(server, detector)
    imported = moto.client("securityhub").get_findings(MaxResults=100)["Findings"]
    assert {f["Id"] for f in imported} == {f["arn"] for f in stored.values()}
    checker = ShapeChecker("securityhub", wire_names=False)
    for document in imported:
        checker.check(document, "AwsSecurityFinding", document["Id"])
        finding = next(f for f in stored.values() if f["arn"] == document["Id"])
        assert document == render("asff", finding, link(finding["id"]))
    # S3: GuardDuty's layout, gzip JSONL, every occurrence exactly once across the objects.
    for bucket, prefix in (("kg-findings", "exports/"), ("gd-export", "guardduty/")):
        keys, lines = s3_lines(s3, bucket)
        day = time.strftime("%Y/%m/%d", time.gmtime())
        assert all(k.startswith(f"{prefix}AWSLogs/{ACCOUNT}/GuardDuty/{REGION}/{day}/") and k.endswith(".jsonl.gz")
                   for k in keys), keys
        assert sorted(orjson.dumps(line) for line in lines) == sorted(orjson.dumps(e) for e in events)
        assert len(keys) >= 2  # one object per interval: before the outage and after it
    # Archiving a finding re-imports it into Security Hub as ARCHIVED / RESOLVED (and the exports stay as they are).
    target = events[0]
    gd.archive_findings(DetectorId=detector, FindingIds=[target["id"]])

    def archived_in_hub():
        found = moto.client("securityhub").get_findings(MaxResults=100)["Findings"]
        [document] = [f for f in found if f["Id"] == target["arn"]]
        return document if document["RecordState"] == "ARCHIVED" else None

    assert wait_for(archived_in_hub, timeout=10)["Workflow"] == {"Status": "RESOLVED"}
    assert drain(sqs, resources["kg-queue"]) == []
    gd.delete_publishing_destination(DetectorId=detector, DestinationId=destination)
    assert gd.list_publishing_destinations(DetectorId=detector)["Destinations"] == []
    assert f"publishing-destination:{destination}" not in sink_health(server)
