"""The boto3 ``guardduty`` client against a running kubeguard, fed the lab cluster's real webhook batches."""

from __future__ import annotations

import gzip

import httpx
import pytest

from api.conftest import guardduty_client
from api.server import LAB_EVENTLISTS

PRIVILEGED = "PrivilegeEscalation:Kubernetes/PrivilegedContainer"
ANONYMOUS_TYPES = {
    "CredentialAccess:Kubernetes/SuccessfulAnonymousAccess",
    "Impact:Kubernetes/SuccessfulAnonymousAccess",
}


def feed_lab_scenario(server) -> None:
    with gzip.open(LAB_EVENTLISTS) as lines:
        for line in lines:
            assert httpx.post(f"{server.url}/k8s-audit/lab", content=line).status_code == 200
    server.wait_drained()


@pytest.fixture
def detector_id(gd, server):
    feed_lab_scenario(server)
    [detector] = gd.list_detectors()["DetectorIds"]
    return detector


def test_default_detector_exists_and_can_be_replaced(gd):
    [detector] = gd.list_detectors()["DetectorIds"]
    assert len(detector) == 32
    got = gd.get_detector(DetectorId=detector)
    assert got["Status"] == "ENABLED"
    assert got["DataSources"]["Kubernetes"]["AuditLogs"]["Status"] == "ENABLED"
    with pytest.raises(gd.exceptions.BadRequestException, match="already exists"):
        gd.create_detector(Enable=True)
    gd.update_detector(DetectorId=detector, Enable=False, FindingPublishingFrequency="FIFTEEN_MINUTES")
    got = gd.get_detector(DetectorId=detector)
    assert (got["Status"], got["FindingPublishingFrequency"]) == ("DISABLED", "FIFTEEN_MINUTES")
    gd.delete_detector(DetectorId=detector)
    assert gd.list_detectors()["DetectorIds"] == []
    new = gd.create_detector(Enable=True, ClientToken="once")["DetectorId"]
    assert gd.create_detector(Enable=True, ClientToken="once")["DetectorId"] == new
    assert gd.list_detectors()["DetectorIds"] == [new]


def test_an_unsupported_operation_says_so(gd):
    from botocore.exceptions import ClientError

    [detector] = gd.list_detectors()["DetectorIds"]
    for call in (lambda: gd.list_members(DetectorId=detector),
                 lambda: gd.get_malware_scan_settings(DetectorId=detector),
                 lambda: gd.list_organization_admin_accounts()):
        with pytest.raises(ClientError) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == "UnsupportedOperationException"
        assert "does not implement" in caught.value.response["Error"]["Message"]


def test_an_unknown_criterion_field_is_a_bad_request_naming_it(gd):
    [detector] = gd.list_detectors()["DetectorIds"]
    with pytest.raises(gd.exceptions.BadRequestException, match="unknown criterion field 'nope.field'"):
        gd.list_findings(DetectorId=detector, FindingCriteria={"Criterion": {"nope.field": {"Eq": ["x"]}}})
    with pytest.raises(gd.exceptions.BadRequestException, match="64-bit"):
        gd.get_findings_statistics(DetectorId=detector, FindingStatisticTypes=["COUNT_BY_SEVERITY"],
                                   FindingCriteria={"Criterion": {"updatedAt": {"Gte": 2**63}}})


def test_unknown_detector_is_a_bad_request(gd):
    with pytest.raises(gd.exceptions.BadRequestException, match="not owned"):
        gd.get_detector(DetectorId="0" * 32)


def test_list_and_get_findings_from_real_audit_batches(gd, detector_id):
    ids = gd.list_findings(DetectorId=detector_id)["FindingIds"]
    findings = gd.get_findings(DetectorId=detector_id, FindingIds=ids)["Findings"]
    types = {f["Type"] for f in findings}
    assert PRIVILEGED in types and types >= ANONYMOUS_TYPES
    privileged = next(f for f in findings if f["Type"] == PRIVILEGED)
    assert privileged["Resource"]["EksClusterDetails"]["Name"] == "lab"
    assert privileged["Service"]["DetectorId"] == detector_id
    assert privileged["Arn"].endswith(f"detector/{detector_id}/finding/{privileged['Id']}")
    workload = privileged["Resource"]["KubernetesDetails"]["KubernetesWorkloadDetails"]
    assert workload["Name"] == "priv-debug" and workload["Namespace"] == "dev"


