"""A small preview of a render in progress, from its latents, without the VAE.

Decoding with the VAE costs about as much as a denoising step; a chat status message only
needs a thumbnail. SD1.5 and SDXL latents have 4 channels at 1/8 of the image size, and a
fixed linear map of those 4 channels to RGB gives a recognisable picture (colours and
composition, blurred). Upscaled with nearest pixels so it reads as a preview.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# rows: latent channels 0..3; columns: their share of R, G, B (approximate factors of the
# SD-family VAEs, which all keep the 4-channel layout; the tiny test models' random VAEs
# do not, so their previews are colour noise, but of the right shape)
LATENT_RGB = np.array(
    [
        [0.30, 0.19, 0.21],
        [0.19, 0.29, 0.17],
        [-0.16, 0.19, 0.26],
        [-0.18, -0.27, -0.47],
    ],
    dtype=np.float32,
)
PREVIEW_PX = 256  # the longer side of a preview image


def latent_preview(latents: object, longest: int = PREVIEW_PX) -> bytes:
    """The first image of a batch of 4-channel latents (`[batch, 4, h, w]`, a torch tensor
    or a numpy array) as a small JPEG."""
    array = np.asarray(_to_numpy(latents), dtype=np.float32)
    if array.ndim != 4 or array.shape[1] != LATENT_RGB.shape[0]:
        raise ValueError(f"expected latents of shape [batch, 4, h, w], got {array.shape}")
    rgb = np.einsum("chw,cr->hwr", array[0], LATENT_RGB)
    pixels = np.clip((rgb + 1.0) * 127.5, 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)  # uint8 (h, w, 3): RGB
    scale = max(1, longest // max(image.size))
    image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def _to_numpy(latents: object) -> object:
    """A torch tensor's values on the CPU as numpy (imported lazily: callers pass either)."""
    detach = getattr(latents, "detach", None)
    if detach is None:
        return latents
    return detach().float().cpu().numpy()
