"""API keys: authentication with a short cache (service.py) and the admin routes (views.py)."""
