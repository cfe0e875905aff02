"""Runs one callable on a worker QThread and reports back on the GUI thread by signal, so slow
work (loading weights, taking gradients) never freezes the window."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QThread, Signal


class _Call(QObject):
    done = Signal(object)
    failed = Signal(str)

    def __init__(self, fn: Callable[[], object], expected: tuple[type[BaseException], ...]):
        super().__init__()
        self.fn = fn
        self.expected = expected

    def run(self) -> None:
        try:
            self.done.emit(self.fn())
        except self.expected as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # anything else still reaches the user, with its type
            self.failed.emit(f"{type(exc).__name__}: {exc}")
        finally:
            # Quit from this thread: a queued quit would deadlock a GUI thread blocked in wait().
            self.thread().quit()


class BackgroundJob(QObject):
    """One job at a time; ``done(result)`` or ``failed(message)`` after each ``start``."""

    done = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None, expected: tuple[type[BaseException], ...] = ()):
        super().__init__(parent)
        self.expected = expected
        self._thread: QThread | None = None
        self._call: _Call | None = None
        self._pending = False
        self.done.connect(self._finished)
        self.failed.connect(self._finished)

    def _finished(self, _result) -> None:
        self._pending = False

    @property
    def busy(self) -> bool:
        """A call started and has not reported back yet."""
        return self._pending

    def start(self, fn: Callable[[], object]) -> bool:
        if self._pending:
            return False
        if self._thread is not None:
            self._thread.wait()  # the last call delivered its result; its thread is only quitting
        self._pending = True
        thread = QThread(self)
        call = _Call(fn, self.expected)
        call.moveToThread(thread)
        thread.started.connect(call.run)
        call.done.connect(self.done)
        call.failed.connect(self.failed)
        self._thread, self._call = thread, call
        thread.start()
        return True

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.wait()
