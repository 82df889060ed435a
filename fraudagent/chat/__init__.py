"""Analyst chat about a case: streamed over server-sent events, sessions kept in DynamoDB."""
