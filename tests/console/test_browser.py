"""The console in a real browser (Debian's chromium via Playwright) against a real ``kubeguard serve`` fed
the lab's audit log through the webhook: every deep link opens with no script error and no failed request,
shows the facts an investigator needs, draws its graph, and the actions reach the GuardDuty API."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from api.conftest import guardduty_client

from console.conftest import ACCESS_KEY, PASSWORD, SECRET, PageWatch


def _finding(findings: list[dict[str, Any]], finding_type: str) -> dict[str, Any]:
    return next(f for f in findings if f["type"] == finding_type)


def _workload_finding(findings: list[dict[str, Any]]) -> dict[str, Any]:
    """A finding about a pod that mounts a host path (the lab's sensitive-mount pod)."""
    return next(
        f for f in findings
        if (f["resource"]["kubernetesDetails"].get("kubernetesWorkloadDetails") or {}).get("volumes")
    )


def _until(condition: Any, timeout: float = 10.0) -> None:
    """Poll a condition from Python (the console's CSP forbids evaluating strings in the page)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _open(page: Any, watch: PageWatch, url: str) -> str:
    response = page.goto(url)
    assert response is not None and response.status == 200, f"{url}: HTTP {response and response.status}"
    page.wait_for_load_state("networkidle")
    assert watch.take() == [], url
    return page.inner_text("main")


def test_every_deep_link_opens_clean_and_shows_the_facts(open_server, page, lab_findings):
    watch = PageWatch(page)
    base = open_server.url

    summary = _open(page, watch, f"{base}/console/")
    for finding in lab_findings:
        assert finding["type"] in summary
    assert page.locator("svg.chart rect").count() > 0

    listing = _open(page, watch, f"{base}/console/findings")
    for finding in lab_findings:
        assert finding["type"] in listing
    assert f"{len(lab_findings)} findings match" in listing

    for finding in lab_findings:
        text = _open(page, watch, f"{base}/console/findings/{finding['id']}")
        user = finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"]
        action = finding["service"]["action"]["kubernetesApiCallAction"]
        assert finding["type"] in text and user in text
        namespace = action.get("namespace") or finding["resource"]["kubernetesDetails"].get(
            "kubernetesWorkloadDetails", {}
        ).get("namespace")
        if namespace:
            assert namespace in text
        page.wait_for_selector(".graph svg g.node")
        assert page.locator(".graph svg g.node").count() >= 3
        assert watch.take() == []

    mounted = _workload_finding(lab_findings)
    workload = mounted["resource"]["kubernetesDetails"]["kubernetesWorkloadDetails"]
    pod_text = _open(page, watch, f"{base}/console/entities/pod/{workload['namespace']}/{workload['name']}")
    assert workload["volumes"][0]["hostPath"]["path"] in pod_text
    assert mounted["type"] in pod_text
    image = workload["containers"][0]["image"]
    image_text = _open(page, watch, f"{base}/console/entities/image/{image}")
    assert workload["namespace"] in image_text

    anonymous = _finding(lab_findings, "CredentialAccess:Kubernetes/SuccessfulAnonymousAccess")
    address = anonymous["service"]["action"]["kubernetesApiCallAction"]["sourceIPs"][0]
    ip_text = _open(page, watch, f"{base}/console/entities/ip/{address}")
    assert "system:anonymous" in ip_text

    subject_text = _open(page, watch, f"{base}/console/entities/subject/{quote('system:anonymous')}")
    assert "list secrets" in subject_text
    assert anonymous["type"] in subject_text
    assert anonymous["service"]["action"]["kubernetesApiCallAction"]["userAgent"].split()[0] in subject_text
    page.wait_for_selector(".graph svg g.node")
    assert page.locator("svg.chart rect").count() > 0

    cluster = anonymous["resource"]["eksClusterDetails"]["name"]
    cluster_text = _open(page, watch, f"{base}/console/entities/cluster/{cluster}")
    assert "Overall Kubernetes API activity" in cluster_text and "system:anonymous" in cluster_text
    page.wait_for_selector(".graph svg g.node")
    assert watch.take() == []


def test_an_image_reference_with_slashes_opens_its_own_profile(open_server, page):
    watch = PageWatch(page)
    text = _open(page, watch, f"{open_server.url}/console/entities/image/coredns/coredns:1.11.3")
    assert "coredns/coredns:1.11.3" in page.inner_text("h1")
    assert "kube-system" in text


def test_clicking_a_graph_node_expands_it(open_server, page, lab_findings):
    watch = PageWatch(page)
    finding = _finding(lab_findings, "CredentialAccess:Kubernetes/SuccessfulAnonymousAccess")
    _open(page, watch, f"{open_server.url}/console/findings/{finding['id']}")
    page.wait_for_selector(".graph svg g.node")
    assert page.locator(".graph svg line.edge.path").count() >= 2  # finding → subject and → IP highlighted
    before = page.locator(".graph svg g.node").count()
    granter = _finding(lab_findings, "Policy:Kubernetes/AnonymousAccessGranted")
    admin = granter["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"]
    page.locator(f".graph svg g.node[data-id='subject:{admin}']").click()
    _until(lambda: page.locator(".graph svg g.node").count() > before)
    assert watch.take() == []


def test_archive_feedback_and_suppression_reach_the_guardduty_api(open_server, page, lab_findings):
    watch = PageWatch(page)
    gd = guardduty_client(open_server.url)
    detector = gd.list_detectors()["DetectorIds"][0]
    finding = _finding(lab_findings, "Policy:Kubernetes/AnonymousAccessGranted")
    url = f"{open_server.url}/console/findings/{finding['id']}"
    _open(page, watch, url)

    page.get_by_role("button", name="Archive").click()
    page.wait_for_selector("text=Unarchive")
    stored = gd.get_findings(DetectorId=detector, FindingIds=[finding["id"]])["Findings"][0]
    assert stored["Service"]["Archived"] is True
    page.get_by_role("button", name="Unarchive").click()
    page.wait_for_selector("button:text-is('Archive')")
    assert gd.get_findings(DetectorId=detector, FindingIds=[finding["id"]])["Findings"][0]["Service"]["Archived"] is False

    page.get_by_role("button", name="Not useful").click()
    page.wait_for_selector("text=Feedback recorded")
    stored = gd.get_findings(DetectorId=detector, FindingIds=[finding["id"]])["Findings"][0]
    assert stored["Service"]["UserFeedback"] == "NOT_USEFUL"

    page.get_by_role("link", name="Suppress findings like this").click()
    page.wait_for_selector("form.suppress")
    same_type = gd.list_findings(
        DetectorId=detector,
        FindingCriteria={"Criterion": {"type": {"Eq": [finding["type"]]}, "service.archived": {"Eq": ["false"]}}},
    )["FindingIds"]
    for box in page.locator("input[name=field]").all():
        if box.get_attribute("value") != "type":
            box.uncheck()
        else:
            box.check()
    _until(lambda: page.inner_text("#preview-count") == str(len(same_type)))
    page.fill("input[name=name]", "console-suppression-test")
    page.get_by_role("button", name="Save suppression rule").click()
    page.wait_for_selector("text=Suppression rule saved")
    rules = gd.list_filters(DetectorId=detector)["FilterNames"]
    assert "console-suppression-test" in rules
    saved = gd.get_filter(DetectorId=detector, FilterName="console-suppression-test")
    assert saved["Action"] == "ARCHIVE"
    assert saved["FindingCriteria"]["Criterion"] == {"type": {"Eq": [finding["type"]]}}
    assert watch.take() == []


def test_a_form_without_the_session_token_is_refused(open_server, page, lab_findings):
    finding = lab_findings[0]
    page.goto(f"{open_server.url}/console/findings/{finding['id']}")
    forged = page.request.post(f"{open_server.url}/console/findings/{finding['id']}/archive", form={"csrf": "forged"})
    assert forged.status == 403
    other_site = page.request.post(
        f"{open_server.url}/console/findings/{finding['id']}/archive",
        form={"csrf": page.locator("input[name=csrf]").first.get_attribute("value")},
        headers={"Origin": "https://attacker.example"},
    )
    assert other_site.status == 403
    gd = guardduty_client(open_server.url)
    detector = gd.list_detectors()["DetectorIds"][0]
    assert gd.get_findings(DetectorId=detector, FindingIds=[finding["id"]])["Findings"][0]["Service"]["Archived"] is False


def test_sign_in_with_an_access_key_or_the_console_password(locked_server, chromium, lab_findings):
    context = chromium.new_context()
    page = context.new_page()
    watch = PageWatch(page)
    base = locked_server.url
    assert page.request.get(f"{base}/api/summary").status == 403  # neither a session nor a signature
    page.goto(f"{base}/console/findings/{lab_findings[0]['id']}")
    assert "/console/login" in page.url
    page.fill("input[name=access_key]", ACCESS_KEY)
    page.fill("input[name=secret]", "wrong")
    page.get_by_role("button", name="Sign in").click()
    assert "not valid" in page.inner_text("main")
    watch.take()  # the refused sign-in is a 401, as it should be
    page.fill("input[name=access_key]", ACCESS_KEY)
    page.fill("input[name=secret]", SECRET)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/console/findings/{lab_findings[0]['id']}")
    assert lab_findings[0]["type"] in page.inner_text("main")
    page.wait_for_selector(".graph svg g.node")
    assert SECRET not in page.content()
    cookie = next(c for c in context.cookies() if c["name"] == "kg_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["secure"]
    assert page.request.get(f"{base}/api/summary").status == 200
    assert watch.take() == []
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/login")
    assert page.request.get(f"{base}/api/summary").status == 403
    context.close()

    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"{base}/console/")
    page.fill("input[name=secret]", PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/console/")
    assert "Summary" in page.inner_text("h1")
    assert PASSWORD not in page.content()
    context.close()
