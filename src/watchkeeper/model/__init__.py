"""Shared value types: labels, matchers, samples, exposition formats."""
