"""Seeded synthetic FMCG sales: history (seasonality, promotions, stockouts) and live events."""

from pipeline.synth.generator import SynthConfig, generate_events, live_events

__all__ = ["SynthConfig", "generate_events", "live_events"]
