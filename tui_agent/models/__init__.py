"""Model specs to local GGUF files: local paths, Hugging Face repos, presets, the demo model."""
