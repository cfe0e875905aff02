"""Audio in: the shared sample ring and the sources that fill it (files, microphone)."""
