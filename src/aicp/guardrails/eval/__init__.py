"""Accuracy of the guardrail detectors on labelled sets: `python -m aicp.guardrails.eval`."""
