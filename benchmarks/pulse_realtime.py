"""Real-time capture through PulseAudio: a private server with a null sink, speech played into it
by paplay at real time, asrlive capturing its monitor through ALSA/PortAudio/sounddevice.

    python benchmarks/pulse_realtime.py [--minutes 10] [--model M]

Prints input overflows, skipped audio, per-window latencies and, for every utterance, the time from
the end of its speech to the commit of the window holding its last frame (measured from when the
samples reached the ring, and from paplay's wall clock).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from asrlive.session import LiveSession
from benchmarks.common import model_with_default_plan, pct, rss_mib, run_arguments, speech_file
from tests.pulse import PulseServer


def main() -> None:
    args = run_arguments(default_minutes=10.0)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        server = PulseServer(tmp)
        server.start()
        try:
            os.environ.update({k: server.env[k] for k in ("PULSE_RUNTIME_PATH", "PULSE_SERVER")})
            from asrlive.audio.devices import rescan_devices

            rescan_devices()  # PortAudio must see the server started after it was loaded
            wav = tmp / "speech.wav"
            ends = speech_file(wav, args.minutes * 60, seed=7, pause_s=1.5)
            model, plan = model_with_default_plan(args)
            session = LiveSession(model, plan)
            session.start_mic(None)
            time.sleep(1.0)  # let the stream settle before playback: not a synchronisation
            rss0 = rss_mib()
            play_sample = session.ring.written
            play_wall = time.monotonic()
            g = model.geometry
            pending = [play_sample + int(e * g.sample_rate) for e in ends]
            from_ring: list[float] = []

            def on_window(status) -> None:
                # Measured as windows commit, while the ring still knows when those samples arrived.
                now = time.monotonic()
                while pending and g.frames(pending[0]) <= status.committed_frames:
                    from_ring.append(now - session.ring.time_of(pending.pop(0)))

            session.worker.add_listener(on_window)
            server.play(wav)
            time.sleep(3.0)  # the last utterance's window needs hop + right context of audio after it
            session.stop()
            session.wait()
            rss1 = rss_mib()
        finally:
            server.stop()
    timings = session.worker.store.timings
    from_wall = []
    for end_s in ends:
        frame = g.frames(play_sample + int(end_s * g.sample_rate))
        window = next((t for t in timings if t.commit_to >= frame), None)
        if window is not None:
            from_wall.append(window.finished - (play_wall + end_s))
    stats = session.latency()
    print(f"model: {model.name}  plan: hop {plan.hop_ms:.0f} ms, left {plan.left_ms:.0f} ms, right {plan.right_ms:.0f} ms "
          f"(algorithmic latency {plan.latency_ms:.0f} ms)")
    print(f"captured {session.ring.written / g.sample_rate / 60:.2f} min through PulseAudio; device '{session.label}'")
    print(f"input overflows: {session.ring.input_overflows}; skipped audio: {session.worker.skipped_samples} samples; "
          f"error: {session.error}")
    print(f"per window: compute p50 {stats.compute_p50:.0f} ms, p95 {stats.compute_p95:.0f} ms; "
          f"speech-to-text p50 {stats.speech_to_text_p50:.0f} ms, p95 {stats.speech_to_text_p95:.0f} ms; RTF {stats.real_time_factor:.3f}")
    print(f"utterance end -> committed ({len(from_ring)} utterances): from ring arrival p50 {pct(from_ring, 50) * 1000:.0f} ms, "
          f"p95 {pct(from_ring, 95) * 1000:.0f} ms; from playback clock p50 {pct(from_wall, 50) * 1000:.0f} ms, "
          f"p95 {pct(from_wall, 95) * 1000:.0f} ms")
    print(f"RSS {rss0:.0f} -> {rss1:.0f} MiB")


if __name__ == "__main__":
    main()
