"""The progress preview: a fixed linear map of 4-channel latents to RGB, upscaled, as JPEG."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from storyloom.generation.preview import LATENT_RGB, PREVIEW_PX, latent_preview


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG"
    return image.convert("RGB")


def test_a_preview_is_a_small_upscaled_jpeg_of_the_first_image_of_the_batch() -> None:
    latents = torch.zeros(2, 4, 16, 8)  # SD-shaped: 1/8 of a 128 x 64 image
    latents[1] = 3.0  # the second image of the batch is not shown
    image = decoded(latent_preview(latents))
    assert image.size == (PREVIEW_PX // 16 * 8, PREVIEW_PX // 16 * 16)
    assert np.asarray(image).std() < 2  # all-zero latents: one flat grey


def test_each_channel_moves_the_colour_as_the_projection_says() -> None:
    for channel in range(4):
        latents = np.zeros((1, 4, 8, 8), dtype=np.float32)
        latents[0, channel] = 1.0
        colour = np.asarray(decoded(latent_preview(latents))).reshape(-1, 3).mean(axis=0)
        expected = np.clip((LATENT_RGB[channel] + 1.0) * 127.5, 0, 255)
        assert colour == pytest.approx(expected, abs=4), channel


def test_a_left_right_split_stays_left_and_right() -> None:
    latents = np.zeros((1, 4, 8, 8), dtype=np.float32)
    latents[0, 3, :, :4] = 2.0  # channel 3 darkens, on the left half only
    pixels = np.asarray(decoded(latent_preview(latents))).astype(float)
    half = pixels.shape[1] // 2
    assert pixels[:, :half].mean() < pixels[:, half:].mean() - 40


def test_latents_of_another_shape_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[batch, 4, h, w\]"):
        latent_preview(np.zeros((1, 16, 8, 8)))  # a 16-channel latent space (e.g. SD3)
