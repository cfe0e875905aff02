"""Crash-safe transcript journal: committed text is appended and flushed to disk as it is
committed, so a crash or kill -9 loses at most the tentative tail; the next start offers it back.

One JSON object a line: a header, then {"text": <committed delta>, "end_s": <audio time>}, and
{"closed": true} after a clean stop. A journal without the closing line is pending recovery.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path


def journal_dir() -> Path:
    base = os.environ.get("ASRLIVE_STATE_DIR")
    if base:
        return Path(base) / "journal"
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "asrlive" / "journal"


KEEP_CLOSED = 50  # finished runs' journals kept as history; older closed ones are removed

# Names must be unique within a process too: two journals opened in the same second once shared
# a name (an id()-based suffix collided) and the second one's close marked the first as closed.
_JOURNAL_NUMBERS = itertools.count()


def _prune(folder: Path) -> None:
    for path in sorted(folder.glob("*.jsonl"))[:-KEEP_CLOSED]:
        if read_journal(path)[2]:
            path.unlink(missing_ok=True)


class TranscriptJournal:
    def __init__(self, label: str, model: str, folder: Path | None = None):
        self.folder = folder or journal_dir()
        self.folder.mkdir(parents=True, exist_ok=True)
        _prune(self.folder)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        while True:  # never append to another run's journal (another process may share the pid: containers)
            self.path = self.folder / f"{stamp}-{os.getpid()}-{next(_JOURNAL_NUMBERS):04d}.jsonl"
            try:
                self._file = open(self.path, "x", encoding="utf-8")
                break
            except FileExistsError:
                continue
        # Held while the run writes (the system drops it when the process dies, kill -9 too): a
        # second asrlive started meanwhile must not offer this live run's text back and settle it.
        # Best effort: where the file system has no locks (some network mounts) the journal
        # still works, as before there was a lock; the file is new, so nothing holds it.
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            pass
        self._write({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "source": label, "model": model})

    def _write(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def append(self, new_text: str, end_s: float) -> None:
        """Record newly committed text (committed text only grows: ``asrlive.decoder``)."""
        if new_text:
            self._write({"text": new_text, "end_s": round(end_s, 3)})

    def close(self) -> None:
        if not self._file.closed:
            self._write({"closed": True})
            self._file.close()


@dataclass(frozen=True)
class PendingJournal:
    path: Path
    started: str
    source: str
    text: str


def read_journal(path: Path) -> tuple[dict, str, bool]:
    """(header, text, closed); a torn last line (the crash) is ignored."""
    header: dict = {}
    parts: list[str] = []
    closed = False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "started" in record:
            header = record
        elif "text" in record:
            parts.append(record["text"])
        elif record.get("closed"):
            closed = True
    return header, "".join(parts), closed


def _being_written(path: Path) -> bool:
    """Whether a running asrlive holds the journal (``TranscriptJournal``'s lock)."""
    try:
        with open(path, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # unreadable: read_journal says what it can
    return False


def pending_journals(folder: Path | None = None) -> list[PendingJournal]:
    """Journals of runs that did not stop cleanly and still hold text, oldest first; not those
    of runs still going on (in another asrlive)."""
    folder = folder or journal_dir()
    found = []
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        header, text, closed = read_journal(path)
        if not closed and text.strip() and not _being_written(path):
            found.append(PendingJournal(path, header.get("started", ""), header.get("source", ""), text.strip()))
    return found


def settle(journal: PendingJournal) -> None:
    """Mark a pending journal as dealt with (recovered or declined)."""
    with open(journal.path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"closed": True, "settled": True}) + "\n")
