"""Podrun's benchmark (`./taskw bench`, or `python -m bench` in `backend/`): the issue's five measurements,
each next to a baseline measured in the same run, since absolute timings on a shared machine mean little.
"""
