"""LLM-assisted fraud investigation agent for a digital game store."""

__version__ = "0.1.0"
