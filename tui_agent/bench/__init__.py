"""`llamachat bench`: llamachat measured against the bare engine, in one run, on this machine."""
