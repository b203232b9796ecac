"""1. What the user writes: sweep and trial files, typed once (phases, search spaces, paths)."""
