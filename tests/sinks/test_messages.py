"""Message builders in process: templates, escaping, and the framing RFC 5424 asks for."""

from __future__ import annotations

import re

from kubeguard.config import Settings
from kubeguard.findings.sample import sample_finding
from kubeguard.sinks.delivery import Item, Renderer
from kubeguard.sinks.pagerduty import pagerduty_event
from kubeguard.sinks.slack import slack_message
from kubeguard.sinks.syslog import FACILITIES, syslog_message

FINDING = sample_finding("Execution:Kubernetes/ExecInKubeSystemPod", Settings(account_id="111122223333"))
LINK = "https://kg.example/console/findings/" + FINDING["id"]
TEMPLATE = "${severity_label} ${type} on ${cluster} by ${principal}: ${link} ${unknown}"


def test_a_template_writes_the_human_facing_line():
    item = Item(FINDING, LINK)
    renderer = Renderer("guardduty", TEMPLATE)
    user = FINDING["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"]
    cluster = FINDING["resource"]["eksClusterDetails"]["name"]
    expected = f"Medium Execution:Kubernetes/ExecInKubeSystemPod on {cluster} by {user}: {LINK} ${{unknown}}"
    assert renderer.message(item) == expected
    assert pagerduty_event(item, "key", renderer)["payload"]["summary"] == expected
    assert slack_message(item, renderer)["text"] == expected.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_slack_text_is_escaped_for_mrkdwn():
    hostile = {**FINDING, "title": "a <!channel> & <http://evil|click>"}
    heading = slack_message(Item(hostile, ""), Renderer("text"))["attachments"][0]["blocks"][0]["text"]["text"]
    assert "<!channel>" not in heading and "&lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in heading


RFC5424 = re.compile(
    r'^<(?P<pri>\d{1,3})>1 (?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<host>[!-~]{1,255}) '
    r'(?P<app>[!-~]{1,48}) (?P<pid>\d+) (?P<msgid>[!-~]{1,32}) (?P<sd>\[.*?[^\\]\]) (?P<msg>.*)$'
)


def test_syslog_messages_follow_rfc5424_and_escape_structured_data():
    hostile = {**FINDING, "type": 'Odd"Type]\\x', "service": {**FINDING["service"], "archived": True}}
    raw = syslog_message(Item(hostile, LINK), Renderer("text"), facility=FACILITIES["authpriv"],
                         app_name="kube guard", hostname="host one")
    parsed = RFC5424.match(raw.decode())
    assert parsed, raw
    assert int(parsed["pri"]) == 10 * 8 + 4  # authpriv, warning for a Medium finding
    assert (parsed["host"], parsed["app"], parsed["msgid"]) == ("hostone", "kubeguard", "ARCHIVED")
    assert 'type="Odd\\"Type\\]\\\\x"' in parsed["sd"]
    assert parsed["msg"].startswith("[Medium 5] ")
