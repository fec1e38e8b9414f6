"""The incremental analysis engine: per-study state, frames in, per-frame measures out."""
