"""What operators see of a running Podrun: Prometheus metrics (metrics.py) and where they are served (exposition.py)."""
