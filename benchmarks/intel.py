"""Threat-list load time and lookup throughput at GuardDuty's 250,000-entry limit, against a naive baseline.

Run: .venv/bin/python benchmarks/intel.py [--entries N] [--lookups N] [--baseline-lookups N]

Builds a TXT list of mixed IPv4/IPv6 addresses and CIDRs, times parse + build, then times IPSet.contains
and IntelIndex.match over random addresses (a share of them hits). The baseline is a linear scan over
ipaddress.ip_network objects, the obvious first implementation, timed on fewer lookups; the printed speedup
is lookups/s over lookups/s measured in this same run.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import time

from kubeguard.intel.formats import parse_list
from kubeguard.intel.index import IntelIndex, ThreatList


def build_list(entries: int, rng: random.Random) -> list[str]:
    lines = []
    for _ in range(entries):
        roll = rng.random()
        if roll < 0.55:
            lines.append(str(ipaddress.IPv4Address(rng.getrandbits(32))))
        elif roll < 0.80:
            prefix = rng.randint(16, 30)
            lines.append(str(ipaddress.ip_network((rng.getrandbits(32), prefix), strict=False)))
        elif roll < 0.92:
            lines.append(str(ipaddress.IPv6Address(rng.getrandbits(128))))
        else:
            prefix = rng.randint(32, 64)
            lines.append(str(ipaddress.ip_network((rng.getrandbits(128), prefix), strict=False)))
    return lines


def probes(lines: list[str], count: int, rng: random.Random) -> list[str]:
    """A quarter of probes are list members (hits), the rest random addresses of both families."""
    members = [line.partition("/")[0] for line in lines[: count // 4 or 1]]
    out = list(members)
    while len(out) < count:
        if rng.random() < 0.8:
            out.append(str(ipaddress.IPv4Address(rng.getrandbits(32))))
        else:
            out.append(str(ipaddress.IPv6Address(rng.getrandbits(128))))
    rng.shuffle(out)
    return out[:count]


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds else float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=250_000)
    parser.add_argument("--lookups", type=int, default=1_000_000)
    parser.add_argument("--baseline-lookups", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(20240501)

    lines = build_list(args.entries, rng)
    data = ("\n".join(lines) + "\n").encode()
    print(f"list: {args.entries:,} entries, {len(data) / 1e6:.1f} MB TXT")

    start = time.perf_counter()
    parsed = parse_list(data, "TXT", source="bench")
    load_seconds = time.perf_counter() - start
    ipset = parsed.ipset
    print(f"load (parse + build): {load_seconds:.2f} s, {ipset.interval_count:,} merged intervals, "
          f"{parsed.problem_count} problems")

    sample = probes(lines, args.lookups, rng)
    start = time.perf_counter()
    hits = sum(1 for ip in sample if ipset.contains(ip))
    seconds = time.perf_counter() - start
    fast = rate(len(sample), seconds)
    print(f"IPSet.contains: {len(sample):,} lookups in {seconds:.2f} s = {fast:,.0f} lookups/s ({hits:,} hits)")

    index = IntelIndex(
        [
            ThreatList("custom", "custom", ipset),
            ThreatList("feed-a", "malicious", ipset),
            ThreatList("tor", "tor", parse_list(b"\n".join(x.encode() for x in lines[:2000]), "TXT").ipset),
        ],
        [ThreatList("trusted", "trusted", parse_list(b"10.0.0.0/8\n", "TXT").ipset)],
    )
    subset = sample[:200_000]
    start = time.perf_counter()
    for ip in subset:
        if not index.is_trusted(ip):
            index.match(ip)
    seconds = time.perf_counter() - start
    print(f"IntelIndex is_trusted+match over 3 lists: {rate(len(subset), seconds):,.0f} lookups/s")

    networks = [ipaddress.ip_network(line, strict=False) for line in lines]
    baseline_sample = sample[: args.baseline_lookups]
    start = time.perf_counter()
    baseline_hits = 0
    for ip in baseline_sample:
        address = ipaddress.ip_address(ip)
        baseline_hits += any(address in network for network in networks)
    seconds = time.perf_counter() - start
    slow = rate(len(baseline_sample), seconds)
    agree = baseline_hits == sum(1 for ip in baseline_sample if ipset.contains(ip))
    print(f"baseline linear scan over ip_network: {len(baseline_sample):,} lookups in {seconds:.2f} s = "
          f"{slow:,.1f} lookups/s (results agree: {agree})")
    print(f"speedup: {fast / slow:,.0f}x")


if __name__ == "__main__":
    main()
