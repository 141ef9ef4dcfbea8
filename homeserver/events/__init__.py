"""Events: building (prev/auth events, signing), checks, and the one persist path."""
