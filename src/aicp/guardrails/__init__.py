"""Guardrail detectors (PII, secrets, prompt injection, term lists, size caps) and redaction."""
