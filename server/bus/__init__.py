"""Event-bus implementations beyond the in-process one (meetings.bus.MemoryBus)."""
