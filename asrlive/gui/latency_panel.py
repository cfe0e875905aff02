"""Live latency and throughput figures of the running session."""

from __future__ import annotations

from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QWidget

from ..session import LatencyStats

ROWS = [
    ("capture", "Capture block", "audio delivered per callback"),
    ("queue", "Queue wait p50 / p95", "window audio complete → model call starts"),
    ("compute", "Compute p50 / p95", "one model call per window"),
    ("right", "Right-context wait p50", "hop audio complete → look-ahead audio complete"),
    ("s2t", "Speech → text p50 / p95", "hop audio complete → its text committed: the wait of the hop's last "
     "frame; the algorithmic latency under Chunking is the wait of its first, a hop longer"),
    ("rtf", "Real-time factor", "compute time / audio time (< 1 keeps up)"),
    ("reuse", "Reused front end / states", "share of each window's frames whose conv features / encoder "
     "states were computed by an earlier window instead of again"),
    ("backlog", "Backlog", "captured audio not yet committed"),
    ("skipped", "Skipped audio", "dropped to stay live when the model falls behind"),
    ("overflows", "Input overflows", "blocks the audio device lost"),
]


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


class LatencyPanel(QGroupBox):
    def __init__(self, parent: QWidget | None = None):
        super().__init__("Latency", parent)
        form = QFormLayout(self)
        self.values: dict[str, QLabel] = {}
        for key, title, tip in ROWS:
            label = QLabel("–")
            label.setToolTip(tip)
            name = QLabel(title)
            name.setToolTip(tip)
            form.addRow(name, label)
            self.values[key] = label

    def show_stats(self, s: LatencyStats) -> None:
        v = self.values
        v["capture"].setText(_ms(s.capture_block_ms))
        v["queue"].setText(f"{_ms(s.queue_wait_p50)} / {_ms(s.queue_wait_p95)}")
        v["compute"].setText(f"{_ms(s.compute_p50)} / {_ms(s.compute_p95)}")
        v["right"].setText(_ms(s.right_context_wait_p50))
        v["s2t"].setText(f"{_ms(s.speech_to_text_p50)} / {_ms(s.speech_to_text_p95)}")
        v["rtf"].setText("–" if s.real_time_factor is None else f"{s.real_time_factor:.2f}")
        v["reuse"].setText(f"{_percent(s.front_end_hit_rate)} / {_percent(s.state_hit_rate)}")
        v["backlog"].setText(_ms(s.backlog_ms))
        v["skipped"].setText(_ms(s.skipped_ms))
        v["skipped"].setStyleSheet("color:#c0392b" if s.skipped_ms > 0 else "")
        v["overflows"].setText(str(s.input_overflows))
        v["overflows"].setStyleSheet("color:#c0392b" if s.input_overflows else "")
