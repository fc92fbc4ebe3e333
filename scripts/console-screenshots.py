"""Take the README's console screenshots: summary, a finding and a subject profile, from the lab log.

Starts ``kubeguard serve`` on a scratch store, posts ``examples/lab-audit.jsonl.gz`` to its webhook and
photographs the pages with Debian's chromium through Playwright (``pip install -e '.[test]'``).

    .venv/bin/python scripts/console-screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import gzip
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
LAB_LOG = ROOT / "examples" / "lab-audit.jsonl.gz"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "kubeguard.serve", "--port", str(port), "--db", str(workdir / "kg.db")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("kubeguard serve did not start")


def feed(url: str) -> None:
    lines = gzip.decompress(LAB_LOG.read_bytes()).splitlines()
    for start_line in range(0, len(lines), 200):
        items = [orjson.loads(line) for line in lines[start_line : start_line + 200]]
        httpx.post(f"{url}/k8s-audit", json={"kind": "EventList", "items": items}, timeout=30).raise_for_status()
    while "kubeguard_spool_pending_events 0.0" not in httpx.get(f"{url}/metrics", timeout=10).text:
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        process, url = start(Path(scratch))
        try:
            feed(url)
            findings = httpx.get(f"{url}/api/findings", timeout=10).json()["findings"]
            finding = next(f for f in findings if f["type"] == "CredentialAccess:Kubernetes/SuccessfulAnonymousAccess")
            subject = finding["resource"]["kubernetesDetails"]["kubernetesUserDetails"]["username"]
            pages = {  # name: (path, height of the window)
                "console-summary.png": ("/console/", 1100),
                "console-finding.png": (f"/console/findings/{finding['id']}", 1750),
                "console-subject.png": (f"/console/entities/subject/{quote(subject, safe='')}", 1300),
            }
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium)
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                for name, (path, height) in pages.items():
                    page.set_viewport_size({"width": 1440, "height": height})
                    page.goto(url + path)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(args.out / name), full_page=False)
                    print(f"wrote {args.out / name}")
                browser.close()
        finally:
            process.terminate()
            process.wait(10)


if __name__ == "__main__":
    main()
