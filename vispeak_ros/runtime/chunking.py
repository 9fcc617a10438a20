"""Answers are cut into sentence-sized chunks as they are generated, so text-to-speech can start early."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+")


class SentenceChunker:
    """Cuts streamed answer text into sentence-sized chunks, so TTS can start before the answer ends.

    `feed(text)` takes the decoded answer so far (or a delta) and returns the sentences completed by it;
    `finish()` returns what remains. A chunk is also cut at `max_chars` on a word boundary, so a long answer
    without punctuation still reaches the speaker in pieces.
    """

    def __init__(self, max_chars: int = 200) -> None:
        self.max_chars = max_chars
        self._pending = ""

    def feed(self, delta: str) -> list[str]:
        self._pending += delta
        chunks: list[str] = []
        while True:
            parts = _SENTENCE_END.split(self._pending, maxsplit=1)
            if len(parts) == 2:
                chunks.append(parts[0].strip())
                self._pending = parts[1]
                continue
            if len(self._pending) > self.max_chars:
                cut = self._pending.rfind(" ", 0, self.max_chars)
                cut = cut if cut > 0 else self.max_chars
                chunks.append(self._pending[:cut].strip())
                self._pending = self._pending[cut:].lstrip()
                continue
            break
        return [c for c in chunks if c]

    def finish(self) -> list[str]:
        rest, self._pending = self._pending.strip(), ""
        return [rest] if rest else []
