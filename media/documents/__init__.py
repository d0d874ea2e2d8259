"""Document pipeline: find the document in a frame (later: straighten it, judge its quality)."""

from .detect import detect_quad

__all__ = ["detect_quad"]
