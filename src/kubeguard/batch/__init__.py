"""Batches: the unit in which every mode commits detection, and the state a batch reads and writes.

:func:`kubeguard.batch.processor.BatchProcessor.process_batch` is the one entry point the webhook's
spool drainer, the bus workers and the live sources call; see its docstring for the guarantee.
"""
