"""``llmeval view``: a local viewer of the runs in a folder of results files (the ``view`` extra)."""
