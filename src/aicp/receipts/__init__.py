"""Verifiable receipts: canonical JSON, the Merkle log, checkpoints, proofs."""
