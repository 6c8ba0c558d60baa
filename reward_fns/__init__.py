"""reward_fns: answer extraction, per-task verifiers, shaping. Knows nothing of verl."""

from reward_fns.protocol import extract_answer
from reward_fns.registry import Reference, get_verifier, list_verifiers, register_verifier

__all__ = ["Reference", "extract_answer", "get_verifier", "list_verifiers", "register_verifier"]
