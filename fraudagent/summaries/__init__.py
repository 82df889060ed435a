"""Ticketing summaries: jobs in DynamoDB, worked by leased workers, delivered on signed callbacks."""
