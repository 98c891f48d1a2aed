"""One module per CLI command group; each function takes the parsed arguments, returns an exit code."""
