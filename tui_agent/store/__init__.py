"""Session history: the SQLite store, the recorder that fills it, export."""
