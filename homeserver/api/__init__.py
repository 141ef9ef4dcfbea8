"""HTTP endpoints: thin functions that check parameters and call handlers."""
