"""llamachat: a local-first terminal chat agent on one resident GGUF model."""

__version__ = "0.1.0"
