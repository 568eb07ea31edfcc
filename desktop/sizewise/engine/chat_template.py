"""A model's chat template, rendered so that a bad one fails one request and never the engine.

A GGUF's ``tokenizer.chat_template`` is code from whoever made the file. llama-cpp-python already
renders it in Jinja's ``ImmutableSandboxedEnvironment`` (no attribute access outside the sandbox,
``range`` capped at 100,000), but the sandbox bounds neither time nor size: ``{{ 'x' * 10**10 }}``
asks for 10 GB, nested loops run for hours, and a loop that prints can build a prompt of any length.
Each of those would take the worker down (killed by the OS or by the stop watchdog), unloading the
model. Here the same formatter is compiled in a sandbox that also caps:

* the size of every string or list a ``*`` or ``+`` makes, and of a ``**`` result;
* the rendered prompt's length (a multiple of the context: a longer prompt could never be used);
* the wall time of one rendering (POSIX: an interval timer on the worker's main thread, where
  requests run; elsewhere only the size caps apply).

What breaks a rule raises :class:`TemplateProblem`, which the worker turns into one sentence for
that request; the model stays loaded.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

RENDER_TIME_LIMIT_S = 2.0
MAX_VALUE_CHARS = 1 << 20  # one string or list made by an operator in the template
CHARS_PER_TOKEN_CAP = 64  # a rendered prompt longer than n_ctx × this could never fit the context
MIN_PROMPT_CHARS = 1 << 16


class TemplateProblem(Exception):
    """The chat template raised, ran too long or produced too much; the message is one sentence."""


class _BoundedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus size checks on the operators that can build huge values."""

    intercepted_binops = frozenset({"*", "+", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int) and abs(right) > 64:
            raise SecurityError("a power larger than 64 in the chat template")
        if _made_length(operator, left, right) > MAX_VALUE_CHARS:
            raise SecurityError(f"a value over 1 MiB made by '{operator}' in the chat template")
        return super().call_binop(context, operator, left, right)


def _made_length(operator: str, left: Any, right: Any) -> int:
    """Length of the string or list ``left operator right`` would make (0 for anything else)."""
    seq = (str, list, tuple)
    if operator == "+" and isinstance(left, seq) and isinstance(right, seq):
        return len(left) + len(right)
    if operator == "*" and isinstance(left, int) and isinstance(right, seq):
        left, right = right, left
    if operator == "*" and isinstance(left, seq) and isinstance(right, int):
        return len(left) * max(right, 0)
    return 0


class _BoundedTemplate:
    """Renders through ``generate`` so that output past the cap stops the rendering at once."""

    def __init__(self, template: jinja2.Template, max_chars: int) -> None:
        self._template = template
        self._max_chars = max_chars

    def render(self, *args: Any, **kwargs: Any) -> str:
        try:
            return self._render(*args, **kwargs)
        except TemplateProblem:
            raise
        except Exception as exc:  # anything the template's code raised: one sentence for this request
            raise TemplateProblem(_sentence(exc)) from exc

    def _render(self, *args: Any, **kwargs: Any) -> str:
        pieces: list[str] = []
        total = 0
        with _time_limit(RENDER_TIME_LIMIT_S):
            for piece in self._template.generate(*args, **kwargs):
                total += len(piece)
                if total > self._max_chars:
                    raise TemplateProblem(
                        f"The model's chat template produced more than {self._max_chars:,} characters, "
                        "more than its context could ever hold."
                    )
                pieces.append(piece)
        return "".join(pieces)


class _RenderTimeout(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """SIGALRM after ``seconds`` on the main thread (where the worker runs requests); else no limit."""
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not usable:
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise _RenderTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _RenderTimeout:
        raise TemplateProblem(f"The model's chat template did not finish within {seconds:g} s (it may loop).") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def guard_chat_templates(llm: Any, llama_chat_format: Any, n_ctx: int) -> None:
    """Replace the Jinja chat handlers llama-cpp-python made from the GGUF metadata with bounded ones.

    Built from the same class (``Jinja2ChatFormatter``) with the same tokens, so the rendered prompt is
    byte-for-byte what llama-cpp-python would render; only the environment and the render call differ.
    Built-in formats (chatml, llama-2, … picked when the template is a known one) are Python code, not
    templates, and are left alone.
    """
    base = llama_chat_format.Jinja2ChatFormatter

    class BoundedFormatter(base):  # type: ignore[misc, valid-type]
        def __init__(self, template: str, eos_token: str, bos_token: str, stop_token_ids: list[int]) -> None:
            super().__init__(template=template, eos_token=eos_token, bos_token=bos_token, stop_token_ids=stop_token_ids)
            env = _BoundedSandbox(
                loader=jinja2.BaseLoader(),
                trim_blocks=True,
                lstrip_blocks=True,
                extensions=[base.IgnoreGenerationTags, "jinja2.ext.loopcontrols"],
            )
            env.filters["tojson"] = self.tojson
            max_chars = max(MIN_PROMPT_CHARS, n_ctx * CHARS_PER_TOKEN_CAP)
            self._environment = _BoundedTemplate(env.from_string(template), max_chars)

    eos_id, bos_id = int(llm.token_eos()), int(llm.token_bos())
    eos = llm._model.token_get_text(eos_id) if eos_id != -1 else ""
    bos = llm._model.token_get_text(bos_id) if bos_id != -1 else ""
    for key, value in llm.metadata.items():
        if key == "tokenizer.chat_template":
            name = "chat_template.default"
        elif key.startswith("tokenizer.chat_template."):
            name = key[len("tokenizer.") :]
        else:
            continue
        if name in llm._chat_handlers:
            llm._chat_handlers[name] = BoundedFormatter(str(value), eos, bos, [eos_id]).to_chat_handler()


def _sentence(exc: BaseException) -> str:
    detail = str(exc).strip().rstrip(".!?") or type(exc).__name__
    if isinstance(exc, SecurityError):
        return f"The model's chat template tried something the sandbox forbids: {detail}."
    if isinstance(exc, ValueError) and not isinstance(exc, jinja2.TemplateError):
        # raise_exception('…') in the template: the template's author explains why
        return f"The model's chat template refused this conversation: {detail}."
    return f"The model's chat template failed: {detail}."
