"""CredentialAccess:Kubernetes/ConfigMapWithPrivateCredentials."""

from __future__ import annotations

import json

import pytest

from detectors.extension_cases import PRIVATE_KEY, configmap
from detectors.scanning import scan, types

FINDING = "CredentialAccess:Kubernetes/ConfigMapWithPrivateCredentials"


@pytest.mark.parametrize("data", [
    {"tls.key": PRIVATE_KEY},
    {"id_ed25519": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----"},
    {"credentials": "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\n"
                    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"},
    {"application.properties": "spring.datasource.url=jdbc:postgresql://db/app\nspring.datasource.password=hunter2\n"},
    {"config.yaml": "database:\n  host: db\n  password: \"s3cr3t!\"\n"},
    {"DB_PASSWORD": "hunter2"},
])
def test_credentials_are_found(data):
    [finding] = scan([configmap(data)])
    assert finding["type"] == FINDING
    assert "hunter2" not in finding["description"] and "s3cr3t" not in finding["description"]


@pytest.mark.parametrize("data", [
    {"application.properties": "spring.datasource.password=${DB_PASSWORD}\n"},
    {"values.yaml": "auth:\n  password: {{ .Values.password }}\n  existingSecret: db\n"},
    {"policy.conf": "password_min_length = 12\npassword_max_age: 90\nuse_password: true\n"},
    {"README": "Set the password in the db-credentials Secret; never here.\n"},
    {"nginx.conf": "server { listen 80; }"},
    {"ca.crt": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"},
    {"DB_PASSWORD": ""},
])
def test_references_placeholders_and_settings_are_not_credentials(data):
    assert types([configmap(data)]) == set()


def test_falco_fixtures(falco_dir):
    sensitive = (falco_dir / "create_configmap_sensitive_values.json").read_text().splitlines()
    [finding] = scan([json.loads(line) for line in sensitive if line.strip()])
    assert finding["type"] == FINDING and finding["service"]["count"] == 6
    clean = json.loads((falco_dir / "create_configmap_no_sensitive_values.json").read_text())
    assert types([clean]) == set()
