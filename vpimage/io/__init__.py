"""Ingestion: a path or stream becomes a Study with lazy frames, geometry and timing."""
