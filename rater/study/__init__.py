"""Therapists, patients, sessions; the catalogue import; audio files."""
