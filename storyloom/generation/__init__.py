"""Rendering: consistent self-attention, identity stores, the diffusers renderer, pages, clips."""

import logging


class _PilProcessorNotice(logging.Filter):
    """transformers 5 warns, when diffusers' pipelines are imported, that its image
    processors fall back to their PIL versions without torchvision. That is the setup we
    ship (torchvision is not a dependency; the processors get PIL images), so a normal render
    would print a warning nobody can act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "requires torchvision (not installed)" not in record.getMessage()


# On the logger that emits it (a filter on a parent logger would not see the record);
# stdlib logging only: importing transformers here would slow every command.
logging.getLogger("transformers.utils.import_utils").addFilter(_PilProcessorNotice())
