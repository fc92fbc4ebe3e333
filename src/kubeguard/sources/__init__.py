"""Live readers of audit logs with persisted cursors (CloudWatch Logs, the audit log file).

Each feeds what it reads into the same durable spool as the webhook, committing its resume position in
the transaction that stores the batch, so a crash neither loses nor repeats an event.
"""
