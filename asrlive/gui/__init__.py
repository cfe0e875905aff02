"""The PySide6 + pyqtgraph desktop app on top of the Qt-free streaming core."""
