"""Eval runs through the API: an evaluator starts a suite run in the background and reads its status and results."""
