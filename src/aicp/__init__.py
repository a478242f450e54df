"""aicp: a self-hosted AI control plane."""

__version__ = "0.1.0"
