"""`llamachat serve`: the agent over HTTP (a Responses API subset, server-sent events)."""
