"""Optional dependencies missing: the error names the extra to install, on the API and on the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kubeguard.extras import MissingExtra, require
from kubeguard.store.database import open_engine


@pytest.mark.parametrize(("module", "extra"), [("psycopg", "postgres"), ("boto3", "aws"), ("nats", "nats")])
def test_a_missing_optional_module_names_its_extra(monkeypatch, module, extra):
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingExtra, match=rf"pip install 'kubeguard\[{extra}\]'"):
        require(module)


def test_postgres_url_without_psycopg(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtra, match="postgres"):
        open_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_the_command_line_says_which_extra_in_one_line(tmp_path):
    code = (
        "import sys; sys.modules['boto3'] = None; from kubeguard.cli import app; "
        "app(['findings', 'list', '--url', 'http://127.0.0.1:1'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "kubeguard findings list: error: AWS support is not installed (module 'boto3'); "
        "install it with: pip install 'kubeguard[aws]'"
    ]
