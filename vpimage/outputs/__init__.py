"""Writers of analysis results: CSV/JSON (atomic), overlay video, plots, maps."""
