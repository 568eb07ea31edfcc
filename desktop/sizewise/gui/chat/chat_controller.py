"""The chat flow between the conversation store, the chat list model and the engine.

Every turn is saved before and while it happens: the user's message is stored when sent, the
reply is stored as it streams (core.chat.reply.StreamingReply), so a killed app loses nothing
but the last fraction of a second. Before each reply the history is measured with the model's own
tokenizer (the engine's ``tokenize`` command) and fitted to the context window; when older
messages have to be left out, the user is told.

The controller only reacts to engine events for its own generation id, so other views (writing
help) can share the engine; its Stop stops its own request only. A turn sent while another view's
reply runs waits for it (the engine answers one request at a time): the user is told, and told
again when the wait is over.
"""

from __future__ import annotations

import itertools
from typing import Any

from PySide6.QtCore import QObject, Signal, Slot

from sizewise.core.chat.context_window import ContextFit, estimate_tokens, fit_messages, reply_reserve
from sizewise.core.chat.opening import StoreError
from sizewise.core.chat.prompt import chat_messages, transcript_prompt
from sizewise.core.chat.records import StoredMessage
from sizewise.core.chat.reply import StreamingReply
from sizewise.core.chat.store import ConversationStore, suggest_title
from sizewise.core.sampling import SamplingParams
from sizewise.gui.adapters.engine_adapter import EngineAdapter
from sizewise.gui.chat.chat_model import ChatMessage, ChatModel

CONTINUE_PROMPT = "Continue exactly where you stopped, without repeating anything."
WAITING_NOTICE = "Another reply on this model is in progress (writing help): this one starts when it ends."
QUEUED_NOTE = "queued: starts when the reply in progress ends"
_STATUS_FROM_STORE = {"complete": "done", "interrupted": "interrupted", "streaming": "streaming"}


def chat_row(m: StoredMessage) -> ChatMessage:
    status = _STATUS_FROM_STORE.get(m.status, "done")
    if status == "done" and m.stats.get("finish_reason") == "cancelled":
        status = "stopped"
    note = "cut off at max tokens" if m.stats.get("finish_reason") == "length" else ""
    return ChatMessage(m.role, m.content, status=status, stats=dict(m.stats), note=note, message_id=m.id)


