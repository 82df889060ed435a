"""Analysts' decisions: close a case, audit it, and feed it back into the past-case store."""
