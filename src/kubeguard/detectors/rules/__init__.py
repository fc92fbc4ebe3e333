"""The user's own detection rules: Sigma rules for ``product: kubernetes, service: audit``.

``load`` reads and checks rule files with pySigma, ``compile`` turns each condition into one Python
function over the audit event's own field paths (``fields``, ``values``), and ``detector`` runs them in
the pipeline behind a per-rule LIVE / DRY_RUN mode. ``catalog`` describes built-in and user rules alike
for GuardDuty's Custom Detection Rules API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from kubeguard.config import RulesSettings
    from kubeguard.detectors.rules.detector import SigmaRules


class RuleLoadError(ValueError):
    """A rule file that cannot be used; ``str()`` is one line naming the file and the reason.

    Defined here rather than in :mod:`.load` so that catching it (``kubeguard scan``, ``serve``) does not
    import pySigma, pyparsing and PyYAML when no rule is configured.
    """

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{self.path}: {self.reason}")


def user_rule_detectors(settings: RulesSettings) -> list[SigmaRules]:
    """The detector for the rules ``[rules] paths`` names (none when it names none).

    Raises :class:`RuleLoadError` for a rule that cannot be used.
    """
    if not settings.paths:
        return []
    from kubeguard.detectors.rules.detector import SigmaRules
    from kubeguard.detectors.rules.load import load_rules

    return [SigmaRules(load_rules(settings.paths), default_mode=settings.default_mode)]


def later_stage_detections(detectors: list[Any], event: Any) -> list[Any]:
    """What detectors that read every stage of an exec/attach/port-forward find in its second stage.

    The pipeline counts such a request once, at its first stage; a Sigma rule that names the other stage
    (``stage: ResponseComplete``) would otherwise never see it. Each rule still counts a request once.
    """
    found: list[Any] = []
    for detector in detectors:
        found.extend(detector.detect_later_stage(event))
    return found


def rules_detector(detectors: Any) -> SigmaRules | None:
    """The Sigma detector among an engine's detectors, if rules are loaded."""
    from kubeguard.detectors.rules.detector import SigmaRules

    return next((d for d in detectors if isinstance(d, SigmaRules)), None)
