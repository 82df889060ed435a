"""Closing the loop: analysts' verdicts on reports, decisions' agreement with reports, quality over time, and
decided cases exported as an eval suite."""
