"""Command-line tools for administrators (see docs/cli.md).

* ``python -m homeserver.cli.register_new_matrix_user``: create an account
  through a running server's shared-secret registration API, like Synapse's
  tool of the same name.
* ``python -m homeserver.cli.create_user``: create an account straight in the
  database; no running server needed.
"""
