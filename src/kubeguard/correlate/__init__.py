"""Correlation: attack sequences, finding groups and investigations of a subject.

Everything here reads findings in GuardDuty's wire form and nothing else, so the same functions serve
``kubeguard scan`` (findings in memory), ``kubeguard serve`` (findings in the store, after each batch) and
the Detective-compatible API.
"""
