"""Coding while listening: behaviour codes as events on the audio timeline."""
