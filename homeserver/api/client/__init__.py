"""Client-server API, one module per spec chapter."""
