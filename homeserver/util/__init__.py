"""Clock-aware helpers shared by every layer: clock, linearizer, caches, tasks."""
