"""The console's acceptance check, rehearsed: two clusters' audit logs through the webhook, every deep link
in chromium.

Cluster ``lab`` is the recorded anonymous attack with dangerous workloads; cluster ``prod-euw1`` is nine
simulated days of erin's ordinary use before her credentials are used from a new address with a new tool
(:mod:`console.two_clusters`). Both are POSTed to a real ``kubeguard serve`` as the API server's webhook
backend sends them (EventLists of up to 400 events to ``/k8s-audit/{cluster}``). The links carry no scope
time: the pages' defaults must land on the activity, which is months in the past. Each page must open with
no script error, no failed request and no HTTP error, and show what an investigator needs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from api.conftest import guardduty_client
from api.server import Server

from console.conftest import PageWatch, wait_drained
from console.two_clusters import (
    LAB_CLUSTER,
    LAB_LOG,
    STOLEN_CLUSTER,
    StolenCredentials,
    lab_events,
    post_cluster,
    stolen_credentials_log,
)
from kubeguard.config import Settings
from kubeguard.graph.retention import Retention, prune
from kubeguard.intel.geo import remote_ip_details
from kubeguard.scan import run_scan
from kubeguard.store.database import open_engine

SECRETS_ACCESSED = "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed"


#: ``KUBEGUARD_REHEARSAL_SCALE=0.05`` rehearses with the whole simulated cluster around erin (190,000
#: events at that pace, minutes to feed: scripts/console-rehearsal); unset, her own events only.
WHOLE_CLUSTER_SCALE = float(os.environ.get("KUBEGUARD_REHEARSAL_SCALE", "0"))


@pytest.fixture(scope="module")
def stolen() -> StolenCredentials:
    return stolen_credentials_log(everyone=WHOLE_CLUSTER_SCALE)


@pytest.fixture(scope="module")
def two_clusters(tmp_path_factory, stolen) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("console-two-clusters")
    server = Server(f"sqlite:///{workdir / 'kubeguard.db'}", workdir).start()
    try:
        post_cluster(server.url, LAB_CLUSTER, lab_events())
        post_cluster(server.url, STOLEN_CLUSTER, stolen.events)
        wait_drained(server.url, timeout=60 if not WHOLE_CLUSTER_SCALE else 1800)
        # The service prunes its activity store every minute; do it now, as a check that lasts longer
        # than a minute would see it: January's cluster must survive beside November's.
        engine = open_engine(server.db_url)
        with engine.begin() as conn:
            prune(conn, Retention())
        engine.dispose()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def served_findings(two_clusters) -> list[dict[str, Any]]:
    """Every finding the service holds, read through the GuardDuty API as any client would."""
    gd = guardduty_client(two_clusters.url)
    detector = gd.list_detectors()["DetectorIds"][0]
    ids: list[str] = []
    for page in gd.get_paginator("list_findings").paginate(DetectorId=detector):
        ids += page["FindingIds"]
    findings: list[dict[str, Any]] = []
    for first in range(0, len(ids), 50):
        findings += gd.get_findings(DetectorId=detector, FindingIds=ids[first : first + 50])["Findings"]
    return findings


class Visit:
    """Opens console pages and records every shortfall, so one run reports all of them."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.watch = PageWatch(page)
        self.gaps: list[str] = []

    def open(self, path: str, settle: bool = True) -> str:
        """The page's main text. ``settle=False`` for pages whose graph :meth:`expect_drawing` waits for
        (the graph's fetch is their only request after load), which saves network-idle's half second."""
        response = self.page.goto(self.base + path, wait_until="networkidle" if settle else "load")
        status = response.status if response is not None else None
        if status != 200:
            self.gaps.append(f"{path}: HTTP {status}")
        self.gaps += [f"{path}: {problem}" for problem in self.watch.take()]
        return self.page.inner_text("main") if self.page.locator("main").count() else ""

    def expect(self, path: str, text: str, *facts: str) -> None:
        for fact in facts:
            if fact not in text:
                self.gaps.append(f"{path}: does not show {fact!r}")

    def expect_drawing(self, path: str) -> None:
        """A drawn graph (nodes in its SVG) where the page has a graph box, else a chart with bars; then
        whatever went wrong meanwhile (the graph's fetch is the request a page makes after loading)."""
        has_graph = self.page.locator(".graph").count() > 0
        selector = ".graph svg g.node" if has_graph else "svg.chart rect"
        try:
            self.page.wait_for_selector(selector, timeout=5000)
        except Exception:
            self.gaps.append(f"{path}: no {'graph' if has_graph else 'chart'} drawn")
        else:
            if has_graph and self.page.locator(".graph svg g.node").count() < 2:
                self.gaps.append(f"{path}: the graph has a single node")
        self.gaps += [f"{path}: {problem}" for problem in self.watch.take()]


