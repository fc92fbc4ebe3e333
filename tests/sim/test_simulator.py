"""The simulator's contract: real-looking events, in order, reproducible, with truthful labels."""

from __future__ import annotations

import gzip
import ipaddress
import re
from datetime import timedelta
from typing import Literal

import msgspec
import orjson
import pytest
from typer.testing import CliRunner

from kubeguard.audit.event import AuditEvent
from kubeguard.cli.simulate import app, cluster_path
from kubeguard.sim import SimConfig, Simulator
from kubeguard.sim.clock import parse_duration
from kubeguard.sim.scenarios import SCENARIOS, resolve

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


class User(msgspec.Struct):
    username: str
    groups: list[str]
    uid: str = ""
    extra: dict[str, list[str]] = {}


class Status(msgspec.Struct):
    code: int


class RequiredFields(msgspec.Struct):
    """The fields every event of a real API server carries, with their types."""

    kind: Literal["Event"]
    apiVersion: Literal["audit.k8s.io/v1"]
    level: Literal["Metadata", "Request", "RequestResponse"]
    auditID: str
    stage: Literal["ResponseStarted", "ResponseComplete"]
    requestURI: str
    verb: str
    user: User
    sourceIPs: list[str]
    userAgent: str
    responseStatus: Status
    requestReceivedTimestamp: str
    stageTimestamp: str


def run(attacks: str | list[str], clusters: int = 2, seed: int = 7) -> tuple[list[tuple[str, dict]], list[dict]]:
    names = ["prod-use1", "staging-usw2"][:clusters]
    simulator = Simulator(SimConfig(seed=seed, duration=timedelta(days=2), learning=timedelta(days=1),
                                    clusters=names, attacks=[attacks] if isinstance(attacks, str) else attacks))
    return list(simulator.stream()), simulator.labels


@pytest.fixture(scope="module")
def attacked() -> tuple[list[tuple[str, dict]], list[dict]]:
    return run("all")


@pytest.fixture(scope="module")
def by_id(attacked) -> dict[str, list[tuple[str, dict]]]:
    index: dict[str, list[tuple[str, dict]]] = {}
    for cluster, event in attacked[0]:
        index.setdefault(event["auditID"], []).append((cluster, event))
    return index


def label(attacked, scenario: str) -> dict:
    return next(item for item in attacked[1] if item["scenario"] == scenario)


def expected_events(attacked, by_id, scenario: str, finding_type: str) -> list[dict]:
    entry = next(e for e in label(attacked, scenario)["expected"] if e["type"] == finding_type)
    return [by_id[audit_id][0][1] for audit_id in entry["auditIDs"]]


# -- shape ---------------------------------------------------------------------------------------------

def test_every_event_decodes_with_the_audit_fields_and_types(attacked):
    for _, event in attacked[0]:
        raw = orjson.dumps(event)
        fields = msgspec.json.decode(raw, type=RequiredFields)
        assert UUID.match(fields.auditID)
        assert MICRO_TIME.match(fields.requestReceivedTimestamp) and MICRO_TIME.match(fields.stageTimestamp)
        assert fields.requestReceivedTimestamp <= fields.stageTimestamp
        assert fields.requestURI.startswith("/")
        assert "cluster" not in event
        decoded = msgspec.json.decode(raw, type=AuditEvent)
        assert decoded.auditID == fields.auditID


def test_every_source_address_is_a_valid_ip(attacked):
    addresses = {ip for _, event in attacked[0] for ip in event["sourceIPs"]}
    for ip in addresses:
        ipaddress.ip_address(ip)  # raises ValueError on a malformed address


def test_resource_requests_carry_an_object_ref_and_uri_that_agree(attacked):
    for _, event in attacked[0]:
        ref = event.get("objectRef")
        if ref is None:
            assert event["level"] == "Metadata" and event["requestURI"].split("?")[0] in ("/api", "/apis")
            continue
        assert f"/{ref['resource']}" in event["requestURI"]
        if ref.get("subresource"):
            assert event["requestURI"].split("?")[0].endswith(f"/{ref['name']}/{ref['subresource']}")


def test_secrets_and_configmaps_are_logged_at_metadata_without_bodies(attacked):
    seen = 0
    for _, event in attacked[0]:
        if event.get("objectRef", {}).get("resource") in ("secrets", "configmaps"):
            seen += 1
            assert event["level"] == "Metadata"
            assert "requestObject" not in event and "responseObject" not in event
    assert seen > 100


