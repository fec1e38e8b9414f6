"""Writers of analysis results: CSV/JSON (atomic), overlay video, plots, maps."""

from vpimage.outputs._maps import MASKS_FILE, read_masks_npz, read_npz_arrays, write_masks_npz
from vpimage.outputs._overlay import write_overlay, write_timeline_png
from vpimage.outputs._tables import (
    FRAME_COLUMNS,
    summarize_alerts,
    to_json,
    write_events_json,
    write_frames_csv,
    write_summary_json,
)

__all__ = [
    "FRAME_COLUMNS",
    "MASKS_FILE",
    "read_masks_npz",
    "read_npz_arrays",
    "summarize_alerts",
    "to_json",
    "write_events_json",
    "write_frames_csv",
    "write_masks_npz",
    "write_overlay",
    "write_summary_json",
    "write_timeline_png",
]
