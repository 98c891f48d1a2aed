"""The agent: conversation, tool-call parsing, the loop, compaction and the worker thread."""
