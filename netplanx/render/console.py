"""An output stream for people: colour only on a terminal (and never with NO_COLOR)."""

from __future__ import annotations

from typing import TextIO

from netplanx.render.human import painter


class Output:
    """A stream plus colour that is only used on a terminal."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.paint = painter(stream)

    def print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