def test_finding_criteria_and_sorting(gd, detector_id):
    high = gd.list_findings(
        DetectorId=detector_id,
        FindingCriteria={"Criterion": {"severity": {"Gte": 5}, "type": {"Eq": [PRIVILEGED]}}},
    )["FindingIds"]
    assert len(high) == 1
    assert not gd.list_findings(
        DetectorId=detector_id,
        FindingCriteria={"Criterion": {"severity": {"Gt": 9}, "type": {"Eq": [PRIVILEGED]}}},
    )["FindingIds"]
    by_namespace = gd.list_findings(
        DetectorId=detector_id,
        FindingCriteria={
            "Criterion": {"resource.kubernetesDetails.kubernetesWorkloadDetails.namespace": {"Equals": ["dev"]}}
        },
    )["FindingIds"]
    assert high[0] in by_namespace
    ascending = gd.list_findings(DetectorId=detector_id, SortCriteria={"AttributeName": "severity", "OrderBy": "ASC"})[
        "FindingIds"
    ]
    severities = [f["Severity"] for f in gd.get_findings(DetectorId=detector_id, FindingIds=ascending)["Findings"]]
    resorted = gd.get_findings(
        DetectorId=detector_id, FindingIds=ascending, SortCriteria={"AttributeName": "severity", "OrderBy": "ASC"}
    )["Findings"]
    assert [f["Severity"] for f in resorted] == sorted(severities)
    with pytest.raises(gd.exceptions.BadRequestException, match="only accepted by filters"):
        gd.list_findings(DetectorId=detector_id, FindingCriteria={"Criterion": {"type": {"Matches": ["*"]}}})


def test_paginators_walk_every_page(gd, detector_id):
    all_ids = gd.list_findings(DetectorId=detector_id)["FindingIds"]
    pages = list(gd.get_paginator("list_findings").paginate(DetectorId=detector_id, PaginationConfig={"PageSize": 2}))
    assert len(pages) == (len(all_ids) + 1) // 2
    assert [i for p in pages for i in p["FindingIds"]] == all_ids
    for name in ("some-filter", "other-filter", "third-filter"):
        gd.create_filter(DetectorId=detector_id, Name=name, FindingCriteria={"Criterion": {"severity": {"Gte": 9}}})
    filter_pages = list(
        gd.get_paginator("list_filters").paginate(DetectorId=detector_id, PaginationConfig={"PageSize": 2})
    )
    assert [n for p in filter_pages for n in p["FilterNames"]] == ["some-filter", "other-filter", "third-filter"]
    assert [d for p in gd.get_paginator("list_detectors").paginate() for d in p["DetectorIds"]] == [detector_id]
    for paginator in ("list_ip_sets", "list_threat_intel_sets"):
        assert list(gd.get_paginator(paginator).paginate(DetectorId=detector_id))


def test_statistics_grouped_and_by_severity(gd, detector_id):
    ids = gd.list_findings(DetectorId=detector_id)["FindingIds"]
    legacy = gd.get_findings_statistics(DetectorId=detector_id, FindingStatisticTypes=["COUNT_BY_SEVERITY"])
    assert sum(legacy["FindingStatistics"]["CountBySeverity"].values()) == len(ids)
    by_type = gd.get_findings_statistics(DetectorId=detector_id, GroupBy="FINDING_TYPE", OrderBy="DESC")
    groups = by_type["FindingStatistics"]["GroupedByFindingType"]
    assert sum(g["TotalFindings"] for g in groups) == len(ids)
    assert [g["TotalFindings"] for g in groups] == sorted((g["TotalFindings"] for g in groups), reverse=True)
    by_resource = gd.get_findings_statistics(DetectorId=detector_id, GroupBy="RESOURCE")
    [lab] = by_resource["FindingStatistics"]["GroupedByResource"]
    assert (lab["ResourceId"], lab["ResourceType"], lab["TotalFindings"]) == ("lab", "EKSCluster", len(ids))
    for group_by in ("ACCOUNT", "DATE", "SEVERITY"):
        assert gd.get_findings_statistics(DetectorId=detector_id, GroupBy=group_by)["FindingStatistics"]
    with pytest.raises(gd.exceptions.BadRequestException):
        gd.get_findings_statistics(
            DetectorId=detector_id, GroupBy="SEVERITY", FindingStatisticTypes=["COUNT_BY_SEVERITY"]
        )


