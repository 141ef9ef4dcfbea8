"""Push: rules for every member of a room, pushers, delivery to push gateways (README.md)."""
