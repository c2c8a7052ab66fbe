"""HTTP: the app factory (``app.create_app``), typed dependencies, request/response schemas, domain
error mapping, and one module per group of routes (``routes/``); the static chat UI is ``static/``."""