def test_archive_unarchive_and_feedback(gd, detector_id):
    [target] = gd.list_findings(DetectorId=detector_id, FindingCriteria={"Criterion": {"type": {"Eq": [PRIVILEGED]}}})[
        "FindingIds"
    ]
    gd.archive_findings(DetectorId=detector_id, FindingIds=[target])
    archived = gd.list_findings(
        DetectorId=detector_id, FindingCriteria={"Criterion": {"service.archived": {"Eq": ["true"]}}}
    )["FindingIds"]
    assert archived == [target]
    gd.unarchive_findings(DetectorId=detector_id, FindingIds=[target])
    gd.update_findings_feedback(DetectorId=detector_id, FindingIds=[target], Feedback="USEFUL", Comments="real")
    [finding] = gd.get_findings(DetectorId=detector_id, FindingIds=[target])["Findings"]
    assert finding["Service"]["Archived"] is False and finding["Service"]["UserFeedback"] == "USEFUL"


def test_filters_crud_and_archive_suppression(gd, server):
    [detector_id] = gd.list_detectors()["DetectorIds"]
    criterion = {"Criterion": {"resource.kubernetesDetails.kubernetesWorkloadDetails.name": {"Matches": ["priv-*"]}}}
    assert (
        gd.create_filter(
            DetectorId=detector_id,
            Name="debug-pods",
            Action="ARCHIVE",
            Rank=1,
            FindingCriteria=criterion,
            Description="lab debug pods are expected",
        )["Name"]
        == "debug-pods"
    )
    got = gd.get_filter(DetectorId=detector_id, FilterName="debug-pods")
    assert (got["Action"], got["Rank"], got["FindingCriteria"]) == ("ARCHIVE", 1, criterion)
    with pytest.raises(gd.exceptions.BadRequestException):
        gd.create_filter(DetectorId=detector_id, Name="bad name", FindingCriteria=criterion)
    feed_lab_scenario(server)
    [suppressed] = gd.get_findings(
        DetectorId=detector_id,
        FindingIds=gd.list_findings(
            DetectorId=detector_id, FindingCriteria={"Criterion": {"type": {"Eq": [PRIVILEGED]}}}
        )["FindingIds"],
    )["Findings"]
    assert suppressed["Service"]["Archived"] is True
    others = gd.list_findings(
        DetectorId=detector_id, FindingCriteria={"Criterion": {"service.archived": {"Eq": ["false"]}}}
    )
    assert others["FindingIds"] and suppressed["Id"] not in others["FindingIds"]
    gd.update_filter(DetectorId=detector_id, FilterName="debug-pods", Action="NOOP", Rank=3)
    assert gd.get_filter(DetectorId=detector_id, FilterName="debug-pods")["Version"] == 2
    gd.delete_filter(DetectorId=detector_id, FilterName="debug-pods")
    assert gd.list_filters(DetectorId=detector_id)["FilterNames"] == []
    with pytest.raises(gd.exceptions.BadRequestException):
        gd.delete_filter(DetectorId=detector_id, FilterName="debug-pods")


def lists_allowed_in(directory) -> str:
    return f'[intel]\nallowed_locations = ["{directory}"]\n'


@pytest.mark.parametrize("kind", ["threat", "trusted"])
def test_intel_set_crud(make_server, tmp_path, kind):
    gd = guardduty_client(make_server(lists_allowed_in(tmp_path)).url)
    [detector_id] = gd.list_detectors()["DetectorIds"]
    listed = tmp_path / "list.txt"
    listed.write_text("198.51.100.0/24\n203.0.113.7\n")
    create, get, update, delete, listing, id_key, ids_key = (
        (
            gd.create_threat_intel_set,
            gd.get_threat_intel_set,
            gd.update_threat_intel_set,
            gd.delete_threat_intel_set,
            gd.list_threat_intel_sets,
            "ThreatIntelSetId",
            "ThreatIntelSetIds",
        )
        if kind == "threat"
        else (
            gd.create_ip_set,
            gd.get_ip_set,
            gd.update_ip_set,
            gd.delete_ip_set,
            gd.list_ip_sets,
            "IpSetId",
            "IpSetIds",
        )
    )
    set_id = create(DetectorId=detector_id, Name="acme", Format="TXT", Location=f"file://{listed}", Activate=True)[
        id_key
    ]
    got = get(DetectorId=detector_id, **{id_key: set_id})
    assert (got["Name"], got["Status"], got["Location"]) == ("acme", "ACTIVE", f"file://{listed}")
    update(DetectorId=detector_id, Activate=False, **{id_key: set_id})
    assert get(DetectorId=detector_id, **{id_key: set_id})["Status"] == "INACTIVE"
    assert listing(DetectorId=detector_id)[ids_key] == [set_id]
    delete(DetectorId=detector_id, **{id_key: set_id})
    assert listing(DetectorId=detector_id)[ids_key] == []
    with pytest.raises(gd.exceptions.BadRequestException, match="could not be loaded"):
        create(DetectorId=detector_id, Name="gone", Format="TXT", Location=str(tmp_path / "missing.txt"), Activate=True)


