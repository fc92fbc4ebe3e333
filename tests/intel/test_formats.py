"""List formats: GuardDuty's six (reference §3.4) and Tor's two, including hostile and malformed input."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubeguard.intel.formats import FORMATS, MAX_PROBLEMS, ListError, detect_format, parse_list

STIX_HEAD = b"""<?xml version="1.0" encoding="UTF-8"?>
<stix:STIX_Package xmlns:stix="http://stix.mitre.org/stix-1" xmlns:cybox="http://cybox.mitre.org/cybox-2"
  xmlns:AddressObject="http://cybox.mitre.org/objects#AddressObject-2"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" version="1.2">
 <stix:Observables cybox_major_version="2" cybox_minor_version="1">
"""
STIX_TAIL = b" </stix:Observables>\n</stix:STIX_Package>\n"


def stix_observable(value: str, *, condition: str = "Equals", category: str = "ipv4-addr") -> bytes:
    return f"""  <cybox:Observable id="example:Observable-1">
   <cybox:Object>
    <cybox:Properties xsi:type="AddressObject:AddressObjectType" category="{category}">
     <AddressObject:Address_Value condition="{condition}">{value}</AddressObject:Address_Value>
    </cybox:Properties>
   </cybox:Object>
  </cybox:Observable>
""".encode()


def stix(*observables: bytes) -> bytes:
    return STIX_HEAD + b"".join(observables) + STIX_TAIL


# --- GuardDuty's documented samples, one per format -------------------------------------------------------


def test_txt_ips_cidrs_comments_and_a_bad_line():
    data = b"# FireHOL style comment\n192.0.2.0/24\n198.51.100.1\n\n203.0.113.0/24 ; SBL123 (Spamhaus)\nnot-an-ip\n"
    result = parse_list(data, "TXT")
    assert result.ipset.contains("192.0.2.200")
    assert result.ipset.contains("198.51.100.1")
    assert result.ipset.contains("203.0.113.7")
    assert len(result.ipset) == 3
    assert [(p.line, p.text) for p in result.problems] == [(6, "not-an-ip")]
    assert "not an IP address" in result.problems[0].reason


def test_txt_ipv6_and_ranges():
    result = parse_list(b"2001:db8::/48\n2001:db8:1::5\n192.0.2.10 - 192.0.2.12\n", "TXT")
    assert result.ipset.contains("2001:db8:0:ffff::1")
    assert result.ipset.contains("2001:db8:1::5")
    assert result.ipset.contains("192.0.2.11") and not result.ipset.contains("192.0.2.13")
    assert result.problems == []


def test_stix_single_value_cidr_and_inclusive_between_range():
    data = stix(
        stix_observable("198.51.100.1"),
        stix_observable("192.0.2.0/24"),
        stix_observable("203.0.113.10##comma##203.0.113.20", condition="InclusiveBetween"),
        stix_observable("2001:db8::1", category="ipv6-addr"),
    )
    result = parse_list(data, "STIX")
    assert result.ipset.contains("198.51.100.1")
    assert result.ipset.contains("192.0.2.99")
    assert result.ipset.contains("203.0.113.15")
    assert not result.ipset.contains("203.0.113.21")
    assert result.ipset.contains("2001:db8::1")
    assert result.problems == []


def test_stix_bad_values_are_reported_with_their_line():
    data = stix(
        stix_observable("198.51.100.1"),
        stix_observable("203.0.113.10##comma##", condition="InclusiveBetween"),
        stix_observable("10.0.0.300"),
        stix_observable("someone@example.com", category="e-mail"),
    )
    result = parse_list(data, "STIX")
    assert len(result.ipset) == 1
    reasons = [problem.reason for problem in result.problems]
    assert len(reasons) == 2
    assert any("first##comma##last" in reason for reason in reasons)
    assert any("not an IP address" in reason for reason in reasons)
    assert all(problem.line > 5 for problem in result.problems)
    assert result.ignored == 1  # the e-mail address object


def test_stix_comma_list_with_equals_gives_several_entries():
    result = parse_list(stix(stix_observable("192.0.2.1##comma##192.0.2.3")), "STIX")
    assert result.ipset.contains("192.0.2.1") and result.ipset.contains("192.0.2.3")
    assert not result.ipset.contains("192.0.2.2")


def test_otx_csv():
    data = (
        b"Indicator type, Indicator, Description\n"
        b"CIDR, 192.0.2.0/24, example\n"
        b"IPv4, 198.51.100.1, example\n"
        b"IPv6, 2001:db8::7, example\n"
        b"domain, evil.example, example\n"
        b"IPv4, 198.51.100.300, typo\n"
    )
    result = parse_list(data, "OTX_CSV")
    assert result.ipset.contains("192.0.2.5")
    assert result.ipset.contains("198.51.100.1")
    assert result.ipset.contains("2001:db8::7")
    assert result.ignored == 1
    assert [(p.line, p.text) for p in result.problems] == [(6, "198.51.100.300")]


def test_fire_eye_takes_ip_source_ip_and_cidr_columns():
    header = (
        b"reportId,title,threatScape,audience,intelligenceType,publishDate,reportLink,webLink,emailIdentifier,"
        b"senderAddress,senderName,sourceDomain,sourceIp,subject,recipient,language,fileName,fileSize,fuzzyHash,"
        b"fileIdentifier,md5,sha1,sha256,description,fileType,packer,userAgent,registry,fileCompilationDateTime,"
        b"filePath,asn,cidr,domain,domainTimeOfLookup,ip,port,protocol,hostname,networkType,url,malwareFamily,"
        b"malwareFamilyId,actor,actorId,observationTime\n"
    )
    columns = header.decode().strip().split(",")

    def row(**values: str) -> bytes:
        return (",".join(values.get(name, "") for name in columns) + "\n").encode()

    data = header
    data += row(reportId="1", title='"Botnet, C2"', sourceIp="198.51.100.1")
    data += row(reportId="2", cidr="192.0.2.0/24", ip="203.0.113.5")
    data += row(reportId="3", domain="evil.example")
    result = parse_list(data, "FIRE_EYE")
    for ip in ("198.51.100.1", "192.0.2.77", "203.0.113.5"):
        assert result.ipset.contains(ip), ip
    assert len(result.ipset) == 3
    assert result.ignored == 1
    assert result.problems == []


def test_fire_eye_without_ip_columns_is_refused():
    with pytest.raises(ListError, match="ip, sourceIp or cidr"):
        parse_list(b"reportId,title\n1,x\n", "FIRE_EYE")


def test_proof_point():
    data = (
        b"ip, category, score, first_seen, last_seen, ports (|)\n"
        b"198.51.100.1, 1, 100, 2000-01-01, 2000-01-01, 80\n"
        b"198.51.100.2, 3, 90, 2000-01-01, 2000-01-01, 80|443\n"
        b"garbage, 1, 1, x, x, 1\n"
    )
    result = parse_list(data, "PROOF_POINT")
    assert result.ipset.contains("198.51.100.1") and result.ipset.contains("198.51.100.2")
    assert [(p.line, p.text) for p in result.problems] == [(4, "garbage")]


def test_alien_vault():
    data = b"198.51.100.1#4#2#Malicious Host#US##0.0,0.0#3\n#4#2#Scanning Host#US##0.0,0.0#3\n"
    result = parse_list(data, "ALIEN_VAULT")
    assert result.ipset.contains("198.51.100.1")
    assert len(result.ipset) == 1
    assert [(p.line, p.reason) for p in result.problems] == [(2, "empty ip field")]


# --- Tor ---------------------------------------------------------------------------------------------------


def test_tor_bulk_exit_list():
    result = parse_list(b"185.220.101.1\n185.220.101.2\n2a0b:f4c2::1\n", "TOR_BULK")
    assert result.ipset.contains("185.220.101.2")
    assert result.ipset.contains("2a0b:f4c2::1")
    assert not result.ipset.contains("185.220.101.3")


def test_tor_exit_addresses():
    data = (
        b"ExitNode 0011BD2485AD45D984EC4159C88FC066E5E3300E\n"
        b"Published 2024-05-01 10:00:00\n"
        b"LastStatus 2024-05-01 11:00:00\n"
        b"ExitAddress 185.220.101.7 2024-05-01 11:03:00\n"
        b"ExitAddress 185.220.101.8 2024-05-01 11:03:00\n"
        b"Garbage line\n"
    )
    result = parse_list(data, "TOR_EXIT_ADDRESSES")
    assert result.ipset.contains("185.220.101.7") and result.ipset.contains("185.220.101.8")
    assert len(result.ipset) == 2
    assert [(p.line, p.reason) for p in result.problems] == [(6, "not an exit-addresses line")]


# --- detection of the format -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b"192.0.2.1\n", "", "TXT"),
        (b"# comment\n192.0.2.0/24 ; SBL1\n", "", "TXT"),
        (STIX_HEAD + STIX_TAIL, "", "STIX"),
        (b"Indicator type, Indicator, Description\n", "", "OTX_CSV"),
        (b"reportId,title,sourceIp,cidr,ip\n", "", "FIRE_EYE"),
        (b"ip, category, score, first_seen, last_seen, ports (|)\n", "", "PROOF_POINT"),
        (b"198.51.100.1, 1, 100, 2000-01-01, 2000-01-01, 80\n", "", "PROOF_POINT"),
        (b"198.51.100.1#4#2#Malicious Host#US##0.0,0.0#3\n", "", "ALIEN_VAULT"),
        (b"ExitNode ABC\nExitAddress 192.0.2.1 2024-01-01 00:00:00\n", "", "TOR_EXIT_ADDRESSES"),
        (b"", "exit-addresses", "TOR_EXIT_ADDRESSES"),
    ],
)
def test_detect_format(data, name, expected):
    assert detect_format(data, name) == expected


def test_unknown_format_is_refused():
    with pytest.raises(ListError, match="unknown list format"):
        parse_list(b"192.0.2.1\n", "CSV")


# --- hostile input -----------------------------------------------------------------------------------------


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<stix:STIX_Package xmlns:stix="http://stix.mitre.org/stix-1">&lol9;</stix:STIX_Package>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<stix:STIX_Package xmlns:stix="http://stix.mitre.org/stix-1">&xxe;</stix:STIX_Package>
"""

