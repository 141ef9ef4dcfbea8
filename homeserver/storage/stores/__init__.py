"""One module per table family; each `*Store` owns its tables and caches."""
