"""Passage texts kept on disk and read by offset: a corpus of millions of passages without its texts in memory.

MS MARCO's 8.8M passages are about 3 GB of UTF-8 text, and over 4 GB as Python strings in a dict. An
``OffsetTexts`` holds, per passage, its id (in one dict: id -> row), an int64 byte offset, byte length and character
length (24 bytes a passage); the texts themselves are appended once to a spill file and read back with ``os.pread``.
The spill file holds the texts as the reader returns them (title joined, as parsed), so gzip-compressed and TSV
corpora read back the same way as plain JSON Lines, and no record is parsed twice.
"""

import os
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

SPILL_BLOCK = 1 << 22  # bytes buffered before each write to the spill file


class OffsetTexts(Mapping):
    """A read-only ``{id: text}`` mapping whose texts live in an unnamed temporary file.

    Built from (id, text) pairs in one pass (``from_pairs``), in their order; iteration follows it. Lookups cost one
    ``os.pread`` each. The spill file has no name (it disappears when the object is collected or the process
    exits) and lives in ``directory`` (default: ``tempfile.gettempdir()``, i.e. ``$TMPDIR``; it needs room for the
    corpus's texts, e.g. 3 GB for MS MARCO). Safe to use after ``fork`` (``pread`` keeps no file position).
    """

    def __init__(
        self,
        rows: dict[str, int],
        offsets: np.ndarray,
        lengths: np.ndarray,
        spill,
        characters: np.ndarray,
        empty_texts: int = 0,
    ):
        self._rows = rows
        self._offsets = offsets
        self._lengths = lengths
        self._characters = characters
        self._spill = spill
        self.empty_texts = empty_texts  # how many of all the texts read were "" (held or not)

    @classmethod
    def from_pairs(
        cls,
        pairs: Iterable[tuple[str, str]],
        directory: str | Path | None = None,
        keep: Callable[[int, str], bool] | None = None,
    ) -> "OffsetTexts":
        """Spill the texts of ``pairs`` ((id, text), ids unique) to disk and index them. A repeated id keeps its
        first text; the readers (``sycl.data.beir_files``) have already refused repeats with other text.

        ``keep(row, id)``: whether to hold that text; every id is indexed, but reading a text not held raises
        ``LookupError`` (a sharded evaluation process holds its own slice's texts only). None holds all.
        """
        # Closed with this object (or at exit): the file is the mapping's storage, not a scoped resource.
        spill = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115
        rows: dict[str, int] = {}
        # Compact arrays while reading: a Python list of ints would cost 36 bytes a passage each, 8 B here.
        offsets, lengths, characters = array("q"), array("q"), array("q")
        position, pending, pending_size, empty = 0, [], 0, 0
        for text_id, text in pairs:
            if text_id in rows:
                continue
            row = rows[text_id] = len(rows)
            characters.append(len(text))
            empty += not text
            if keep is not None and not keep(row, text_id):
                offsets.append(-1)
                lengths.append(0)
                continue
            encoded = text.encode("utf-8")
            offsets.append(position)
            lengths.append(len(encoded))
            position += len(encoded)
            pending.append(encoded)
            pending_size += len(encoded)
            if pending_size >= SPILL_BLOCK:
                spill.write(b"".join(pending))
                pending, pending_size = [], 0
        spill.write(b"".join(pending))
        spill.flush()
        return cls(
            rows,
            np.frombuffer(offsets, dtype=np.int64),
            np.frombuffer(lengths, dtype=np.int64),
            spill,
            np.frombuffer(characters, dtype=np.int64),
            empty,
        )

    def __getitem__(self, text_id: str) -> str:
        return self.text_at(self._rows[text_id])

    def __contains__(self, text_id: object) -> bool:
        return text_id in self._rows

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def text_at(self, row: int) -> str:
        """The text of the ``row``-th id (in reading order); ``LookupError`` for one not held (see ``from_pairs``)."""
        if self._offsets[row] < 0:
            raise LookupError(f"the text of passage row {row} is not held by this process (OffsetTexts keep=)")
        return os.pread(self._spill.fileno(), int(self._lengths[row]), int(self._offsets[row])).decode("utf-8")

    def rows(self, ids: Iterable[str]) -> np.ndarray:
        """The row of each id, [len(ids)] int64; KeyError for an unknown id."""
        return np.fromiter((self._rows[text_id] for text_id in ids), dtype=np.int64)

    def texts(self, ids: Sequence[str]) -> "TextSlice":
        """A lazy sequence of the texts of ``ids``, with their lengths, for batch-by-batch encoding."""
        return TextSlice(self, self.rows(ids))


class TextSlice(Sequence):
    """The texts of some rows of an ``OffsetTexts``, read when indexed; ``lengths`` are in characters, so
    length-sorted batching needs no text read."""

    def __init__(self, store: OffsetTexts, rows: np.ndarray):
        self.store = store
        self.row_of = rows
        self.lengths = store._characters[rows]

    def __getitem__(self, index: int) -> str:
        return self.store.text_at(int(self.row_of[index]))

    def __len__(self) -> int:
        return len(self.row_of)


def text_lengths(texts: Sequence[str]) -> Sequence[int]:
    """The character length of each text: read from a ``TextSlice`` without touching the texts, else computed."""
    lengths = getattr(texts, "lengths", None)
    return lengths if lengths is not None else [len(text) for text in texts]
