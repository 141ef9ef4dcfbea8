"""The Synapse-compatible admin API (`/_synapse/admin/...`), one module per area.

Routes call `handlers/`; like the client API they never touch storage.
"""
