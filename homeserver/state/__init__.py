"""State: each room's head (forward extremities, depth, current state) and state at events."""
