"""The model contract: the one definition of what an exported lcgan ONNX model carries and promises.

Training writes it (``ModelContract.to_metadata``), the engine reads and validates it
(``ModelContract.from_metadata`` then ``check_graph``). Nothing else defines these keys.

Graph promises (checked by ``check_graph``):

* one input named ``input`` and one output named ``output``, both float32 ``[N, C, H, W]`` with dynamic N, H, W;
  H and W must be multiples of ``size_multiple_px``;
* ``landcover_to_rgb``: input C = number of classes (one-hot, channel i = ``scheme.classes[i]``), then the
  ``terrain`` channels when the model reads elevation (``terrain.channels`` in that order, derived from a DEM by
  :mod:`lcgan_qgis.core.terrain.channels`), then ``noise_channels`` channels of standard normal noise (the texture
  source;
  the engine draws it from the global pixel position, :mod:`lcgan_qgis.core.run.noise`, so every tiling feeds the same
  noise), output C = ``image_bands`` with values in [-1, 1] (Tanh);
* ``rgb_to_landcover``: input C = ``image_bands`` normalised to [-1, 1] by ``radiometry``, output C = number of
  classes holding **probabilities** (softmax is part of the exported graph; training works on logits).

Metadata: the whole contract as JSON under the key ``lcgan`` plus, for the land-cover model, the keys the Deepness
plugin reads (``model_type``, ``class_names``, ``resolution`` in cm/px, ``tile_size`` (its code's name) and
``tiles_size`` (its documentation's), ``tiles_overlap`` in %, ``standardization_mean``/``std`` after its /255
scaling). Deepness also needs fixed input and output heights and widths, which lcgan's tiling must not have:
``tools/deepness_export.py`` (``make deepness``) writes that fixed-shape copy.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..direction import Direction
from ..errors import ContractError, ModelFileError, SchemeError
from .radiometry import RADIOMETRY_MODES, STRETCH_PERCENTILES, Radiometry, to_uint8
from .scheme import ClassScheme
from .terrain_inputs import TerrainInputs

CONTRACT_VERSION = 1
METADATA_KEY = "lcgan"
INPUT_NAME = "input"
OUTPUT_NAME = "output"
MAX_METADATA_CHARS = 1_000_000  # characters of the metadata JSON (lcgan writes about 5 kB)
MAX_METADATA_DEPTH = 32  # nesting of the metadata JSON (lcgan writes 4 levels; deeper is refused, not recursed)
LIMITS = {  # largest value each integer key may take (beyond: a broken or hostile file, refused by name)
    "tile_size_px": 16384, "overlap_px": 8191, "image_bands": 64, "size_multiple_px": 1024, "noise_channels": 256,
    "noise_seed": 2**63 - 1,
}
#: The radiometry names live in :mod:`.radiometry`; they are named here too, for the callers of the contract.
__all__ = ["CONTRACT_VERSION", "INPUT_NAME", "METADATA_KEY", "OUTPUT_NAME", "RADIOMETRY_MODES", "STRETCH_PERCENTILES",
           "Direction", "ModelContract", "Radiometry", "json_depth", "to_uint8"]
OUTPUT_TOLERANCE = 1e-3  # rounding allowed beyond the output range (int8 models, fused kernels)


def json_depth(value: Any) -> int:
    """Nesting depth of parsed JSON (a scalar is 0), computed without recursion; stops counting beyond
    ``MAX_METADATA_DEPTH + 1``."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_METADATA_DEPTH:  # (deeper is refused anyway: stop descending)
            children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
            stack.extend((child, depth + 1) for child in children)
    return deepest


