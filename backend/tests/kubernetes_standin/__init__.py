"""A stand-in Kubernetes API server whose pods run in local sandboxes (see server.py)."""
