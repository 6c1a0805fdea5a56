"""StoryRenderer: character sheets and story panels with one locked look per character."""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import torch
from PIL import Image

from storyloom.config import Settings
from storyloom.generation.accounting import store_bytes_per_step, unet_csa_layers
from storyloom.generation.consistent_attention import (
    CSARoutes,
    CSAState,
    consistent_attention,
    routed_attention,
    select_csa_layers,
)
from storyloom.generation.csa_schedule import schedule_for
from storyloom.generation.heap import give_back_freed_memory, map_large_blocks
from storyloom.generation.identity_pictures import IdentityPictures, PictureError
from storyloom.generation.identity_store import (
    STORE_DTYPES,
    IdentitySpec,
    IdentityStore,
    StoreWriter,
)
from storyloom.generation.image_adapter import AdapterSource, ImageAdapter, load_adapter
from storyloom.generation.models import LoadedModel, ModelLoadError, load_pipeline
from storyloom.generation.prompt_length import note_cut_prompts
from storyloom.generation.prompts import (
    default_identity_prompts,
    derive_seed,
    panel_prompt,
)
from storyloom.generation.recompute import identity_passes
from storyloom.generation.steps import SchedulerError, check_scheduler, steps_done
from storyloom.generation.store_files import StoreShelf, StoreSpool, StreamedStore
from storyloom.generation.styles import Style, get_style

Policy = Literal["store", "stream", "recompute"]


class RenderCancelled(Exception):
    """The render was cancelled between two denoising steps."""


class RenderInputError(ValueError):
    """The panels or characters given to the renderer cannot be rendered."""


@dataclass(frozen=True)
class RenderSettings:
    """The knobs of one renderer; the look of a character depends on all of them."""

    width: int = 768
    height: int = 768
    steps: int = 30
    guidance: float = 5.0
    scheduler: str = "default"
    rate: float = 0.5
    identity_images: int = 2
    store_dtype: str = "float8"
    bank_fraction: float = 1.0
    max_batch: int = 4
    csa_schedule: str = "reference"
    identity_mode: str = "csa"  # or "csa+reference": panels also see the first sheet image

    @classmethod
    def from_settings(cls, settings: Settings) -> RenderSettings:
        """The render part of the process settings."""
        return cls(
            width=settings.width,
            height=settings.height,
            steps=settings.steps,
            guidance=settings.guidance,
            scheduler=settings.scheduler,
            rate=settings.csa_rate,
            identity_images=settings.identity_images,
            store_dtype=settings.store_dtype,
            bank_fraction=settings.store_bank_fraction,
            max_batch=settings.max_batch,
            csa_schedule=settings.csa_schedule,
            identity_mode=settings.identity_mode,
        )


@dataclass(frozen=True)
class CharacterSpec:
    """A character as the story defines it; identity prompts default to K standard poses."""

    name: str
    description: str
    seed: int
    identity_prompts: tuple[str, ...] = ()
    reference: Path | None = None  # a picture the look is conditioned on (image adapter)


@dataclass(frozen=True)
class PanelSpec:
    """One panel: a stable index (for its seed), scene text with [Name] tags, a re-roll count."""

    index: int
    scene: str
    characters: tuple[str, ...] = ()
    variant: int = 0


@dataclass(frozen=True)
class Progress:
    """Where a render is: ``done`` of ``total`` denoising steps, and what is being denoised."""

    phase: str  # "lock <name>" or "panels"
    panels: tuple[int, ...]
    step: int
    steps: int
    done: int
    total: int
    # the batch's latents after this step (for a preview: generation/preview.py), or None
    latents: Any = field(default=None, compare=False, repr=False)


@dataclass
class CharacterSheet:
    """The identity panels of a character and the store its look is locked in."""

    images: list[Image.Image]
    store: IdentityStore
    seeds: list[int]


@dataclass
class RenderedPanel:
    index: int
    image: Image.Image
    seed: int
    characters: tuple[str, ...]


