"""GuardDuty's severity labels and the numbers behind them."""

from __future__ import annotations

#: Lower bound of each label (reference §1.1): Low 1-3.9, Medium 4-6.9, High 7-8.9, Critical 9-10.
THRESHOLDS = {"low": 1.0, "medium": 4.0, "high": 7.0, "critical": 9.0}


def label(severity: float) -> str:
    if severity >= 9.0:
        return "Critical"
    if severity >= 7.0:
        return "High"
    if severity >= 4.0:
        return "Medium"
    return "Low"


def parse_threshold(text: str) -> float:
    """``high`` or ``7`` → 7.0; raises ValueError for anything else."""
    lowered = text.strip().lower()
    if lowered in THRESHOLDS:
        return THRESHOLDS[lowered]
    value = float(lowered)
    if not 0 <= value <= 10:
        raise ValueError(f"severity {text!r} is outside 0-10")
    return value