DTD_ONLY = b"""<?xml version="1.0"?>
<!DOCTYPE stix:STIX_Package SYSTEM "http://attacker.example/stix.dtd">
<stix:STIX_Package xmlns:stix="http://stix.mitre.org/stix-1"/>
"""


@pytest.mark.parametrize("document", [BILLION_LAUGHS, EXTERNAL_ENTITY, DTD_ONLY], ids=["laughs", "xxe", "dtd"])
def test_hostile_xml_is_refused_not_expanded(document):
    with pytest.raises(ListError, match="hostile XML refused"):
        parse_list(document, "STIX")


def test_broken_xml_is_refused_clearly():
    with pytest.raises(ListError, match="not well-formed XML"):
        parse_list(STIX_HEAD + stix_observable("192.0.2.1")[:-30], "STIX")


def test_huge_line_is_reported_and_skipped_but_the_rest_loads():
    data = b"192.0.2.1\n" + b"9" * 1_000_000 + b"\n198.51.100.1\n"
    result = parse_list(data, "TXT")
    assert result.ipset.contains("192.0.2.1") and result.ipset.contains("198.51.100.1")
    assert len(result.problems) == 1
    assert result.problems[0].line == 2
    assert "1000000 characters" in result.problems[0].reason
    assert len(result.problems[0].text) < 200  # the report keeps a snippet, not the megabyte


