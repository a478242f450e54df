"""Events, logs, metrics and traces: the event bus and its consumers."""
