"""Loads a model on a worker QThread so the window never freezes while weights load."""

from __future__ import annotations

from PySide6.QtCore import QObject, QThread, Signal

from ..model import CTCModel, ModelLoadError, load_model


class _LoadJob(QObject):
    loaded = Signal(object)
    failed = Signal(str)

    def __init__(self, source: str | None, device: str):
        super().__init__()
        self.source = source
        self.device = device

    def run(self) -> None:
        try:
            self.loaded.emit(load_model(self.source, device=self.device))
        except ModelLoadError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # any other failure still reaches the user as a dialog
            self.failed.emit(f"{type(exc).__name__}: {exc}")


class ModelLoader(QObject):
    """Emits ``loaded(CTCModel)`` or ``failed(message)`` once per ``load`` call."""

    loaded = Signal(object)
    failed = Signal(str)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._job: _LoadJob | None = None

    @property
    def busy(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    def load(self, source: str | None, device: str) -> None:
        if self.busy:
            return
        thread = QThread(self)
        job = _LoadJob(source, device)
        job.moveToThread(thread)
        thread.started.connect(job.run)
        job.loaded.connect(self._on_loaded)
        job.failed.connect(self._on_failed)
        job.loaded.connect(thread.quit)
        job.failed.connect(thread.quit)
        self._thread, self._job = thread, job
        thread.start()

    def _on_loaded(self, model: CTCModel) -> None:
        self.loaded.emit(model)

    def _on_failed(self, message: str) -> None:
        self.failed.emit(message)

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