def test_long_running_requests_log_started_and_complete_stages(attacked):
    stages: dict[str, list[str]] = {}
    for _, event in attacked[0]:
        if event["verb"] == "watch" or event.get("objectRef", {}).get("subresource") == "exec":
            stages.setdefault(event["auditID"], []).append(event["stage"])
    complete = [s for s in stages.values() if "ResponseComplete" in s]
    assert complete and all(s == ["ResponseStarted", "ResponseComplete"] for s in complete)


def test_traffic_mixes_machines_people_and_pipelines(attacked):
    agents = {event["userAgent"].split("/")[0] for _, event in attacked[0]}
    assert {"kubelet", "kube-controller-manager", "kubectl", "Helm", "argocd-application-controller"} <= agents
    humans = {event["user"]["extra"]["sessionName"][0] for _, event in attacked[0]
              if event["userAgent"].startswith("kubectl") and "sessionName" in event["user"].get("extra", {})}
    assert {"bob", "carol", "alice@example.com"} <= humans


# -- order and reproducibility -------------------------------------------------------------------------

def test_events_are_in_time_order_overall_and_per_cluster(attacked):
    stamps = [event["stageTimestamp"] for _, event in attacked[0]]
    assert stamps == sorted(stamps)
    assert {cluster for cluster, _ in attacked[0]} == {"prod-use1", "staging-usw2"}


def test_events_stay_inside_the_simulated_span(attacked):
    stamps = [event["stageTimestamp"] for _, event in attacked[0]]
    assert stamps[0] >= "2026-01-05T00:00:00" and stamps[-1] < "2026-01-07T00:00:00"


def test_same_seed_same_output_and_another_seed_differs():
    first, first_labels = run("stolen-kubeconfig", clusters=1, seed=3)
    again, again_labels = run("stolen-kubeconfig", clusters=1, seed=3)
    other, _ = run("stolen-kubeconfig", clusters=1, seed=4)
    assert orjson.dumps(first) == orjson.dumps(again)
    assert first_labels == again_labels
    assert orjson.dumps(first) != orjson.dumps(other)


def test_no_attack_event_leaks_into_a_run_without_attacks(attacked):
    benign, labels = run("none")
    assert labels == []
    attack_ids = {audit_id for item in attacked[1] for audit_id in item["auditIDs"]}
    without = [(cluster, event) for cluster, event in attacked[0] if event["auditID"] not in attack_ids]
    assert orjson.dumps(without) == orjson.dumps(benign)
    principals = {p for item in attacked[1] for p in item["principals"]}
    assert not any("GuardDutyTester" in event["user"]["username"] for _, event in benign)
    assert not any(event["user"]["username"] == "system:anonymous" for _, event in benign)
    assert "system:anonymous" in principals


# -- labels --------------------------------------------------------------------------------------------

def test_every_scenario_is_labelled_once_after_the_learning_period(attacked):
    assert sorted(item["scenario"] for item in attacked[1]) == sorted(SCENARIOS)
    for item in attacked[1]:
        assert item["start"] >= "2026-01-06T00:00:00"
        assert item["findingTypes"] == sorted(e["type"] for e in item["expected"])


def test_labels_reference_audit_ids_of_their_own_cluster(attacked, by_id):
    for item in attacked[1]:
        for audit_id in item["auditIDs"]:
            assert {cluster for cluster, _ in by_id[audit_id]} == {item["cluster"]}
        for expected in item["expected"]:
            assert expected["auditIDs"] and set(expected["auditIDs"]) <= set(item["auditIDs"])
            assert re.match(r"^[A-Za-z]+:Kubernetes/[A-Za-z.!]+$", expected["type"])


# -- each scenario really does what its label claims ---------------------------------------------------

