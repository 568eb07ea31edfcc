"""Fitting a conversation into the context window, and the figures for a context meter.

A model sees at most ``n_ctx`` tokens: the prompt plus the reply it is writing. When a conversation
grows past that, the oldest turns have to go. The rules here:

* system messages are always kept (they hold the user's instructions);
* the newest message is always kept (it is what the model answers);
* what is kept is one unbroken run of the newest messages — never a hole in the middle — and it
  starts with a user turn, because several chat templates (Gemma's among them) refuse a history
  that opens with an assistant turn;
* room is kept for the reply (see :func:`reply_reserve`).

Token counts come from the loaded model's tokenizer when the engine can give them (the ``tokenize``
engine command); otherwise :func:`estimate_tokens` is used and every figure is marked as estimated,
so the meter says "≈". Chat templates add a few tokens around each message (role markers, end-of-turn
tokens) and once per prompt (BOS, the "assistant" header, and the default system prompt some templates
insert); the allowances below cover the templates of the models this project tests with, checked
against llama.cpp's own prompt-token count in tests/core/chat/test_context_window.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

MESSAGE_OVERHEAD_TOKENS = 6  # per message: <|im_start|>role\n … <|im_end|>\n and similar
PROMPT_OVERHEAD_TOKENS = 32  # per prompt: BOS, the reply header, an injected default system prompt
CHARS_PER_TOKEN = 3.5  # heuristic for English with a BPE vocabulary; deliberately on the high side


def estimate_tokens(text: str) -> int:
    """A HEURISTIC token count, not a measurement: ~3.5 ASCII characters per token, and one token
    per non-ASCII character (CJK, emoji and accented text cost far more tokens per character).
    Use real counts from the engine where possible; results built on this are marked estimated."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return math.ceil(ascii_chars / CHARS_PER_TOKEN) + (len(text) - ascii_chars)


def reply_reserve(max_tokens: int, n_ctx: int) -> int:
    """Tokens kept free for the reply: the reply limit, but at most a quarter of the window.

    llama.cpp stops a reply at the end of the window anyway; reserving the full limit (often 512
    or more in a 2048 window) would throw away conversation the model could still have seen.
    """
    return max(0, min(max_tokens, n_ctx // 4))


@dataclass(frozen=True)
class ContextFit:
    kept: tuple[int, ...]  # indices into the messages given, oldest first
    dropped: tuple[int, ...]
    used_tokens: int  # the prompt as sent: kept messages plus template allowances
    reserved_tokens: int  # kept free for the reply
    n_ctx: int
    estimated: bool  # True when the counts came from estimate_tokens, not the model's tokenizer
    fits: bool  # False when even the system prompt and the newest message leave no room

    @property
    def fraction(self) -> float:
        return self.used_tokens / self.n_ctx if self.n_ctx else 0.0

    @property
    def meter_text(self) -> str:
        approx = "≈" if self.estimated else ""
        return f"{approx}{self.used_tokens:,} / {self.n_ctx:,} tokens ({self.fraction:.0%})"

    @property
    def notice(self) -> str | None:
        """One sentence for the user when something is left out, else None."""
        if not self.fits:
            return (
                f"The newest message alone needs about {self.used_tokens:,} of the {self.n_ctx:,} tokens in the "
                "context window, leaving no room for a reply; shorten it or load the model with a longer context."
            )
        if self.dropped:
            n = len(self.dropped)
            return (
                f"{n} older message{'s' if n != 1 else ''} {'were' if n != 1 else 'was'} left out so the conversation "
                f"fits the {self.n_ctx:,}-token context window; the model does not see {'them' if n != 1 else 'it'}."
            )
        return None


def fit_messages(
    roles: Sequence[str],
    token_counts: Sequence[int],
    n_ctx: int,
    reserve: int,
    *,
    estimated: bool = False,
    message_overhead: int = MESSAGE_OVERHEAD_TOKENS,
    prompt_overhead: int = PROMPT_OVERHEAD_TOKENS,
) -> ContextFit:
    """Which messages to send so the prompt plus ``reserve`` reply tokens fit in ``n_ctx``."""
    if len(roles) != len(token_counts):
        raise ValueError("roles and token_counts must have the same length")
    cost = [max(0, c) + message_overhead for c in token_counts]
    system = [i for i, r in enumerate(roles) if r == "system"]
    others = [i for i, r in enumerate(roles) if r != "system"]
    used = prompt_overhead + sum(cost[i] for i in system)
    budget = n_ctx - reserve
    kept_others: list[int] = []
    for pos, i in enumerate(reversed(others)):
        if pos == 0 or used + cost[i] <= budget:  # the newest message is always sent
            kept_others.insert(0, i)
            used += cost[i]
        else:
            break
    # Never open the history with an assistant turn (drop it: the model saw its question go anyway).
    while len(kept_others) > 1 and roles[kept_others[0]] == "assistant":
        used -= cost[kept_others.pop(0)]
    kept = tuple(sorted(system + kept_others))
    dropped = tuple(i for i in others if i not in set(kept_others))
    return ContextFit(
        kept=kept,
        dropped=dropped,
        used_tokens=used,
        reserved_tokens=reserve,
        n_ctx=n_ctx,
        estimated=estimated,
        fits=used <= budget or not others,
    )


def fit_estimated(messages: Sequence[dict[str, str]], n_ctx: int, reserve: int) -> ContextFit:
    """fit_messages over ``{role, content}`` dicts with heuristic counts (marked estimated)."""
    return fit_messages(
        [m["role"] for m in messages],
        [estimate_tokens(m.get("content", "")) for m in messages],
        n_ctx,
        reserve,
        estimated=True,
    )