@dataclass(frozen=True)
class ModelContract:
    """Everything inference needs to know about an exported model. See the module docstring."""

    direction: Direction
    scheme: ClassScheme
    radiometry: Radiometry
    tile_size_px: int = 256
    overlap_px: int = 32
    gsd_m: float = 30.0
    model_version: str = "0"
    config_digest: str = ""
    image_bands: int = 3
    band_names: tuple[str, ...] = ("red", "green", "blue")
    size_multiple_px: int = 4
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)
    contract_version: int = CONTRACT_VERSION
    noise_channels: int = 0
    noise_seed: int = 0
    terrain: TerrainInputs | None = None  # elevation-derived input channels (None: a map-only model)

    def __post_init__(self) -> None:
        def positive_int(name: str, value: Any, minimum: int = 1) -> None:
            maximum = LIMITS[name]
            if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
                raise ContractError(f"{name} must be an integer >= {minimum}, got {value!r} (at most {maximum}).")

        if not isinstance(self.direction, Direction):
            raise ContractError(f"direction must be a Direction, got {self.direction!r}.")
        positive_int("image_bands", self.image_bands)
        positive_int("size_multiple_px", self.size_multiple_px)
        positive_int("tile_size_px", self.tile_size_px, self.size_multiple_px)
        positive_int("overlap_px", self.overlap_px, 0)
        positive_int("noise_channels", self.noise_channels, 0)
        positive_int("noise_seed", self.noise_seed, 0)
        if self.noise_channels and self.direction is not Direction.LANDCOVER_TO_RGB:
            raise ContractError(f"noise_channels is {self.noise_channels}, but only land cover -> RGB models take "
                                "noise input.")
        if self.terrain is not None and not isinstance(self.terrain, TerrainInputs):
            raise ContractError(f"terrain must be TerrainInputs or None, got {self.terrain!r}.")
        if self.terrain is not None and self.direction is not Direction.LANDCOVER_TO_RGB:
            raise ContractError("terrain inputs are set, but only land cover -> RGB models read elevation.")
        if self.tile_size_px % self.size_multiple_px:
            raise ContractError(
                f"tile_size_px {self.tile_size_px} is not a multiple of size_multiple_px {self.size_multiple_px}."
            )
        if 2 * self.overlap_px >= self.tile_size_px:
            raise ContractError(
                f"overlap_px {self.overlap_px} must be less than half of tile_size_px {self.tile_size_px}."
            )
        if isinstance(self.gsd_m, bool) or not isinstance(self.gsd_m, (int, float)) or not (
            np.isfinite(self.gsd_m) and self.gsd_m > 0
        ):
            raise ContractError(f"gsd_m must be a positive number of metres, got {self.gsd_m!r}.")
        if len(self.radiometry.low) != self.image_bands:
            raise ContractError(
                f"radiometry has {len(self.radiometry.low)} band(s) but image_bands is {self.image_bands}."
            )
        if not all(isinstance(n, str) and n for n in self.band_names):
            raise ContractError(f"band_names must be non-empty strings, got {list(self.band_names)!r}.")
        if len(self.band_names) != self.image_bands:
            raise ContractError(f"band_names has {len(self.band_names)} names but image_bands is {self.image_bands}.")
        if self.contract_version != CONTRACT_VERSION:
            raise ContractError(
                f"contract version {self.contract_version} is not supported by this lcgan (it reads version "
                f"{CONTRACT_VERSION}); update the plugin or re-export the model."
            )

    # -- derived --------------------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.scheme)

    @property
    def in_channels(self) -> int:
        if self.direction is Direction.LANDCOVER_TO_RGB:
            return self.num_classes + self.terrain_channels + self.noise_channels
        return self.image_bands

    @property
    def terrain_channels(self) -> int:
        """Input channels derived from elevation (0 for a map-only model)."""
        return len(self.terrain.channels) if self.terrain is not None else 0

    @property
    def out_channels(self) -> int:
        return self.image_bands if self.direction is Direction.LANDCOVER_TO_RGB else self.num_classes

    # -- serialisation --------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "contract_version": self.contract_version,
            "direction": self.direction.value,
            "scheme": self.scheme.to_dict(),
            "radiometry": self.radiometry.to_dict(),
            "tile_size_px": self.tile_size_px,
            "overlap_px": self.overlap_px,
            "gsd_m": self.gsd_m,
            "model_version": self.model_version,
            "config_digest": self.config_digest,
            "image_bands": self.image_bands,
            "band_names": list(self.band_names),
            "size_multiple_px": self.size_multiple_px,
            "description": self.description,
            "extra": dict(self.extra),
            "noise_channels": self.noise_channels,
            "noise_seed": self.noise_seed,
            "terrain": self.terrain.to_dict() if self.terrain is not None else None,
        }

    def to_metadata(self) -> dict[str, str]:
        """ONNX ``metadata_props`` (string -> string): our key plus the Deepness keys where they apply."""
        props = {METADATA_KEY: json.dumps(self.to_dict(), sort_keys=True)}
        if self.direction is Direction.RGB_TO_LANDCOVER:
            props.update(
                model_type=json.dumps("Segmentor"),
                class_names=json.dumps({str(i): c.name for i, c in enumerate(self.scheme.classes)}),
                resolution=json.dumps(round(self.gsd_m * 100.0, 3)),
                tile_size=json.dumps(self.tile_size_px),  # what Deepness's code reads (model_base.py)
                tiles_size=json.dumps(self.tile_size_px),  # what Deepness's documentation names
                tiles_overlap=json.dumps(int(round(100.0 * self.overlap_px / self.tile_size_px))),
                standardization_mean=json.dumps([0.5] * self.image_bands),
                standardization_std=json.dumps([0.5] * self.image_bands),
            )
        return props

    @classmethod
    def from_metadata(cls, props: Mapping[str, str], source: str = "model") -> ModelContract:
        """Parse and validate ONNX metadata; errors name ``source`` and the offending key."""
        if METADATA_KEY not in props:
            raise ContractError(
                f"{source} carries no lcgan metadata (key '{METADATA_KEY}'); it was not exported by lcgan. "
                "Export it with `python -m training export`, or pick an lcgan model."
            )
        text = props[METADATA_KEY]
        if isinstance(text, str) and len(text) > MAX_METADATA_CHARS:  # (parsing 60 MB of JSON costs about 1 GB)
            raise ContractError(f"{source}: metadata '{METADATA_KEY}' is {len(text) / 1e6:,.1f} MB; an lcgan contract "
                                f"is a few kB (at most {MAX_METADATA_CHARS / 1e6:g} MB are read): not an lcgan export.")
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:  # (ValueError: JSONDecodeError, or an integer of > 4300 digits)
            raise ContractError(f"{source}: metadata '{METADATA_KEY}' is not valid JSON ({exc}).") from None
        except RecursionError:
            raise ContractError(f"{source}: metadata '{METADATA_KEY}' is nested too deeply to be read (more than "
                                f"{MAX_METADATA_DEPTH} levels; lcgan writes 4): not an lcgan export.") from None
        if json_depth(data) > MAX_METADATA_DEPTH:
            raise ContractError(f"{source}: metadata '{METADATA_KEY}' is nested more than {MAX_METADATA_DEPTH} levels "
                                "deep (lcgan writes 4): not an lcgan export.")
        return cls.from_dict(data, source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "model") -> ModelContract:
        if not isinstance(data, dict):
            raise ContractError(f"{source}: metadata '{METADATA_KEY}' must be a JSON object.")

        def get(key: str, kinds: type | tuple[type, ...], default: Any = ...) -> Any:
            if key not in data:
                if default is ...:
                    raise ContractError(f"{source}: metadata lacks the required key '{key}'.")
                return default
            value = data[key]
            if isinstance(value, bool) and bool not in (kinds if isinstance(kinds, tuple) else (kinds,)):
                raise ContractError(f"{source}: metadata key '{key}' has the wrong type (bool).")
            if not isinstance(value, kinds):
                want = kinds.__name__ if isinstance(kinds, type) else " or ".join(k.__name__ for k in kinds)
                raise ContractError(
                    f"{source}: metadata key '{key}' must be {want}, got {type(value).__name__} ({value!r})."
                )
            return value

        version = get("contract_version", int)
        if version != CONTRACT_VERSION:
            raise ContractError(
                f"{source}: contract version {version} is not supported (this lcgan reads version "
                f"{CONTRACT_VERSION}); update lcgan or re-export the model."
            )
        try:
            scheme = ClassScheme.from_dict(get("scheme", dict), source=f"{source}: scheme")
        except SchemeError as exc:  # (the scheme's own checks do not know the file: name it)
            message = str(exc)
            raise ContractError(message if message.startswith(source) else f"{source}: {message}") from None
        radiometry = Radiometry.from_dict(get("radiometry", dict), source)
        try:
            return cls(
                direction=Direction.parse(get("direction", str)),
                scheme=scheme,
                radiometry=radiometry,
                tile_size_px=get("tile_size_px", int),
                overlap_px=get("overlap_px", int),
                gsd_m=float(get("gsd_m", (int, float))),
                model_version=str(get("model_version", str, "0")),
                config_digest=str(get("config_digest", str, "")),
                image_bands=get("image_bands", int, 3),
                band_names=tuple(get("band_names", list, ["red", "green", "blue"])),  # (strings: __post_init__)
                size_multiple_px=get("size_multiple_px", int, 4),
                description=str(get("description", str, "")),
                extra=get("extra", dict, {}),
                contract_version=version,
                noise_channels=get("noise_channels", int, 0),
                noise_seed=get("noise_seed", int, 0),
                terrain=(TerrainInputs.from_dict(data["terrain"], source)
                         if data.get("terrain") is not None else None),
            )
        except ContractError as exc:
            msg = str(exc)
            raise ContractError(msg if msg.startswith(source) else f"{source}: {msg}") from None

    # -- run-time check -------------------------------------------------------------------------------------
    def check_output(self, batch_shape: Sequence[int], output: Any, source: str = "model") -> None:
        """Check one batch's output against the contract: ``(N, out_channels, H, W)`` of the input's N, H and W,
        finite, and in range (probabilities in [0, 1], imagery in [-1, 1], with :data:`OUTPUT_TOLERANCE`).

        Raises:
            ModelFileError: naming ``source``, what it returned and what the contract promises.
        """
        n, _c, h, w = (int(d) for d in batch_shape)
        want = (n, self.out_channels, h, w)
        shape = tuple(getattr(output, "shape", ()))
        if not isinstance(output, np.ndarray) or shape != want or output.dtype != np.float32:
            got = (f"an array of shape {list(shape)} ({output.dtype})" if isinstance(output, np.ndarray)
                   else f"a {type(output).__name__}")
            raise ModelFileError(
                f"{source}: for an input of shape {list(batch_shape)} the model returned {got}; a "
                f"{self.direction.value} model must return float32 {list(want)} (batch, {self.out_channels} "
                "channels and the input's height and width). The model file is broken or not what its metadata says."
            )
        low, high, kind = (0.0, 1.0, "probabilities") if self.direction is Direction.RGB_TO_LANDCOVER else (
            -1.0, 1.0, "image values")
        finite = np.isfinite(output)
        if not finite.all():
            bad = int(output.size - np.count_nonzero(finite))
            values = sorted({str(v) for v in output[~finite][:1000].tolist()})
            raise ModelFileError(
                f"{source}: the model returned {bad} non-finite value(s) ({', '.join(values)}) for a batch of shape "
                f"{list(batch_shape)}; its {kind} must be finite numbers in [{low:g}, {high:g}]. The model is broken "
                "(e.g. exported from a diverged training run); nothing was written."
            )
        lo, hi = float(output.min()), float(output.max())
        if lo < low - OUTPUT_TOLERANCE or hi > high + OUTPUT_TOLERANCE:
            raise ModelFileError(
                f"{source}: the model returned {kind} from {lo:.4g} to {hi:.4g}, outside [{low:g}, {high:g}] (a "
                f"{self.direction.value} graph must end in {'Softmax' if low == 0.0 else 'Tanh'}); nothing was "
                "written."
            )

    # -- graph check ----------------------------------------------------------------------------------------
    def check_graph(self, inputs: Sequence[tuple[str, Sequence[Any]]], outputs: Sequence[tuple[str, Sequence[Any]]],
                    source: str = "model") -> None:
        """Check the graph's (name, shape) inputs/outputs against the contract (dims may be symbolic strings)."""
        for kind, items, name, channels in (
            ("input", inputs, INPUT_NAME, self.in_channels),
            ("output", outputs, OUTPUT_NAME, self.out_channels),
        ):
            if len(items) != 1:
                raise ContractError(f"{source}: expected exactly one {kind}, the graph has {len(items)}.")
            got_name, shape = items[0]
            if got_name != name:
                raise ContractError(f"{source}: the graph's {kind} is named '{got_name}', the contract says '{name}'.")
            if len(shape) != 4:
                raise ContractError(f"{source}: {kind} must be 4-D [N, C, H, W], the graph has shape {list(shape)}.")
            if shape[1] != channels:
                noise = f" and {self.noise_channels} noise channels" if self.noise_channels else ""
                terrain = f", {self.terrain_channels} terrain channels" if self.terrain_channels else ""
                raise ContractError(
                    f"{source}: {kind} has {shape[1]} channels but a {self.direction.value} model with "
                    f"{self.num_classes} classes{terrain}{noise} and {self.image_bands} image bands needs {channels}."
                )
            fixed = [d for d in (shape[2], shape[3]) if isinstance(d, int)]
            if fixed:
                raise ContractError(
                    f"{source}: {kind} has fixed height/width {list(shape[2:])}; lcgan needs dynamic H and W "
                    "(export with dynamic axes) to tile rasters."
                )
