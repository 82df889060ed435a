"""Alert intake: alert records from a Kinesis data stream become cases, triaged on arrival (flows.py)."""