def test_anonymous_access_binds_and_then_uses_system_anonymous(attacked, by_id):
    (grant,) = expected_events(attacked, by_id, "anonymous-access", "Policy:Kubernetes/AnonymousAccessGranted")
    assert grant["verb"] == "create" and grant["objectRef"]["resource"] == "clusterrolebindings"
    assert {"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "system:anonymous"} in \
        grant["requestObject"]["subjects"]
    (used,) = expected_events(attacked, by_id, "anonymous-access", "Discovery:Kubernetes/SuccessfulAnonymousAccess")
    assert used["user"]["username"] == "system:anonymous" and used["responseStatus"]["code"] == 200
    assert used["verb"] == "list" and used["objectRef"]["resource"] == "pods"


def test_exec_into_kube_system_is_an_upgraded_exec(attacked, by_id):
    (event,) = expected_events(attacked, by_id, "exec-kube-system", "Execution:Kubernetes/ExecInKubeSystemPod")
    assert event["objectRef"]["namespace"] == "kube-system" and event["objectRef"]["subresource"] == "exec"
    assert event["verb"] == "create" and event["responseStatus"]["code"] == 101


def test_admin_default_sa_patches_cluster_admin_with_the_default_account(attacked, by_id):
    (event,) = expected_events(attacked, by_id, "admin-default-sa",
                               "Policy:Kubernetes/AdminAccessToDefaultServiceAccount")
    assert event["verb"] == "patch" and event["objectRef"]["name"] == "cluster-admin"
    assert {"kind": "ServiceAccount", "name": "default", "namespace": "default"} in event["responseObject"]["subjects"]
    assert event["responseObject"]["roleRef"]["name"] == "cluster-admin"


def test_exposed_dashboard_becomes_a_load_balancer(attacked, by_id):
    (event,) = expected_events(attacked, by_id, "exposed-dashboard", "Policy:Kubernetes/ExposedDashboard")
    assert event["objectRef"]["name"] == "kubernetes-dashboard"
    assert event["responseObject"]["spec"]["type"] == "LoadBalancer"


def test_privileged_container_really_is_privileged(attacked, by_id):
    (event,) = expected_events(attacked, by_id, "privileged-container", "PrivilegeEscalation:Kubernetes/PrivilegedContainer")
    (container,) = event["requestObject"]["spec"]["containers"]
    assert container["securityContext"]["privileged"] is True


def test_sensitive_mount_mounts_the_hosts_etc_writable(attacked, by_id):
    (event,) = expected_events(attacked, by_id, "sensitive-mount", "Persistence:Kubernetes/ContainerWithSensitiveMount")
    spec = event["requestObject"]["spec"]["template"]["spec"]
    assert spec["volumes"] == [{"name": "test-volume", "hostPath": {"path": "/etc", "type": "Directory"}}]
    assert not spec["containers"][0]["volumeMounts"][0].get("readOnly")


@pytest.mark.parametrize(("scenario", "list_name"), [("tor-caller", "tor"), ("custom-threat-ip", "custom")])
def test_threat_list_scenarios_call_from_the_labelled_addresses(attacked, by_id, scenario, list_name):
    item = label(attacked, scenario)
    listed = set(item["threatIPs"][list_name])
    for expected in item["expected"]:
        for audit_id in expected["auditIDs"]:
            assert set(by_id[audit_id][0][1]["sourceIPs"]) <= listed
    benign_ips = {ip for _, event in attacked[0] if event["auditID"] not in set(item["auditIDs"])
                  for ip in event["sourceIPs"]}
    assert not listed & benign_ips


def test_stolen_kubeconfig_is_bob_from_an_address_and_client_he_never_used(attacked, by_id):
    item = label(attacked, "stolen-kubeconfig")
    secrets = expected_events(attacked, by_id, "stolen-kubeconfig",
                              "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed")
    attacker = secrets[0]
    assert attacker["user"]["extra"]["sessionName"] == ["bob"]
    bobs_history = [event for cluster, event in attacked[0] if event["auditID"] not in set(item["auditIDs"])
                    and event["user"].get("extra", {}).get("sessionName") == ["bob"]]
    assert bobs_history
    assert attacker["sourceIPs"][0] not in {event["sourceIPs"][0] for event in bobs_history}
    assert attacker["userAgent"] not in {event["userAgent"] for event in bobs_history}
    assert len({e["objectRef"].get("namespace", "*") for e in secrets}) >= 3
    execs = expected_events(attacked, by_id, "stolen-kubeconfig", "Execution:Kubernetes/AnomalousBehavior.ExecInPod")
    assert all(e["objectRef"]["subresource"] == "exec" for e in execs)
    (deployed,) = expected_events(attacked, by_id, "stolen-kubeconfig",
                                  "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer")
    assert deployed["requestObject"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"]


def test_compromised_ci_binds_cluster_admin_and_deploys_privileged(attacked, by_id):
    (binding,) = expected_events(attacked, by_id, "compromised-ci",
                                 "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated")
    assert binding["user"]["username"] == "system:serviceaccount:jenkins:jenkins-deployer"
    assert binding["requestObject"]["roleRef"]["name"] == "cluster-admin"
    (workload,) = expected_events(attacked, by_id, "compromised-ci",
                                  "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer")
    assert workload["user"]["username"] == binding["user"]["username"]
    assert workload["requestObject"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"]


def test_secret_harvesting_lists_secrets_in_every_namespace(attacked, by_id):
    events = expected_events(attacked, by_id, "secret-harvesting",
                             "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed")
    assert all(e["verb"] == "list" and e["objectRef"]["resource"] == "secrets" for e in events)
    assert len({e["objectRef"]["namespace"] for e in events}) == len(events) >= 10


def test_cryptominer_runs_xmrig_with_the_host_root_mounted(attacked, by_id):
    (daemon_set,) = expected_events(attacked, by_id, "cryptominer",
                                    "Persistence:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount")
    spec = daemon_set["requestObject"]["spec"]["template"]["spec"]
    assert daemon_set["requestObject"]["kind"] == "DaemonSet" and "xmrig" in spec["containers"][0]["image"]
    assert {"name": "host", "hostPath": {"path": "/", "type": "Directory"}} in spec["volumes"]
    (plain,) = expected_events(attacked, by_id, "cryptominer", "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed")
    assert "xmrig" in plain["requestObject"]["spec"]["template"]["spec"]["containers"][0]["image"]


def test_rbac_backdoor_creates_a_wildcard_role_and_checks_powerful_permissions(attacked, by_id):
    (role,) = expected_events(attacked, by_id, "rbac-backdoor", "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated")
    assert role["requestObject"]["rules"] == [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]
    checks = expected_events(attacked, by_id, "rbac-backdoor", "Discovery:Kubernetes/AnomalousBehavior.PermissionChecked")
    assert {c["responseObject"]["spec"]["resourceAttributes"]["verb"] for c in checks} >= {"*", "impersonate"}
    assert all(c["responseObject"]["status"]["allowed"] is True for c in checks)


def test_controllers_echo_attack_workloads_without_being_expected_to_raise(attacked, by_id):
    item = label(attacked, "cryptominer")
    expected = {audit_id for e in item["expected"] for audit_id in e["auditIDs"]}
    echo = [by_id[a][0][1] for a in item["auditIDs"] if a not in expected]
    assert echo and all(e["user"]["username"].startswith("system:serviceaccount:kube-system:") or
                        e["user"]["username"] == "system:kube-scheduler" for e in echo)


# -- configuration and CLI -----------------------------------------------------------------------------

def test_attack_names_resolve_and_unknown_ones_are_refused():
    assert resolve("none") == []
    assert resolve("all") == list(SCENARIOS)
    assert "tor-caller" in resolve("guardduty-tester") and "cryptominer" not in resolve("guardduty-tester")
    with pytest.raises(ValueError, match="unknown attack"):
        resolve("cryptominr")


def test_attacks_need_time_after_the_learning_period():
    with pytest.raises(ValueError, match="learning"):
        Simulator(SimConfig(duration=timedelta(days=2), attacks=["all"]))


def test_durations_read_like_the_cli_writes_them():
    assert parse_duration("14d") == timedelta(days=14)
    assert parse_duration("1d12h") == timedelta(hours=36)
    with pytest.raises(ValueError):
        parse_duration("two weeks")


def test_cli_writes_one_gzip_file_per_cluster_and_the_labels(tmp_path):
    out = tmp_path / "audit.jsonl.gz"
    labels = tmp_path / "labels.jsonl"
    result = CliRunner().invoke(app, ["--duration", "30h", "--learning", "1d", "--clusters", "2", "--seed", "5",
                                      "--attacks", "tor-caller,rbac-backdoor", "--out", str(out),
                                      "--labels", str(labels)])
    assert result.exit_code == 0, result.output
    written = {}
    for cluster in ("prod-use1", "staging-usw2"):
        with gzip.open(cluster_path(out, cluster, True)) as handle:
            written[cluster] = {orjson.loads(line)["auditID"] for line in handle}
        assert written[cluster]
    for item in map(orjson.loads, labels.read_bytes().splitlines()):
        assert set(item["auditIDs"]) <= written[item["cluster"]]