def _user(finding: dict[str, Any]) -> str:
    return finding["Resource"]["KubernetesDetails"]["KubernetesUserDetails"]["Username"]


def _namespace(finding: dict[str, Any]) -> str | None:
    action = (finding["Service"].get("Action") or {}).get("KubernetesApiCallAction") or {}
    workload = finding["Resource"]["KubernetesDetails"].get("KubernetesWorkloadDetails") or {}
    return action.get("Namespace") or workload.get("Namespace")


def _cluster(finding: dict[str, Any]) -> str:
    return finding["Resource"]["EksClusterDetails"]["Name"]


def _created_pod(events: list[dict[str, Any]], owner: str) -> str:
    """``namespace/name`` of a pod a controller created for ``owner`` (its name is generated)."""
    return next(
        f"{e['objectRef']['namespace']}/{e['responseObject']['metadata']['name']}"
        for e in events
        if e["verb"] == "create" and e["objectRef"].get("resource") == "pods" and not e["objectRef"].get("subresource")
        and e.get("responseObject", {}).get("metadata", {}).get("name", "").startswith(owner + "-")
    )


def _section(page: Any, heading: str) -> str:
    """The text of a page's panel titled ``heading``, or "" when the page has none."""
    panel = page.locator(f"section:has(> h2:text-is('{heading}'))")
    return panel.first.inner_text() if panel.count() else ""


def _field(page: Any, term: str) -> str:
    """The value of a profile's definition-list entry, or "" when the page has none."""
    value = page.locator(f"dt:text-is('{term}') + dd")
    return value.first.inner_text() if value.count() else ""


def _host_path_workload(findings: list[dict[str, Any]], cluster: str) -> dict[str, Any]:
    return next(
        f["Resource"]["KubernetesDetails"]["KubernetesWorkloadDetails"]
        for f in findings
        if _cluster(f) == cluster
        and any("HostPath" in volume for volume in
                (f["Resource"]["KubernetesDetails"].get("KubernetesWorkloadDetails") or {}).get("Volumes") or [])
    )


def test_both_clusters_were_detected_as_scan_detects_them(served_findings, stolen, tmp_path):
    """The webhook's batches of 400 find what ``kubeguard scan`` finds in each cluster's whole log."""
    stolen_log = tmp_path / "prod-euw1.jsonl"
    stolen_log.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in stolen.events))
    for cluster, log in ((LAB_CLUSTER, LAB_LOG), (STOLEN_CLUSTER, stolen_log)):
        scanned = run_scan([str(log)], Settings(), pipeline_options={}).findings
        served = sorted(f["Type"] for f in served_findings if _cluster(f) == cluster)
        assert served == sorted(f["type"] for f in scanned), cluster
    assert any(f["Type"] == SECRETS_ACCESSED and _user(f) == stolen.username for f in served_findings)
    assert any("Anonymous" in f["Type"] for f in served_findings if _cluster(f) == LAB_CLUSTER)


