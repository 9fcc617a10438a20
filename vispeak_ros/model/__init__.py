"""The ViSpeak model layer: torch + transformers, loaded from a published checkpoint (safetensors only)."""
