"""boto3's ``detective`` client against a real ``kubeguard serve``: investigate the intruder's subject."""

from __future__ import annotations

from datetime import UTC, datetime

import boto3
import httpx
import pytest
from api.server import Server
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from correlate.test_stored import occurrences
from kubeguard.correlate.entities import subject_arn
from kubeguard.correlate.stored import correlate_stored
from kubeguard.store.database import open_engine
from kubeguard.store.recorder import FindingRecorder

KEY, SECRET = "AKIDKUBEGUARD", "wJalrXUtnFEMI/K7MDENG+bPxRfiCY"
CONFIG = f"""
[serve]
access_keys = {{ {KEY} = "{SECRET}" }}
"""


def client(service: str, url: str):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
                        aws_secret_access_key=SECRET, config=Config(retries={"max_attempts": 1}))


def signed(method: str, url: str, service: str, body: bytes = b"") -> httpx.Response:
    """A request SigV4-signed with the configured key for ``service``, sent as is."""
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(Credentials(KEY, SECRET), service, "us-east-1").add_auth(request)
    return httpx.request(method, url, headers=dict(request.headers), content=body)


@pytest.fixture(scope="module")
def served(tmp_path_factory, intrusion):
    tmp_path = tmp_path_factory.mktemp("served")
    url = f"sqlite:///{tmp_path / 'kubeguard.db'}"
    engine = open_engine(url)
    FindingRecorder(engine, correlate=correlate_stored).record(occurrences(intrusion))
    engine.dispose()
    server = Server(url, tmp_path, CONFIG).start()
    yield server
    server.stop()


def test_investigating_the_intruders_subject_gives_detective_indicators(served, intrusion):
    detective = client("detective", served.url)
    (graph,) = detective.list_graphs()["GraphList"]
    entity = subject_arn("default", "erin@example.com")
    started = detective.start_investigation(
        GraphArn=graph["Arn"], EntityArn=entity,
        ScopeStartTime=datetime(2026, 1, 14, tzinfo=UTC), ScopeEndTime=datetime(2026, 1, 16, tzinfo=UTC))
    investigation_id = started["InvestigationId"]
    details = detective.get_investigation(GraphArn=graph["Arn"], InvestigationId=investigation_id)
    assert (details["EntityArn"], details["Status"], details["State"], details["Severity"]) == (
        entity, "SUCCESSFUL", "ACTIVE", "CRITICAL")
    indicators = detective.list_indicators(GraphArn=graph["Arn"], InvestigationId=investigation_id)["Indicators"]
    kinds = {i["IndicatorType"] for i in indicators}
    assert {"NEW_USER_AGENT", "RELATED_FINDING", "TTP_OBSERVED", "RELATED_FINDING_GROUP"} <= kinds
    assert kinds & {"NEW_ASO", "NEW_GEOLOCATION"}
    agents = [i["IndicatorDetail"]["NewUserAgentDetail"]["UserAgent"] for i in indicators
              if i["IndicatorType"] == "NEW_USER_AGENT"]
    assert agents == ["OpenAPI-Generator/29.0.0/python"]
    related = {i["IndicatorDetail"]["RelatedFindingDetail"]["Type"] for i in indicators
               if i["IndicatorType"] == "RELATED_FINDING"}
    assert {"AttackSequence:EKS/CompromisedCluster",
            "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed"} <= related
    pages, token = [], {}
    while True:
        answer = detective.list_indicators(GraphArn=graph["Arn"], InvestigationId=investigation_id, MaxResults=4,
                                           **token)
        pages.append(answer["Indicators"])
        if "NextToken" not in answer:
            break
        token = {"NextToken": answer["NextToken"]}
    assert len(pages) > 1 and all(len(p) <= 4 for p in pages)
    assert [i for p in pages for i in p] == indicators
    only_new = detective.list_indicators(GraphArn=graph["Arn"], InvestigationId=investigation_id,
                                         IndicatorType="NEW_USER_AGENT")["Indicators"]
    assert [i["IndicatorType"] for i in only_new] == ["NEW_USER_AGENT"]

    detective.update_investigation_state(GraphArn=graph["Arn"], InvestigationId=investigation_id, State="ARCHIVED")
    listed = detective.list_investigations(GraphArn=graph["Arn"])["InvestigationDetails"]
    assert [(i["InvestigationId"], i["State"]) for i in listed] == [(investigation_id, "ARCHIVED")]


