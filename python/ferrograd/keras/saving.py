"""Keras 3's `keras.saving`: `save_model`, `load_model` (see `ferrograd.keras.models`)."""

from __future__ import annotations

from .models import load_model, save_model

__all__ = ["load_model", "save_model"]
