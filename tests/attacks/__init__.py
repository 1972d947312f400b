"""Hostile model files for safeload's attack tests (see ``corpus``); never unpickle them here."""
