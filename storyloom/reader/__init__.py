"""The reader: a finished comic as one read-only HTML page, served behind share links by
the operations server and written into the ZIP export as `story.html`."""
