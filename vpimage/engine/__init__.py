"""The incremental analysis engine: per-study state, frames in, per-frame measures out.

::

    engine = Engine(config, rows=R, columns=C, mm_per_px=0.3, fov_mask=fov, corners=corners)
    for batch in study.iter_batches(16):
        for frame in engine.process(batch):
            frame.result        # FrameResult: measures, alert, reason
            frame.cement_mask   # bool [R, C] in the frame's image coordinates
"""

from vpimage.engine._engine import Engine
from vpimage.engine._result import EngineFrame, FrameResult
from vpimage.engine._state import EngineState

__all__ = ["Engine", "EngineFrame", "EngineState", "FrameResult"]
