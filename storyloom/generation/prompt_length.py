"""Prompts longer than the text encoder reads: one log line of ours that names the panel.

CLIP text encoders read 77 tokens and the pipelines cut the rest. diffusers then warns once
per encoder and prompt with the cut-off words, and transformers adds a notice of its own;
neither names the panel or character, and both reach standard error even where logging
was never set up (a normal render must print nothing there). Those two notices are
dropped on the loggers that emit them; the renderer logs one INFO line per pipeline call
instead, naming each panel or identity image whose prompt is cut.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

_LIBRARY_NOTICES = (
    "The following part of your input was truncated because CLIP",  # diffusers
    "Token indices sequence length is longer than the specified maximum",  # transformers
)
_EMITTERS = (
    "diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion",
    "diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl",
    "transformers.tokenization_utils_base",
)


class _CutPromptNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(_LIBRARY_NOTICES)


# on the loggers that emit them: a filter on a parent logger would not see the records
for _name in _EMITTERS:
    logging.getLogger(_name).addFilter(_CutPromptNotice())


def note_cut_prompts(pipe: Any, labelled: Sequence[tuple[str, str]]) -> list[str]:
    """Log one line naming each (label, prompt) whose prompt the text encoder cuts; return
    those labels."""
    tokenizer = getattr(pipe, "tokenizer", None) or getattr(pipe, "tokenizer_2", None)
    if tokenizer is None:
        return []
    limit = int(tokenizer.model_max_length)
    cut = []
    for label, prompt in labelled:
        length = len(tokenizer(prompt, truncation=False).input_ids)
        if length > limit:
            cut.append((label, length))
    if cut:
        log.info(
            "prompt too long for the text encoder (%d tokens), its end is left out: %s",
            limit,
            "; ".join(f"{label} ({length} tokens)" for label, length in cut),
        )
    return [label for label, _ in cut]
