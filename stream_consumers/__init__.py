"""Lambda and KCL entry points: wiring only, the logic lives in ``pipeline``."""