def test_a_quiet_scope_is_informational_and_unknown_graphs_and_ids_are_not_found(served):
    detective = client("detective", served.url)
    (graph,) = detective.list_graphs()["GraphList"]
    quiet = detective.start_investigation(
        GraphArn=graph["Arn"], EntityArn=subject_arn("default", "erin@example.com"),
        ScopeStartTime=datetime(2026, 1, 6, tzinfo=UTC), ScopeEndTime=datetime(2026, 1, 7, tzinfo=UTC))
    details = detective.get_investigation(GraphArn=graph["Arn"], InvestigationId=quiet["InvestigationId"])
    assert details["Severity"] == "INFORMATIONAL"
    with pytest.raises(ClientError) as error:
        detective.get_investigation(GraphArn=graph["Arn"] + "x", InvestigationId=quiet["InvestigationId"])
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:
        detective.get_investigation(GraphArn=graph["Arn"], InvestigationId="0" * 21)
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"
    with pytest.raises(ClientError) as error:
        detective.start_investigation(GraphArn=graph["Arn"], EntityArn="arn:aws:s3:::bucket",
                                      ScopeStartTime=datetime(2026, 1, 6, tzinfo=UTC),
                                      ScopeEndTime=datetime(2026, 1, 7, tzinfo=UTC))
    assert error.value.response["Error"]["Code"] == "ValidationException"
    bad_state = signed("POST", f"{served.url}/investigations/updateInvestigationState", "detective",
                       b'{"GraphArn": "%s", "InvestigationId": "%s", "State": "DONE"}'
                       % (graph["Arn"].encode(), quiet["InvestigationId"].encode()))
    assert (bad_state.status_code, bad_state.headers["x-amzn-errortype"]) == (400, "ValidationException")


def test_detective_routes_need_a_detective_signature(served):
    response = httpx.post(f"{served.url}/graphs/list", content=b"{}")
    assert response.status_code == 403
    as_guardduty = signed("POST", f"{served.url}/graphs/list", "guardduty", b"{}")
    assert as_guardduty.status_code == 403  # a GuardDuty signature does not open Detective routes
    assert signed("POST", f"{served.url}/graphs/list", "detective", b"{}").status_code == 200
    assert httpx.get(f"{served.url}/api/finding-groups").status_code == 403


def test_finding_groups_relate_the_intruders_findings(served, intrusion):
    response = signed("GET", f"{served.url}/api/finding-groups?cluster=default", "guardduty")
    assert response.status_code == 200, response.text
    groups = response.json()["groups"]
    (sequence,) = [f for f in intrusion.findings if f["type"] == "AttackSequence:EKS/CompromisedCluster"]
    mine = [g for g in groups if "erin@example.com" in g["actors"]]
    assert len(mine) == 1
    assert mine[0]["attackSequenceArns"] == [sequence["arn"]]
    assert len(mine[0]["findingIds"]) == len(
        [f for f in intrusion.findings if f.get("associatedAttackSequenceArn") == sequence["arn"]])


def test_the_guardduty_api_serves_the_sequence_and_boto3_parses_it(served, intrusion):
    guardduty = client("guardduty", served.url)
    (detector_id,) = guardduty.list_detectors()["DetectorIds"]
    ids = guardduty.list_findings(
        DetectorId=detector_id,
        FindingCriteria={"Criterion": {"type": {"Eq": ["AttackSequence:EKS/CompromisedCluster"]}}})["FindingIds"]
    (sequence,) = guardduty.get_findings(DetectorId=detector_id, FindingIds=ids)["Findings"]
    assert sequence["Severity"] == 9.0
    body = sequence["Service"]["Detection"]["Sequence"]
    assert {s["Name"] for s in body["Signals"]} >= {"CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed",
                                                   "PrivilegeEscalation:Kubernetes/PrivilegedContainer"}
    members = guardduty.list_findings(
        DetectorId=detector_id, FindingCriteria={"Criterion": {"associatedAttackSequenceArn": {"Eq": [
            sequence["Arn"]]}}})["FindingIds"]
    assert len(members) == len([s for s in body["Signals"] if s["Type"] == "FINDING"])
    statistics = guardduty.get_findings_statistics(DetectorId=detector_id, FindingStatisticTypes=["COUNT_BY_SEVERITY"])
    assert statistics["FindingStatistics"]["CountBySeverity"]["9.0"] == 1
