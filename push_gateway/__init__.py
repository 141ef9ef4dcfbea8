"""Myelin's push gateway: the role Sygnal plays.

Receives ``POST /_matrix/push/v1/notify`` from homeservers (the Matrix push
gateway API) and relays each device's notification to FCM, APNs or a Web Push
service. It runs as its own process (``python -m push_gateway -c
push_gateway.yaml``) and imports nothing from ``homeserver/``.

Layout: ``config/`` (sections and loader), ``notification`` (pure parsing of the
request), ``pushkins/`` (one module per provider; ``*_payload`` modules are pure),
``dispatch`` (app id routing, deduplication, result collection), ``retry``
(typed retry decisions), ``http`` (twisted.web resources), ``app`` (composition
root) and ``__main__`` (process start-up).
"""

__version__ = "0.1.0"