@dataclass
class StepTracker:
    """Counts denoising steps across the pipeline calls of one request; cancels between steps."""

    total: int
    on_progress: Callable[[Progress], None] | None
    should_cancel: Callable[[], bool] | None
    done: int = 0
    started: float = field(default_factory=time.perf_counter)

    def step_callback(
        self, phase: str, panels: tuple[int, ...], steps: int
    ) -> Callable[..., dict[str, Any]]:
        finished = 0  # steps of this call done; second-order schedulers call twice a step

        def callback(pipe: Any, call: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
            nonlocal finished
            now = steps_done(pipe.scheduler, call)
            if now > finished:
                finished = now
                self.done += 1
                if self.on_progress is not None:
                    latents = kwargs.get("latents")
                    self.on_progress(
                        Progress(phase, panels, now, steps, self.done, self.total, latents)
                    )
            if self.should_cancel is not None and self.should_cancel():
                raise RenderCancelled("render cancelled")
            return kwargs

        return callback


class StoryRenderer:
    """Renders character sheets and panels on one loaded pipeline, one call at a time."""

    def __init__(
        self,
        loaded: LoadedModel,
        settings: RenderSettings,
        store_dir: Path | None = None,
        identity_ram_bytes: int = 2 * 1024**3,
        store_disk_bytes: int | None = None,
        adapter_source: AdapterSource | None = None,
        adapter_cache: Path | None = None,
    ):
        self.loaded = loaded
        self.pipe: Any = cast(Any, loaded.pipeline)  # diffusers pipelines are untyped
        self.settings = settings
        self.store_dir = store_dir
        self.shelf = StoreShelf(store_dir, store_disk_bytes) if store_dir is not None else None
        if self.shelf is not None:  # the budget may have been lowered since the last start
            self.shelf.shrink(store_disk_bytes)
        self.layer_names = tuple(select_csa_layers(self.pipe.unet))
        self.last_policy: Policy | None = None  # how the last render's identities were served
        # refuse a scheduler whose UNet calls cannot be keyed by step before any work
        check_scheduler(self.pipe.scheduler, settings.steps)
        self._cache: OrderedDict[str, IdentityStore] = OrderedDict()
        self._cache_bytes = identity_ram_bytes
        self.oom_splits = 0  # batches halved after running out of accelerator memory
        # one pipeline serves one call at a time: processors are swapped per call
        self._lock = threading.RLock()
        # the image adapter is loaded on the first picture a render needs, not before
        self.adapter_source = adapter_source
        self._adapter_cache = adapter_cache or Path(".")
        self._adapter: ImageAdapter | None = None
        self.pictures = IdentityPictures(store_dir)
        # a renderer is its process's heavy allocator: make its peak memory what it uses
        map_large_blocks()

    @classmethod
    def from_settings(cls, settings: Settings) -> StoryRenderer:
        """Load the configured model once and wrap it (also sets the process's CPU threads)."""
        if settings.cpu_threads:
            torch.set_num_threads(settings.cpu_threads)
        device = settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype_name = settings.dtype
        if dtype_name == "auto":
            dtype_name = "float16" if device.startswith("cuda") else "float32"
        try:
            loaded = load_pipeline(
                settings.model,
                device=device,
                dtype=getattr(torch, dtype_name),
                cache_dir=settings.model_cache_dir,
                family=settings.model_family,
                config_dir=settings.model_config_dir,
                scheduler=settings.scheduler,
            )
        except ValueError as error:  # an unknown scheduler name: a setting to fix
            raise ModelLoadError(str(error)) from None
        sdxl = loaded.family == "sdxl"  # the adapter's weights are per family
        source = AdapterSource(
            settings.adapter_model,
            settings.adapter_subfolder_sdxl if sdxl else settings.adapter_subfolder_sd15,
            settings.adapter_weight_sdxl if sdxl else settings.adapter_weight_sd15,
            settings.adapter_image_encoder,
            settings.adapter_scale,
        )
        try:
            return cls(
                loaded,
                RenderSettings.from_settings(settings),
                settings.store_dir,
                identity_ram_bytes=settings.identity_ram_mib * 1024**2,
                store_disk_bytes=int(settings.store_disk_gib * 1024**3),
                adapter_source=source,
                adapter_cache=settings.model_cache_dir,
            )
        except SchedulerError as error:  # a scheduler CSA cannot key by step: a setting too
            raise ModelLoadError(str(error)) from None

    def with_identity_mode(self, mode: str) -> StoryRenderer:
        """This renderer (same pipeline, stores and lock) with another identity mode."""
        if mode == self.settings.identity_mode:
            return self
        sibling = copy.copy(self)
        sibling.settings = dataclasses.replace(self.settings, identity_mode=mode)
        return sibling

    @property
    def scheduler_name(self) -> str:
        return type(self.pipe.scheduler).__name__

    # -- identities -------------------------------------------------------------------
    def identity_spec(self, character: CharacterSpec, style: str) -> IdentitySpec:
        """The full spec that locks ``character``'s look under this renderer's settings."""
        s = self.settings
        prompts = character.identity_prompts or default_identity_prompts(
            character.description or character.name, s.identity_images
        )
        reference = self._reference(character)
        pictured = reference is not None or s.identity_mode != "csa"
        return IdentitySpec(
            name=character.name,
            description=character.description,
            style=style,
            seed=character.seed,
            identity_prompts=tuple(prompts),
            model=self.loaded.model_id,
            width=s.width,
            height=s.height,
            steps=s.steps,
            scheduler=self.scheduler_name,
            guidance=s.guidance,
            rate=s.rate,
            store_dtype=s.store_dtype,
            bank_fraction=s.bank_fraction,
            csa_schedule=s.csa_schedule,
            reference=reference[0] if reference is not None else "",
            identity_mode=s.identity_mode,
            adapter=self._adapter_name() if pictured else "",
        )

    def lock_character(
        self,
        character: CharacterSpec,
        style: str,
        *,
        on_progress: Callable[[Progress], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> CharacterSheet:
        """Denoise the K identity panels together, bank their tokens, save the store."""
        spec = self.identity_spec(character, style)
        tracker = StepTracker(spec.steps, on_progress, should_cancel)
        return self._write(spec, tracker)

    def store_for(
        self,
        character: CharacterSpec,
        style: str,
        tracker: StepTracker | None = None,
    ) -> IdentityStore:
        """The character's store: from memory, else from disk, else rebuilt from its spec."""
        spec = self.identity_spec(character, style)
        key = spec.key()
        store = self._cache.get(key)
        if store is not None:
            self._cache.move_to_end(key)
            return store
        if self.shelf is not None and self.shelf.has(key):
            self.shelf.touch(key)
            store = IdentityStore.load(self.shelf.path(key))
            self._remember(store)
            return store
        return self._write(spec, tracker or StepTracker(spec.steps, None, None)).store

    def streamed_store(
        self, character: CharacterSpec, style: str, tracker: StepTracker | None = None
    ) -> IdentityStore:
        """The character's store read step by step from disk (rebuilt there if evicted)."""
        spec = self.identity_spec(character, style)
        key = spec.key()
        if self.shelf is None:
            raise RuntimeError("streaming stores needs a store folder")
        if not self.shelf.has(key):
            written = self._write(spec, tracker or StepTracker(spec.steps, None, None), False)
            if isinstance(written.store, StreamedStore):  # spooled: already on disk
                return written.store
        if not self.shelf.has(key):  # larger than the whole disk budget
            raise RenderInputError(f"the store of {spec.name} does not fit the store disk budget")
        self.shelf.touch(key)
        return StreamedStore(self.shelf.path(key))

    def store_sizes(self, spec: IdentitySpec) -> tuple[int, int]:
        """(whole store, one step) in bytes, from the layer shapes: no store needed."""
        layers = unet_csa_layers(self.pipe.unet, self.layer_names, spec.width, spec.height)
        value = STORE_DTYPES[spec.store_dtype].itemsize
        copies = 2 if spec.guidance > 1 else 1
        step = store_bytes_per_step(layers, spec.images, spec.rate, copies, value)
        return step * spec.banked_steps, step

    def choose_policy(self, specs: Sequence[IdentitySpec]) -> Policy:
        """How a render's identities fit the RAM budget: whole stores, streamed step by step
        from disk, or recomputed beside the panels (nothing stored)."""
        sizes = [self.store_sizes(spec) for spec in specs]
        if sum(whole for whole, _ in sizes) <= self._cache_bytes:
            return "store"
        if sum(step for _, step in sizes) <= self._cache_bytes and self.shelf is not None:
            return "stream"
        return "recompute"

    def _write(self, spec: IdentitySpec, tracker: StepTracker, keep: bool = True) -> CharacterSheet:
        """The lock pass: bank the store in RAM, or, where it is larger than the RAM budget,
        spool it to disk step by step and read it back streamed."""
        callback = tracker.step_callback(f"lock {spec.name}", (), spec.steps)
        if self.shelf is not None and self.store_sizes(spec)[0] > self._cache_bytes:
            return self._write_spooled(spec, callback, self.shelf)
        writer = StoreWriter(spec, self.layer_names)
        state, inputs = self.write_inputs(spec, writer)
        images = self.pipeline_call(state, callback, **inputs)
        seeds = [g.initial_seed() for g in inputs["generator"]]
        store = writer.finish()
        if spec.identity_mode == "csa+reference":
            self.pictures.keep_sheet(spec.key(), images[0])
        if self.shelf is not None:
            self.shelf.put(store)
        if keep:
            self._remember(store)
        return CharacterSheet(images, store, seeds)

    def _write_spooled(
        self, spec: IdentitySpec, callback: Callable[..., dict[str, Any]], shelf: StoreShelf
    ) -> CharacterSheet:
        spool = StoreSpool(shelf.directory, spec, self.layer_names)
        writer = StoreWriter(spec, self.layer_names, relay=spool.add)
        state, inputs = self.write_inputs(spec, writer)
        try:
            images = self.pipeline_call(state, callback, **inputs)
            if len(writer.timesteps) != spec.steps:
                raise RuntimeError(f"the write pass ran {len(writer.timesteps)} steps")
        except BaseException:
            spool.discard()
            raise
        path = spool.finish(writer.timesteps)
        if spec.identity_mode == "csa+reference":
            self.pictures.keep_sheet(spec.key(), images[0])
        store = StreamedStore(path)  # its open file stays readable if the shelf drops it
        if shelf.budget_bytes is not None and store.nbytes > shelf.budget_bytes:
            path.unlink()  # larger than the whole disk budget: used once, rebuilt next time
        shelf.shrink(shelf.budget_bytes, keep=path)
        seeds = [g.initial_seed() for g in inputs["generator"]]
        return CharacterSheet(images, store, seeds)

    def write_inputs(
        self, spec: IdentitySpec, writer: StoreWriter
    ) -> tuple[CSAState, dict[str, Any]]:
        """The CSA state and pipeline inputs of a character's lock pass (its K images)."""
        style = get_style(spec.style)
        seeds = [derive_seed(spec.seed, "identity", j) for j in range(spec.images)]
        state = CSAState(
            mode="write",
            layer_names=self.layer_names,
            panels=spec.images,
            rate=spec.rate,
            generator=torch.Generator().manual_seed(derive_seed(spec.seed, "csa")),
            writer=writer,
            schedule=schedule_for(spec.csa_schedule, [derive_seed(spec.seed, "schedule")]),
        )
        prompts = [style.apply(p) for p in spec.identity_prompts]
        note_cut_prompts(
            self.pipe, [(f"{spec.name}'s identity image {j + 1}", p) for j, p in enumerate(prompts)]
        )
        inputs = {
            "prompt": prompts,
            "negative_prompt": [style.negative] * len(prompts),
            "generator": [torch.Generator().manual_seed(seed) for seed in seeds],
        }
        if spec.reference:  # the K identity images are all conditioned on the reference
            picture = self.pictures.named(spec.reference)
            inputs.update(self._picture_inputs([[picture]] * len(prompts)))
        return state, inputs

    def _remember(self, store: IdentityStore) -> None:
        """Keep a store in RAM, least recently used dropped past the identity RAM budget."""
        if store.nbytes > self._cache_bytes:
            return  # held only while the render that needs it runs
        self._cache[store.key] = store
        self._cache.move_to_end(store.key)
        while sum(s.nbytes for s in self._cache.values()) > self._cache_bytes:
            self._cache.popitem(last=False)

    # -- panels -----------------------------------------------------------------------
    def render_panels(
        self,
        panels: Sequence[PanelSpec],
        characters: Mapping[str, CharacterSpec],
        *,
        style: str,
        seed: int,
        stores: Mapping[str, IdentityStore] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        should_cancel: Callable[[], bool] | None = None,
    ) -> list[RenderedPanel]:
        """Render panels in batches of ``max_batch``, each against its characters' stores."""
        # 1. check the request before any GPU work
        if not panels:
            raise RenderInputError("nothing to render: no panels")
        look = get_style(style)
        for panel in panels:
            for name in panel.characters:
                if name not in characters:
                    cast = ", ".join(sorted(characters)) or "nobody yet"
                    raise RenderInputError(
                        f"panel {panel.index} shows unknown {name!r}; cast: {cast}"
                    )
        shown = sorted({name for panel in panels for name in panel.characters})
        s = self.settings
        batches = [panels[i : i + s.max_batch] for i in range(0, len(panels), s.max_batch)]
        given = set(stores or {})
        specs = [self.identity_spec(characters[n], style) for n in shown if n not in given]
        # write passes beside a read pass share the UNet; an adapter installed for one would
        # reach the others, so characters with pictures always use stores
        pictured = any(spec.adapter for spec in specs)
        recompute = not given and not pictured and self.choose_policy(specs) == "recompute"
        missing = (
            0
            if recompute
            else self.missing_stores([n for n in shown if n not in given], characters, style)
        )
        tracker = StepTracker(s.steps * (len(batches) + missing), on_progress, should_cancel)

        # 2. one store per shown character, checked against this render's settings (or,
        # past the RAM budget, each batch recomputes its characters' tokens: no store)
        with self._lock:
            resolved: dict[str, IdentityStore] | None = None
            if recompute:
                self.last_policy = "recompute"
            else:
                resolved = self.resolve_stores(shown, characters, style, stores, tracker)

            # 3. denoise each batch with read-mode CSA
            rendered: list[RenderedPanel] = []
            pending = list(batches)
            while pending:
                batch = pending.pop(0)
                try:
                    rendered += self._render_batch(batch, characters, look, seed, resolved, tracker)
                except torch.OutOfMemoryError:
                    if len(batch) == 1:
                        raise
                    # where memory does not allow the whole batch, halve it and go on
                    torch.cuda.empty_cache()
                    half = len(batch) // 2
                    pending[:0] = [batch[:half], batch[half:]]
                    tracker.total += s.steps
                    self.oom_splits += 1
        return rendered

    def _render_batch(
        self,
        batch: Sequence[PanelSpec],
        characters: Mapping[str, CharacterSpec],
        look: Style,
        seed: int,
        resolved: Mapping[str, IdentityStore] | None,
        tracker: StepTracker,
    ) -> list[RenderedPanel]:
        """One read pass; with no ``resolved`` stores, the batch's characters' write passes
        run beside it (the recompute policy)."""
        seeds = [derive_seed(seed, "panel", p.index, p.variant) for p in batch]
        prompts = [
            look.apply(panel_prompt(p.scene, {n: characters[n] for n in p.characters}))
            for p in batch
        ]
        note_cut_prompts(
            self.pipe,
            [(f"panel {p.index}", prompt) for p, prompt in zip(batch, prompts, strict=True)]
            + [(f"the {look.name} style's negative prompt", look.negative)],
        )
        if resolved is not None:
            images = self._read_batch(batch, characters, look, prompts, seeds, resolved, tracker)
        else:
            callback = tracker.step_callback(
                "panels", tuple(p.index for p in batch), self.settings.steps
            )
            shown = sorted({n for p in batch for n in p.characters})
            specs = [self.identity_spec(characters[n], look.name) for n in shown]
            routes = CSARoutes()
            passes = identity_passes(
                self.pipe,
                routes,
                specs,
                self.layer_names,
                self._thread_inputs,
                spool_dir=None if self.shelf is None else self.shelf.directory,
            )
            with routed_attention(self.pipe.unet, routes, self.layer_names), passes as relayed:
                state = self.read_state(
                    dict(zip(shown, relayed, strict=True)), [p.characters for p in batch], seeds
                )
                state.routes = routes  # the processors are already installed
                images = self._call(prompts, look, seeds, state, callback)
        return [
            RenderedPanel(p.index, image, seed_, p.characters)
            for p, image, seed_ in zip(batch, images, seeds, strict=True)
        ]

    def _read_batch(
        self,
        batch: Sequence[PanelSpec],
        characters: Mapping[str, CharacterSpec],
        look: Style,
        prompts: list[str],
        seeds: list[int],
        resolved: Mapping[str, IdentityStore],
        tracker: StepTracker,
    ) -> list[Image.Image]:
        """One read pass per number of pictures the panels are conditioned on (an adapter's
        batch needs the same number in every row); panels without pictures run as before."""
        pictures = [
            self.panel_pictures(p.characters, characters, look.name, tracker) for p in batch
        ]
        groups: dict[int, list[int]] = {}
        for row, shown in enumerate(pictures):
            groups.setdefault(len(shown), []).append(row)
        tracker.total += self.settings.steps * (len(groups) - 1)
        images: list[Image.Image | None] = [None] * len(batch)
        for rows in groups.values():
            callback = tracker.step_callback(
                "panels", tuple(batch[i].index for i in rows), self.settings.steps
            )
            state = self.read_state(
                resolved, [batch[i].characters for i in rows], [seeds[i] for i in rows]
            )
            drawn = self._call(
                [prompts[i] for i in rows],
                look,
                [seeds[i] for i in rows],
                state,
                callback,
                self._picture_inputs([pictures[i] for i in rows]),
            )
            for row, image in zip(rows, drawn, strict=True):
                images[row] = image
        return [image for image in images if image is not None]

    # -- pictures (image adapter) -----------------------------------------------------
    def adapter(self) -> ImageAdapter:
        """The image adapter, loaded into the pipeline on first use."""
        with self._lock:
            if self._adapter is None:
                self._adapter_name()  # refuse before loading when none is configured
                assert self.adapter_source is not None
                self._adapter = load_adapter(
                    self.pipe, self.loaded.family, self.adapter_source, self._adapter_cache
                )
            return self._adapter

    def _adapter_name(self) -> str:
        if self.adapter_source is None:
            raise RenderInputError(
                "characters from a reference picture need an image adapter; "
                "set STORYLOOM_ADAPTER_MODEL"
            )
        return self.adapter_source.name

    def _reference(self, character: CharacterSpec) -> tuple[str, Image.Image] | None:
        if character.reference is None:
            return None
        try:
            return self.pictures.reference(character.name, character.reference)
        except PictureError as error:
            raise RenderInputError(str(error)) from None

    def panel_pictures(
        self,
        names: Sequence[str],
        characters: Mapping[str, CharacterSpec],
        style: str,
        tracker: StepTracker,
    ) -> list[Image.Image]:
        """The pictures a panel showing ``names`` is conditioned on: in csa+reference mode
        each character's first sheet image, else its reference picture where it has one."""
        pictures = []
        for name in names:
            spec = self.identity_spec(characters[name], style)
            if spec.identity_mode == "csa+reference":
                pictures.append(self._sheet_picture(spec, tracker))
            elif spec.reference:
                pictures.append(self.pictures.named(spec.reference))
        return pictures

    def _sheet_picture(self, spec: IdentitySpec, tracker: StepTracker) -> Image.Image:
        picture = self.pictures.sheet(spec.key())
        if picture is None:  # the store came without its sheet: draw it again (deterministic)
            tracker.total += spec.steps
            self._write(spec, tracker)
            picture = self.pictures.sheet(spec.key())
        if picture is None:
            raise RuntimeError(f"the sheet of {spec.name} was not kept")
        return picture

    def _picture_inputs(self, pictures: Sequence[Sequence[Image.Image]]) -> dict[str, Any]:
        """Pipeline inputs conditioning each image on its pictures (none: no inputs)."""
        if not pictures or not pictures[0]:
            return {}
        return {"image_embeds": self.adapter().image_embeds(pictures, self.settings.guidance > 1)}

    def _thread_inputs(
        self, spec: IdentitySpec, writer: StoreWriter
    ) -> tuple[CSAState, dict[str, Any]]:
        """A lock pass's state and complete pipeline inputs, for a write pass in a thread."""
        state, inputs = self.write_inputs(spec, writer)
        return state, {**inputs, **self.run_args()}

    def resolve_stores(
        self,
        names: Sequence[str],
        characters: Mapping[str, CharacterSpec],
        style: str,
        stores: Mapping[str, IdentityStore] | None,
        tracker: StepTracker,
    ) -> dict[str, IdentityStore]:
        """The store of each named character (given, cached, loaded, streamed or rebuilt, as
        the RAM budget allows), checked against this render's settings."""
        s = self.settings
        given = stores or {}
        specs = [self.identity_spec(characters[n], style) for n in names if n not in given]
        policy = self.choose_policy(specs)
        if policy == "recompute":  # a caller that needs whole stores: stream them if it can
            policy = "stream" if self.shelf is not None else "store"
        self.last_policy = policy
        resolved: dict[str, IdentityStore] = {}
        for name in names:
            if name in given:
                store = given[name]
            elif policy == "store":
                store = self.store_for(characters[name], style, tracker)
            else:
                store = self.streamed_store(characters[name], style, tracker)
            store.check_compatible(
                model=self.loaded.model_id,
                steps=s.steps,
                width=s.width,
                height=s.height,
                scheduler=self.scheduler_name,
                csa_schedule=s.csa_schedule,
            )
            resolved[name] = store
        return resolved

    def read_state(
        self,
        resolved: Mapping[str, IdentityStore],
        shown: Sequence[tuple[str, ...]],
        seeds: Sequence[int],
    ) -> CSAState:
        """Read-mode CSA state for a batch whose panel i shows the characters ``shown[i]`` and
        is rendered from ``seeds[i]`` (its schedule's draws derive from it)."""
        order = list(resolved)
        return CSAState(
            mode="read",
            layer_names=self.layer_names,
            panels=len(shown),
            stores=[resolved[n] for n in order],
            panel_stores=[tuple(order.index(n) for n in names) for names in shown],
            schedule=schedule_for(
                self.settings.csa_schedule, [derive_seed(seed, "schedule") for seed in seeds]
            ),
        )

    def missing_stores(
        self, names: Sequence[str], characters: Mapping[str, CharacterSpec], style: str
    ) -> int:
        """How many of the named characters need a lock pass before rendering."""
        return sum(not self._has_store(characters[n], style) for n in names)

    def _has_store(self, character: CharacterSpec, style: str) -> bool:
        key = self.identity_spec(character, style).key()
        return key in self._cache or (self.shelf is not None and self.shelf.has(key))

    def _call(
        self,
        prompts: list[str],
        style: Style,
        seeds: list[int],
        state: CSAState | None,
        callback: Callable[..., dict[str, Any]],
        extra: Mapping[str, Any] | None = None,
    ) -> list[Image.Image]:
        """One pipeline call from prompt texts, one seed per image."""
        return self.pipeline_call(
            state,
            callback,
            prompt=prompts,
            negative_prompt=[style.negative] * len(prompts),
            # CPU generators: the same seed gives the same panel on any device
            generator=[torch.Generator().manual_seed(seed) for seed in seeds],
            **(extra or {}),
        )

    def run_args(self) -> dict[str, Any]:
        """The pipeline arguments every call of this renderer shares."""
        s = self.settings
        return {
            "num_inference_steps": s.steps,
            "guidance_scale": s.guidance,
            "width": s.width,
            "height": s.height,
        }

    def pipeline_call(
        self,
        state: CSAState | None,
        callback: Callable[..., dict[str, Any]],
        image_embeds: torch.Tensor | None = None,
        **inputs: Any,
    ) -> list[Image.Image]:
        """Run the pipeline with this renderer's settings, CSA installed for this call only
        (or, where ``state.routes`` is set, already installed, shared with the write passes);
        with ``image_embeds``, the image adapter too."""
        csa: AbstractContextManager[Any] = nullcontext()
        if state is not None and state.routes is not None:
            state.routes.bind(state, self.pipe.scheduler)
        elif state is not None:
            csa = consistent_attention(self.pipe.unet, state, self.pipe.scheduler)
        # the adapter's cross-attention goes in first; CSA then swaps only self-attention
        # and puts back exactly what it found, adapter included
        pictures: AbstractContextManager[Any] = nullcontext()
        if image_embeds is not None:
            pictures = self.adapter().installed(image_embeds)
        callback = _at_last_step(callback, state)
        with self._lock, pictures, csa, torch.inference_mode():
            try:
                result = self.pipe(
                    **self.run_args(), callback_on_step_end=callback, output_type="pil", **inputs
                )
            finally:  # what the call freed stays resident otherwise (see heap)
                give_back_freed_memory()
        return list(result.images)


def _at_last_step(
    callback: Callable[..., dict[str, Any]], state: CSAState | None
) -> Callable[..., dict[str, Any]]:
    """``callback``, and after the last step the CSA state lets go of its identity data and
    the heap gives its free pages back: the VAE decode that follows is a page's peak memory,
    needs none of it, and starts from the same heap whatever the denoising loop freed."""

    def wrapped(pipe: Any, call: int, timestep: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        result = callback(pipe, call, timestep, kwargs)
        if call + 1 >= pipe.num_timesteps:
            if state is not None:
                state.end_pass()
            give_back_freed_memory()
        return result

    return wrapped
