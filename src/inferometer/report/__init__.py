"""Rendering stored results; reads only RunResult, never runs anything."""
