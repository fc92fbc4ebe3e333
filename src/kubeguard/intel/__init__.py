"""Threat intelligence: IP sets, list formats and sources, open feeds, the IntelIndex, and geo/ASN.

Modules are imported by path (``kubeguard.intel.index``...) so that importing the package stays free.
"""