def test_huge_line_in_a_csv_format_is_reported():
    data = b"Indicator type, Indicator, Description\nIPv4, 192.0.2.1, x\nIPv4, " + b"1" * 100_000 + b"\n"
    result = parse_list(data, "OTX_CSV")
    assert result.ipset.contains("192.0.2.1")
    assert [problem.line for problem in result.problems] == [3]


def test_binary_junk_is_refused():
    with pytest.raises(ListError, match="binary"):
        parse_list(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 10, "TXT")
    with pytest.raises(ListError, match="binary"):
        parse_list(bytes(range(128, 256)) * 100, "TXT")


def test_oversized_file_is_refused():
    with pytest.raises(ListError, match="over the 100-byte limit"):
        parse_list(b"192.0.2.1\n" * 11, "TXT", max_bytes=100)


def test_problem_list_is_bounded():
    result = parse_list(b"bad\n" * (MAX_PROBLEMS + 500), "TXT")
    assert len(result.problems) == MAX_PROBLEMS
    assert result.problems_dropped == 500
    assert result.problem_count == MAX_PROBLEMS + 500


def test_a_stray_invalid_utf8_byte_is_only_one_bad_entry():
    result = parse_list(b"192.0.2.1\n\xff\xfe192.0.2.2\n198.51.100.1\n", "TXT")
    assert len(result.ipset) == 2
    assert [problem.line for problem in result.problems] == [2]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048), fmt=st.sampled_from(FORMATS))
def test_random_bytes_never_crash_a_parser(data, fmt):
    try:
        result = parse_list(data, fmt)
    except ListError:
        return
    assert result.format == fmt
    assert len(result.problems) <= MAX_PROBLEMS


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=1024), fmt=st.sampled_from(FORMATS))
def test_random_text_never_crashes_a_parser(text, fmt):
    try:
        result = parse_list(text.encode(), fmt)
    except ListError:
        return
    assert len(result.ipset) + result.problem_count + result.ignored <= len(text.encode()) + 1


def test_skipped_entries_are_logged_with_list_name_and_line(caplog):
    with caplog.at_level("WARNING", logger="kubeguard.intel.formats"):
        parse_list(b"192.0.2.1\nnot-an-ip\n", "TXT", source="acme")
    assert "acme:2: skipped 'not-an-ip'" in caplog.text
