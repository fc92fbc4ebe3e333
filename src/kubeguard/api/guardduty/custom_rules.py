"""GuardDuty's Custom Detection Rules API over kubeguard's built-in and Sigma rules (reference §7).

ListCustomDetectionRules and GetCustomDetectionRule describe the rules the service evaluates;
Create/Get/List/Update/DeleteCustomDetectionRuleAssociation set a rule's mode, ``LIVE`` (findings are
raised) or ``DRY_RUN`` (matches are only counted), so a team can trial a rule before it pages anyone.
Associations are kept in the store and re-applied at start. Association responses carry an extra
member, ``matchCount`` (``live`` and ``dryRun`` matches since the service started), which SDKs that
follow the model ignore; kubeguard's own clients read it.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request

from kubeguard.api.auth import context
from kubeguard.api.errors import BadRequest, Conflict, ResourceNotFound
from kubeguard.api.guardduty.common import seconds
from kubeguard.api.pagination import page
from kubeguard.api.params import Params, json_body, query_max_results
from kubeguard.detectors.rules.catalog import RuleCatalog, RuleEntry
from kubeguard.detectors.rules.detector import MODES
from kubeguard.store import rule_associations
from kubeguard.store.rule_associations import AssociationRecord

router = APIRouter()

FILTER_NAMES = ("name", "description", "dataSource", "severity", "tactic", "technique", "service")
CONDITIONS = ("EQUALS", "CONTAINS")
FILTER_VALUE = re.compile(r"[a-zA-Z0-9 _.\-:/]+")
RULE_ID = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


def _catalog(request: Request) -> RuleCatalog:
    catalog = getattr(context(request), "rules", None)
    if catalog is None:
        raise BadRequest("this service evaluates no rules")
    return catalog


def _arn(request: Request, suffix: str) -> str:
    settings = context(request).settings
    return f"arn:{settings.partition}:guardduty:{settings.region}:{settings.account_id}:{suffix}"


def _rule(request: Request, rule_id: str) -> RuleEntry:
    if not RULE_ID.fullmatch(rule_id) or len(rule_id) > 100:
        raise BadRequest("ruleId must match [a-z0-9]+(-[a-z0-9]+)* and be at most 100 characters")
    entry = _catalog(request).get(rule_id)
    if entry is None:
        raise ResourceNotFound(f"no custom detection rule {rule_id}")
    return entry


def _filters(params: Params) -> list[tuple[str, list[str], str]]:
    raw = params.data.get("filters") or []
    if not isinstance(raw, list) or len(raw) > 100:
        raise BadRequest("filters must be a list of at most 100 filters")
    parsed = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadRequest("each filter must be an object")
        one = Params(item)
        name = one.choice("name", FILTER_NAMES)
        if name is None:
            raise BadRequest("filter name is required")
        values = one.strings("values", required=True)
        if not values or not all(FILTER_VALUE.fullmatch(v) and len(v) <= 255 for v in values):
            raise BadRequest("filter values must be 1-50 strings of letters, digits, space and _ . - : /")
        parsed.append((name, values, one.choice("condition", CONDITIONS, default="EQUALS") or "EQUALS"))
    return parsed


def _passes(entry: RuleEntry, filters: list[tuple[str, list[str], str]]) -> bool:
    for name, values, condition in filters:
        actual = entry.field(name)
        if condition == "EQUALS":
            if actual not in values:
                return False
        elif not any(v.lower() in actual.lower() for v in values):
            return False
    return True


@router.post("/custom-detection-rule/rule")
async def list_rules(request: Request) -> dict[str, Any]:
    params = await json_body(request)
    limit = params.integer("maxResults", low=1, high=100, default=50) or 50
    token = params.string("nextToken")
    filters = _filters(params)
    catalog = _catalog(request)
    entries = [e for e in catalog.entries.values() if _passes(e, filters)]
    chunk, next_token = page(entries, token, limit, {"filters": filters})
    body: dict[str, Any] = {
        "rules": [e.summary(_arn(request, f"custom-detection-rule/{e.rule_id}")) for e in chunk]
    }
    if next_token:
        body["nextToken"] = next_token
    return body


@router.get("/custom-detection-rule/rule/{rule_id}")
async def get_rule(request: Request, rule_id: str) -> dict[str, Any]:
    entry = _rule(request, rule_id)
    return {"rule": entry.detail(_arn(request, f"custom-detection-rule/{entry.rule_id}"))}


def _association(request: Request, record: AssociationRecord, *, detail: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "associationId": record.id,
        "arn": _arn(request, f"custom-detection-rule/{record.rule_id}/association/{record.id}"),
        "ruleId": record.rule_id,
        "mode": record.mode,
        "createdAt": seconds(record.created_at_ms),
        "updatedAt": seconds(record.updated_at_ms),
    }
    if detail:
        body["accountId"] = context(request).settings.account_id
    body["matchCount"] = _catalog(request).match_counts(record.rule_id)
    return body


@router.post("/custom-detection-rule/association")
async def create_association(request: Request) -> dict[str, Any]:
    params = await json_body(request)
    rule_id = params.string("ruleId", required=True, max_length=100) or ""
    mode = params.choice("mode", MODES)
    if mode is None:
        raise BadRequest("mode is required")
    client_token = params.string("clientToken", max_length=64)
    tags = params.tags()
    entry = _rule(request, rule_id)
    catalog = _catalog(request)
    with context(request).engine.begin() as conn:
        existing = rule_associations.for_rule(conn, entry.rule_id)
        if existing is not None:
            if client_token and existing.client_token == client_token and existing.mode == mode:
                return {"ruleAssociation": _association(request, existing, detail=True)}  # idempotent retry
            raise Conflict(f"rule {entry.rule_id} already has association {existing.id}")
        association_id = rule_associations.create(conn, entry.rule_id, mode, tags, client_token)
        record = rule_associations.get(conn, association_id)
    catalog.set_mode(entry.rule_id, mode)
    assert record is not None
    return {"ruleAssociation": _association(request, record, detail=True)}


def _owned(request: Request, rule_id: str, association_id: str) -> AssociationRecord:
    _rule(request, rule_id)
    with context(request).engine.begin() as conn:
        record = rule_associations.get(conn, association_id)
    if record is None or record.rule_id != rule_id:
        raise ResourceNotFound(f"no association {association_id} for rule {rule_id}")
    return record


@router.get("/custom-detection-rule/association")
async def list_associations(request: Request) -> dict[str, Any]:
    limit = query_max_results(request, high=100, default=50)
    rule_id = request.query_params.get("ruleId")
    mode = request.query_params.get("mode")
    if mode is not None and mode not in MODES:
        raise BadRequest("mode must be LIVE or DRY_RUN")
    with context(request).engine.begin() as conn:
        records = rule_associations.list_all(conn)
    records = [r for r in records if (rule_id is None or r.rule_id == rule_id) and (mode is None or r.mode == mode)]
    chunk, next_token = page(records, request.query_params.get("nextToken"), limit, [rule_id, mode])
    body: dict[str, Any] = {"ruleAssociations": [_association(request, r, detail=False) for r in chunk]}
    if next_token:
        body["nextToken"] = next_token
    return body


@router.get("/custom-detection-rule/rule/{rule_id}/association/{association_id}")
async def get_association(request: Request, rule_id: str, association_id: str) -> dict[str, Any]:
    record = _owned(request, rule_id, association_id)
    body: dict[str, Any] = {"ruleAssociation": _association(request, record, detail=True)}
    if record.tags:
        body["tags"] = record.tags
    return body


@router.put("/custom-detection-rule/rule/{rule_id}/association/{association_id}")
async def update_association(request: Request, rule_id: str, association_id: str) -> dict[str, Any]:
    params = await json_body(request)
    mode = params.choice("mode", MODES)
    if mode is None:
        raise BadRequest("mode is required")
    record = _owned(request, rule_id, association_id)
    with context(request).engine.begin() as conn:
        rule_associations.set_mode(conn, record.id, mode)
    _catalog(request).set_mode(rule_id, mode)
    return {}


@router.delete("/custom-detection-rule/rule/{rule_id}/association/{association_id}")
async def delete_association(request: Request, rule_id: str, association_id: str) -> dict[str, Any]:
    record = _owned(request, rule_id, association_id)
    with context(request).engine.begin() as conn:
        rule_associations.remove(conn, record.id)
    _catalog(request).set_mode(rule_id, None)
    return {}


def restore_modes(catalog: RuleCatalog, records: list[AssociationRecord]) -> list[str]:
    """Re-apply stored associations at start; returns the rule ids no longer loaded (left as they are)."""
    missing = []
    for record in records:
        if catalog.get(record.rule_id) is None:
            missing.append(record.rule_id)
        else:
            catalog.set_mode(record.rule_id, record.mode)
    return missing