class ChatController(QObject):
    message = Signal(str, str)  # sentence, level (error | warning | info)
    messageCleared = Signal()  # the turn that was waiting for another reply is under way (or stopped)
    busyChanged = Signal(bool)
    contextChanged = Signal(str, float)  # meter text, fraction used
    replyFinished = Signal(dict)  # GenerationStats dict
    conversationChanged = Signal(int)  # the conversation now shown (-1: none)

    def __init__(
        self, store: ConversationStore, engine: EngineAdapter, chat: ChatModel, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.engine = engine
        self.chat = chat
        self.conversation_id = -1
        self.gen_id: int | None = None
        self.reply: StreamingReply | None = None
        self._pending: dict[str, Any] | None = None  # a request waiting for token counts
        self._token_ids = itertools.count(1)
        self._waiting_told = False  # WAITING_NOTICE is shown for the pending request
        engine.replyStarted.connect(self._on_started)
        engine.token.connect(self._on_token)
        engine.finished.connect(self._on_finished)
        engine.failed.connect(self._on_failed)
        engine.tokenized.connect(self._on_tokenized)
        engine.engineStopped.connect(self._on_engine_stopped)
        engine.stopForced.connect(self._on_stop_forced)

    @property
    def busy(self) -> bool:
        return self._pending is not None or self.gen_id is not None

    # -- conversations ----------------------------------------------------------------------------
    def open_conversation(self, conversation_id: int) -> None:
        if self.busy:
            self.stop()
        self.conversation_id = conversation_id
        if conversation_id < 0:
            self.chat.clear()
        else:
            try:
                self.chat.set_messages([chat_row(m) for m in self.store.messages(conversation_id)])
            except StoreError as exc:
                self.message.emit(str(exc), "error")
        self.contextChanged.emit("", 0.0)
        self.conversationChanged.emit(conversation_id)

    def _ensure_conversation(self, first_text: str, system_prompt: str, preset: str) -> int:
        if self.conversation_id < 0 or self.store.get_conversation(self.conversation_id) is None:
            conv = self.store.create_conversation(suggest_title(first_text), system_prompt=system_prompt, preset=preset)
            self.conversation_id = conv.id
            self.conversationChanged.emit(conv.id)
        return self.conversation_id

    def system_prompt(self) -> str:
        conv = self.store.get_conversation(self.conversation_id) if self.conversation_id >= 0 else None
        return conv.system_prompt if conv else ""

    # -- turns ------------------------------------------------------------------------------------
    def send(self, text: str, sampling: SamplingParams, system_prompt: str, model_path: str, preset: str = "") -> bool:
        if self.busy or not text.strip():
            return False
        try:
            conv_id = self._ensure_conversation(text, system_prompt, preset)
            conv = self.store.get_conversation(conv_id)
            if conv is not None and conv.system_prompt != system_prompt:
                self.store.set_system_prompt(conv_id, system_prompt)
            stored = self.store.add_message(conv_id, "user", text)
        except StoreError as exc:
            self.message.emit(str(exc), "error")
            return False
        self.chat.append(ChatMessage("user", text, message_id=stored.id))
        self._request(sampling, system_prompt, model_path)
        return True

    def regenerate(self, sampling: SamplingParams, system_prompt: str, model_path: str) -> bool:
        """Replace the last reply with a new one (a new seed unless the seed is fixed)."""
        rows = self.chat.messages
        if self.busy or not rows or rows[-1].role not in ("assistant", "completion"):
            return False
        if not self._drop_from(len(rows) - 1):
            return False
        self._request(sampling, system_prompt, model_path)
        return True

    def edit_and_resend(
        self, row: int, new_text: str, sampling: SamplingParams, system_prompt: str, model_path: str
    ) -> bool:
        rows = self.chat.messages
        if self.busy or not 0 <= row < len(rows) or rows[row].role != "user" or not new_text.strip():
            return False
        if not self._drop_from(row):
            return False
        return self.send(new_text, sampling, system_prompt, model_path)

    def continue_last(self, sampling: SamplingParams, system_prompt: str, model_path: str) -> bool:
        """Carry on a reply that was cut off (max tokens) or stopped; new text joins the same reply."""
        rows = self.chat.messages
        if self.busy or not rows or rows[-1].role not in ("assistant", "completion") or rows[-1].message_id is None:
            return False
        self._request(sampling, system_prompt, model_path, continue_id=rows[-1].message_id)
        return True

    def stop(self) -> None:
        """Stop this chat's turn, queued or running; a reply of another view goes on."""
        if self._pending is not None:
            self._pending = None
            self._end_waiting()
            self.busyChanged.emit(False)
        if self.gen_id is not None:
            self.engine.stop(self.gen_id)

    def _end_waiting(self) -> None:
        if self._waiting_told:
            self._waiting_told = False
            self.messageCleared.emit()

    def _drop_from(self, row: int) -> bool:
        msg_id = self.chat.messages[row].message_id
        try:
            if msg_id is not None:
                self.store.delete_messages_from(msg_id)
        except StoreError as exc:
            self.message.emit(str(exc), "error")
            return False
        self.chat.truncate(row)
        return True

    # -- request: count tokens, fit the window, generate -----------------------------------------
    def _request(
        self, sampling: SamplingParams, system_prompt: str, model_path: str, continue_id: int | None = None
    ) -> None:
        history = chat_messages(system_prompt, self.store.messages(self.conversation_id))
        if continue_id is not None:
            history.append({"role": "user", "content": CONTINUE_PROMPT})
        request_id = f"chat-{next(self._token_ids)}"
        self._pending = {
            "id": request_id,
            "history": history,
            "sampling": sampling,
            "model_path": model_path,
            "continue_id": continue_id,
        }
        self.busyChanged.emit(True)
        if self.engine.generating is not None:  # the token counts, and then the reply, queue behind it
            self._waiting_told = True
            self.message.emit(WAITING_NOTICE, "info")
        self.engine.tokenize(request_id, [m["content"] for m in history])

    @Slot(dict)
    def _on_tokenized(self, msg: dict[str, Any]) -> None:
        pending = self._pending
        if pending is None or msg.get("id") != pending["id"]:
            return
        self._pending = None
        self._end_waiting()
        history: list[dict[str, str]] = pending["history"]
        raw = msg.get("counts")
        estimated = not (isinstance(raw, list) and len(raw) == len(history))
        counts: list[int] = (
            [estimate_tokens(m["content"]) for m in history] if estimated else [int(c) for c in raw or []]
        )
        n_ctx = int(self.engine.loaded_info.get("n_ctx") or 2048)
        sampling: SamplingParams = pending["sampling"]
        fit = fit_messages(
            [m["role"] for m in history],
            counts,
            n_ctx,
            reply_reserve(sampling.max_tokens, n_ctx),
            estimated=estimated,
        )
        self._report_context(fit)
        if not fit.fits:
            self.message.emit(fit.notice or "The message does not fit the context window.", "error")
            self.busyChanged.emit(False)
            return
        sent = [history[i] for i in fit.kept]
        try:
            if pending["continue_id"] is not None:
                self.reply = self.store.continue_reply(pending["continue_id"])
                self.chat.finish_last("streaming")
            else:
                self.reply = self.store.begin_reply(
                    self.conversation_id, model_path=pending["model_path"], sampling=sampling.to_dict()
                )
                chat_mode = self.engine.loaded_info.get("chat_mode") == "chat"
                self.chat.append(
                    ChatMessage(
                        "assistant" if chat_mode else "completion",
                        "",
                        status="streaming",
                        message_id=self.reply.message_id,
                    )
                )
        except StoreError as exc:
            self.message.emit(str(exc), "error")
            self.busyChanged.emit(False)
            return
        if self.engine.loaded_info.get("chat_mode") == "chat":
            self.gen_id = self.engine.generate(sampling, messages=sent)
        else:
            if pending["continue_id"] is not None:  # a base model simply carries on the transcript
                sent = sent[:-1]
                prompt = transcript_prompt(sent[:-1]) + " " + sent[-1]["content"] if sent else ""
            else:
                prompt = transcript_prompt(sent)
            self.gen_id = self.engine.generate(sampling, prompt=prompt)
        if self.engine.waiting(self.gen_id):  # another view's reply was sent in the meantime
            self.chat.finish_last("streaming", note=QUEUED_NOTE)

    def _report_context(self, fit: ContextFit) -> None:
        self.contextChanged.emit(fit.meter_text, fit.fraction)
        if fit.notice and fit.fits:
            self.message.emit(fit.notice, "warning")

    # -- engine events ----------------------------------------------------------------------------
    @Slot(int)
    def _on_started(self, gen_id: int) -> None:
        rows = self.chat.messages
        if gen_id == self.gen_id and rows and rows[-1].note == QUEUED_NOTE:
            self.chat.finish_last("streaming")

    @Slot(int, str)
    def _on_token(self, gen_id: int, text: str) -> None:
        if gen_id != self.gen_id:
            return
        self.chat.append_text(text)
        if self.reply is not None:
            self.reply.append(text)

    def _finish_reply(self, status: str, stats: dict[str, Any] | None = None) -> None:
        reply, self.reply = self.reply, None
        self.gen_id = None
        if reply is not None:
            try:
                reply.finish("complete" if status in ("done", "stopped") else "interrupted", stats=stats)
            except StoreError as exc:
                self.message.emit(f"The reply could not be saved: {exc}", "error")
        self.busyChanged.emit(False)

    @Slot(int, dict)
    def _on_finished(self, gen_id: int, stats: dict[str, Any]) -> None:
        if gen_id != self.gen_id:
            return
        reason = stats.get("finish_reason")
        status = "stopped" if reason == "cancelled" else "done"
        self.chat.finish_last(status, stats, "cut off at max tokens" if reason == "length" else "")
        self._finish_reply(status, stats)
        self.replyFinished.emit(stats)

    @Slot(int, str)
    def _on_failed(self, gen_id: int, message: str) -> None:
        if gen_id != self.gen_id:
            return
        rows = self.chat.messages
        # A server that went away mid-reply: what came is kept, marked interrupted (the store marks it so too).
        cut = getattr(self.engine, "is_remote", False) and bool(rows) and bool(rows[-1].text)
        self.chat.finish_last("interrupted" if cut else "error", note=message)
        self._finish_reply("error")
        self.message.emit(message, "error")

    @Slot(int)
    def _on_stop_forced(self, gen_id: int) -> None:
        if gen_id != self.gen_id:
            return
        self.chat.finish_last("stopped", note="stopped during prompt processing; the engine was restarted")
        self._finish_reply("stopped")

    @Slot(str)
    def _on_engine_stopped(self, sentence: str) -> None:
        if self._pending is not None:
            self._pending = None
            self._end_waiting()
            self.busyChanged.emit(False)
        if self.gen_id is not None or self.reply is not None:
            self.chat.finish_last("interrupted")
            self._finish_reply("interrupted")
