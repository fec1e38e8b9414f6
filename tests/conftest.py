"""Shared test configuration: this folder is on sys.path, so test folders can share helpers
(``fluoro_runs``)."""
