"""Comic pages: input values, pure geometry, caption fitting and drawing (see layout.py)."""
