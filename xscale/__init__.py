"""xscale: model-scale sweeps of intermediate-task training for cross-lingual transfer."""

__version__ = "0.1.0"
