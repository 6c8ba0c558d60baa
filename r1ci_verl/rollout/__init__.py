"""Rollout: the code-interpreter agent loop, its settings, the drop-in tool and rollout metrics."""