def test_create_sample_findings_marks_every_type_as_sample(gd):
    types = pytest.importorskip("kubeguard.findings.types").ALL_FINDING_TYPES
    pytest.importorskip("kubeguard.findings.sample")
    [detector_id] = gd.list_detectors()["DetectorIds"]
    gd.create_sample_findings(DetectorId=detector_id, FindingTypes=[])
    ids = gd.list_findings(
        DetectorId=detector_id,
        FindingCriteria={"Criterion": {"service.additionalInfo.sample": {"Eq": ["true"]}}},
        MaxResults=50,
    )
    found = {f["Type"] for f in gd.get_findings(DetectorId=detector_id, FindingIds=ids["FindingIds"])["Findings"]}
    assert found <= set(types) and len(found) == min(50, len(types))


def test_deleting_a_detector_unloads_its_threat_intel_sets(make_server, tmp_path):
    server = make_server(lists_allowed_in(tmp_path))
    gd = guardduty_client(server.url)
    listed = tmp_path / "bad.txt"
    listed.write_text("203.0.113.7\n")
    [old] = gd.list_detectors()["DetectorIds"]
    gd.create_threat_intel_set(DetectorId=old, Name="bad", Format="TXT", Location=f"file://{listed}", Activate=True)

    def call_from_listed_address(audit_id: str) -> None:
        event = {
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": audit_id,
            "stage": "ResponseComplete", "requestURI": "/api/v1/namespaces/default/secrets", "verb": "list",
            "user": {"username": "alice", "groups": ["system:authenticated"]}, "sourceIPs": ["203.0.113.7"],
            "objectRef": {"resource": "secrets", "namespace": "default", "apiVersion": "v1"},
            "responseStatus": {"code": 200},
            "requestReceivedTimestamp": "2026-11-27T17:47:50.142700Z", "stageTimestamp": "2026-11-27T17:47:50.143836Z",
        }
        assert httpx.post(f"{server.url}/k8s-audit/lab", json=event).status_code == 200
        server.wait_drained()

    def custom_caller_findings(detector: str) -> list[str]:
        criterion = {"type": {"Eq": ["CredentialAccess:Kubernetes/MaliciousIPCaller.Custom"]}}
        return gd.list_findings(DetectorId=detector, FindingCriteria={"Criterion": criterion})["FindingIds"]

    call_from_listed_address("before-delete")
    assert custom_caller_findings(old)
    gd.delete_detector(DetectorId=old)
    new = gd.create_detector(Enable=True)["DetectorId"]
    call_from_listed_address("after-delete")
    assert custom_caller_findings(new) == []  # the deleted detector's list no longer applies


def test_a_plain_http_list_location_is_refused(gd):
    [detector_id] = gd.list_detectors()["DetectorIds"]
    for create in (gd.create_threat_intel_set, gd.create_ip_set):
        with pytest.raises(gd.exceptions.BadRequestException, match="https://"):
            create(DetectorId=detector_id, Name="plain", Format="TXT", Location="http://lists.example/x.txt",
                   Activate=True)


def test_list_locations_outside_the_allowed_roots_are_refused_without_detail(make_server, tmp_path):
    allowed = tmp_path / "lists"
    allowed.mkdir()
    (allowed / "ok.txt").write_text("203.0.113.7\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("203.0.113.8\n")
    (allowed / "escape.txt").symlink_to(outside)
    gd = guardduty_client(make_server(lists_allowed_in(allowed)).url)
    [detector_id] = gd.list_detectors()["DetectorIds"]
    created = gd.create_threat_intel_set(DetectorId=detector_id, Name="ok", Format="TXT",
                                         Location=str(allowed / "ok.txt"), Activate=True)
    assert created["ThreatIntelSetId"]
    for location in (str(outside), f"file://{outside}", str(allowed / "escape.txt"), "/etc/passwd", "/dev/kmsg",
                     str(tmp_path / "no-such-file"), "https://127.0.0.1/list.txt", "https://10.0.0.1/x.txt"):
        with pytest.raises(gd.exceptions.BadRequestException) as caught:
            gd.create_threat_intel_set(DetectorId=detector_id, Name="bad", Format="TXT", Location=location,
                                       Activate=True)
        message = caught.value.response["Error"]["Message"]
        assert "allowed_locations" in message or "public address" in message, message
        assert "No such file" not in message and "Permission" not in message