def test_every_deep_link_shows_what_an_investigator_needs(two_clusters, served_findings, stolen, page):
    visit = Visit(page, two_clusters.url)
    types = sorted({f["Type"] for f in served_findings})

    summary = visit.open("/console/")  # its default scope must reach both clusters' findings, months apart
    visit.expect("/console/", summary, *types)
    visit.expect("/console/", _section(page, "Findings by cluster"), LAB_CLUSTER, STOLEN_CLUSTER)
    visit.expect_drawing("/console/")

    listing = visit.open("/console/findings")
    visit.expect("/console/findings", listing, *types)

    for finding in served_findings:
        path = f"/console/findings/{finding['Id']}"
        text = visit.open(path, settle=False)
        visit.expect(path, text, finding["Type"], _user(finding), _cluster(finding))
        namespace = _namespace(finding)
        if namespace:
            visit.expect(path, text, namespace)
        visit.expect_drawing(path)

    subject = f"/console/entities/subject/{quote(stolen.username)}"
    text = visit.open(subject, settle=False)
    visit.expect(subject, text, *stolen.usual_ips[:1], stolen.new_ip, stolen.new_agent, "secrets", SECRETS_ACCESSED)
    # The hosting provider behind the new address, when the installed IP database knows it.
    owner = remote_ip_details(stolen.new_ip)["organization"]["asnOrg"].replace("UNKNOWN", "")
    if owner:
        visit.expect(subject, _section(page, "Newly observed in the scope time"), owner)
    visit.expect_drawing(subject)

    ip = f"/console/entities/ip/{stolen.new_ip}"
    visit.expect(ip, visit.open(ip, settle=False), stolen.username)
    visit.expect(ip, _section(page, "Clusters"), STOLEN_CLUSTER)
    if owner:
        visit.expect(ip, _field(page, "Autonomous system"), owner)
    visit.expect_drawing(ip)
    usual_ip = f"/console/entities/ip/{stolen.usual_ips[0]}"
    visit.expect(usual_ip, visit.open(usual_ip, settle=False), stolen.username)
    visit.expect_drawing(usual_ip)

    for cluster in (LAB_CLUSTER, STOLEN_CLUSTER):
        workload = _host_path_workload(served_findings, cluster)
        host_path = next(v["HostPath"]["Path"] for v in workload["Volumes"] if "HostPath" in v)
        mounted = [f["Type"] for f in served_findings
                   if (f["Resource"]["KubernetesDetails"].get("KubernetesWorkloadDetails") or {}).get("Name")
                   == workload["Name"] and _cluster(f) == cluster]
        # The finding names the workload as GuardDuty does (namespace/name): a Pod in the lab, a DaemonSet
        # in prod-euw1, whose link leads to the DaemonSet's profile; then one of the DaemonSet's own pods.
        pods = [f"/console/entities/pod/{workload['Namespace']}/{workload['Name']}"]
        if cluster == STOLEN_CLUSTER:
            pods.append(f"/console/entities/pod/{_created_pod(stolen.events, workload['Name'])}")
        for pod in pods:
            visit.expect(pod, visit.open(pod, settle=False), *mounted)
            visit.expect(pod, _field(page, "Host paths"), host_path)
            visit.expect_drawing(pod)
        image = f"/console/entities/image/{workload['Containers'][0]['Image']}"
        visit.expect(image, visit.open(image, settle=False), workload["Namespace"])
        visit.expect_drawing(image)

    for cluster in (LAB_CLUSTER, STOLEN_CLUSTER):
        path = f"/console/entities/cluster/{cluster}"
        visit.expect(path, visit.open(path, settle=False), "Overall Kubernetes API activity")
        visit.expect_drawing(path)
    visit.expect(f"/console/entities/cluster/{STOLEN_CLUSTER}", page.inner_text("main"), stolen.username)

    assert not visit.gaps, "\n".join(visit.gaps)


def test_archive_on_a_finding_page_archives_it(two_clusters, served_findings, stolen, page):
    finding = next(f for f in served_findings if f["Type"] == SECRETS_ACCESSED and _user(f) == stolen.username)
    visit = Visit(page, two_clusters.url)
    visit.open(f"/console/findings/{finding['Id']}")
    page.get_by_role("button", name="Archive").click()
    page.wait_for_selector("button:text-is('Unarchive')")
    gd = guardduty_client(two_clusters.url)
    detector = gd.list_detectors()["DetectorIds"][0]
    stored = gd.get_findings(DetectorId=detector, FindingIds=[finding["Id"]])["Findings"][0]
    assert stored["Service"]["Archived"] is True
    assert visit.watch.take() == []
