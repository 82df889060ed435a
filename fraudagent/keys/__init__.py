"""API keys: authentication with a short cache and look-up throttling (service.py), rate limits (ratelimit.py).
The keys themselves are stored by `fraudagent.store.keys`; the admin routes are `fraudagent.api.keys`."""
