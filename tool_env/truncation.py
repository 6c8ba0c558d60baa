"""The one output-capping rule every backend applies, so the model sees the same text anywhere.

Long output keeps its head (where programs print headers and first results) and its tail
(where the final answer and tracebacks land); the middle becomes a notice saying how much
was dropped. The capped text, notice included, never exceeds the limit.
"""

from __future__ import annotations

TRUNCATION_NOTICE = "\n[... {dropped} characters truncated ...]\n"


def truncate_head_tail(text: str, max_chars: int) -> tuple[str, bool]:
    """Return `text` capped to `max_chars` characters and whether anything was cut."""
    if max_chars < 0:
        raise ValueError(f"max_chars must be >= 0, got {max_chars}")
    if len(text) <= max_chars:
        return text, False
    # The notice length depends on the dropped count, which depends on the notice length;
    # sizing it for the worst case (everything dropped) keeps the result within the limit.
    notice_budget = len(TRUNCATION_NOTICE.format(dropped=len(text)))
    kept = max_chars - notice_budget
    if kept <= 0:
        return text[:max_chars], True
    head = kept - kept // 2
    tail = kept // 2
    notice = TRUNCATION_NOTICE.format(dropped=len(text) - head - tail)
    return text[:head] + notice + (text[len(text) - tail :] if tail else ""), True


__all__ = ["TRUNCATION_NOTICE", "truncate_head_tail"]
