"""Pipelines: durable ML/LLM pipelines, tracked in MLflow, promoting what the gateway serves."""
