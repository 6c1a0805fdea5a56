"""Rendering: consistent self-attention, identity stores, the diffusers renderer, pages, clips."""
