"""The resident model: load once, render chat templates, stream tokens, report statistics."""
