"""The training configuration: one typed, commented dataclass per section, loaded from TOML plus overrides.

A config file has the sections ``[model]``, ``[loss]``, ``[data]``, ``[optim]`` and ``[runtime]``; any key left out
keeps the default below. Command-line overrides are ``section.key=value`` (or ``key=value`` when the key name is
unique) with TOML literals (``optim.lr=1e-4``, ``data.image_bands=[1,2,3]``, ``runtime.compile=true``); bare words
are strings. Unknown sections or keys are rejected with the list of choices. ``docs/training.md`` documents every key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from lcgan_qgis.core.errors import ContractError
from lcgan_qgis.core.model.terrain_inputs import (
    DEFAULT_RELIEF_RADIUS_M,
    DEFAULT_RELIEF_SCALE_M,
    ZION_SUN_AZIMUTH_DEG,
    ZION_SUN_ELEVATION_DEG,
    TerrainInputs,
)

from .config_bounds import bound_checks
from .errors import ConfigError

__all__ = ["ConfigError", "TrainConfig", "parse_override"]

FAKE_LC_MODES = ("softmax", "gumbel_st", "softmax_temp")
UPSAMPLES = ("transpose", "nearest", "bilinear", "blur")
NORMS = ("instance", "instance_running", "batch")
OUTPUT_FILTERS = ("none", "checkerboard_null")
GENERATORS = ("resnet", "spade", "unet")  # keys of models.build_generator
RGB2LC_GENERATORS = ("", "resnet", "unet")  # "" = model.generator's (resnet when that is spade, a map-only design)
DISCRIMINATORS = ("patchgan", "multiscale")  # keys of models.build_discriminator
# Keys added after models were bundled: left out of the digest while at their default, so
# the config digests recorded in earlier contracts still match their configs.
LATER_KEYS: dict[str, dict[str, Any]] = {
    "model": {"rgb2lc_generator": "", "d_sees_map": False}, "loss": {"lambda_feature_match": 0.0},
}



@dataclass
class ModelConfig:
    generator: str = "resnet"  # G_lc2rgb's builder (models.build_generator): resnet | spade | unet
    rgb2lc_generator: str = ""  # G_rgb2lc's: resnet | unet | "" (= generator; resnet when generator is spade)
    ngf: int = 64  # generator filters in the first layer (seed/paper: 64)
    n_blocks: int = 9  # residual blocks (seed/paper: 9)
    discriminator: str = "patchgan"  # patchgan | multiscale (2 scales, features for loss.lambda_feature_match)
    d_sees_map: bool = False  # D_rgb also reads the map (+ terrain) the image shows (needs data.paired_landcover)
    ndf: int = 64  # discriminator filters in the first layer
    patch: str = "16"  # "16": seed's 16x16 scores at 256 px; "30": reference 70x70 PatchGAN (30x30 at 256 px)
    fake_lc_for_d: str = "gumbel_st"  # what D_lc and the RGB cycle see for fake maps: softmax|gumbel_st|softmax_temp
    lc_temperature: float = 1.0  # Gumbel-softmax tau (gumbel_st) or softmax temperature (softmax_temp)
    real_lc_smoothing: float = 0.0  # label smoothing of real one-hot maps shown to D_lc (0 = exact one-hot)
    real_lc_noise: float = 0.0  # std of Gaussian noise added to real one-hot maps shown to D_lc (then renormalised)
    upsample: str = "transpose"  # generator upsampling: transpose (reference) | nearest | bilinear (resize-conv)
    norm: str = "instance"  # generator norm: instance (reference) | instance_running | batch (see models.py)
    noise_channels: int = 0  # extra N(0, 1) input channels of G_lc2rgb (texture source; the engine feeds them)
    output_filter: str = "none"  # fixed filter on G_lc2rgb's image: none | checkerboard_null (models.py)
    # Terrain-aware G_lc2rgb: channels derived from data.dem_raster (lcgan_qgis.core.terrain.channels), stacked after
    # the
    # one-hot map and before the noise; [] = a map-only model. Choices: hillshade, slope, relative_elevation.
    terrain_channels: list[str] = field(default_factory=list)
    sun_azimuth_deg: float = ZION_SUN_AZIMUTH_DEG  # the training imagery's sun (hillshade), clockwise from north
    sun_elevation_deg: float = ZION_SUN_ELEVATION_DEG  # its elevation above the horizon (Zion: LC80380342015230)
    relief_radius_m: float = DEFAULT_RELIEF_RADIUS_M  # radius of the local mean of relative_elevation
    relief_scale_m: float = DEFAULT_RELIEF_SCALE_M  # height difference that maps relative_elevation to ~0.71


@dataclass
class LossConfig:
    lambda_cycle_rgb: float = 10.0  # weight of the L1 cycle loss RGB -> LC -> RGB
    lambda_cycle_lc: float = 10.0  # weight of the cross-entropy cycle loss LC -> RGB -> LC (on logits)
    lambda_adv_rgb: float = 1.0  # weight of the generator's adversarial term against D_rgb
    lambda_adv_lc: float = 1.0  # weight of the generator's adversarial term against D_lc
    pool_size: int = 50  # replay buffer per discriminator (reference: 50; 0 disables it)
    # Optional semi-supervised terms (need data.paired_landcover; 0 = the pure unpaired CycleGAN of the seed):
    lambda_paired_lc: float = 0.0  # cross-entropy of G_rgb2lc(image) against the image's own land cover
    lambda_paired_rgb: float = 0.0  # L1 of G_lc2rgb(the image's land cover) against the image
    # The map carries no information about texture below the size of its patches: the L1 terms on imagery (RGB
    # cycle, paired RGB) compare images average-pooled by this factor, so texture is left to the adversarial term.
    pixel_lowpass_px: int = 1  # 1 = plain per-pixel L1 (reference)
    cycle_image_noise: float = 0.0  # std of Gaussian noise on generated imagery before G_rgb2lc (LC cycle)
    # pix2pixHD's feature matching: L1 between D_rgb's features of the real image and of G_lc2rgb's painting of
    # its own map (needs data.paired_landcover; 0 = off)
    lambda_feature_match: float = 0.0


@dataclass
class DataConfig:
    lc_rasters: list[str] = field(default_factory=lambda: ["nlcd2011.tif"])  # land-cover GeoTIFFs (relative: --data)
    image_rasters: list[str] = field(default_factory=lambda: ["landsat8_rgb.tif"])  # imagery GeoTIFFs (same)
    image_bands: list[int] = field(default_factory=lambda: [1, 2, 3])  # 1-based bands read as R, G, B
    scheme: str = ""  # class scheme JSON; "" = the bundled NLCD 2011 scheme
    crop_size_px: int = 256  # square training window (multiple of 4)
    max_nodata_fraction: float = 0.05  # windows with more nodata pixels than this are rejected
    percentiles: list[float] = field(default_factory=lambda: [2.0, 98.0])  # image values mapped to -1 and +1
    rot90: bool = False  # also rotate windows by random multiples of 90 degrees (flips are always on)
    train_areas: str = ""  # optional GeoJSON/GPKG polygons: windows are sampled only inside them
    val_areas: str = ""  # optional GeoJSON/GPKG polygons: evaluation windows are taken only inside them
    num_workers: int = 2  # DataLoader worker processes (0 = load in the main process)
    val_image: str = ""  # optional paired validation imagery (same grid as val_landcover): RGB->LC accuracy per epoch
    val_landcover: str = ""  # its land cover; best-accuracy generators go to checkpoints/best.pt
    # Optional land cover on each image raster's grid (one per image raster, same size/transform/CRS), read with
    # every image window for the loss.lambda_paired_* terms. Restrict it with train_areas to keep a held-out area.
    paired_landcover: list[str] = field(default_factory=list)
    # Augmentation of what G_rgb2lc reads (real and generated imagery alike; D_rgb and the targets see the plain
    # windows): per-window and per-band gain, offset and gamma on the [0, 1]-scaled pixels, and a random scale.
    jitter_gain: float = 0.0  # gain drawn uniformly in [1 - g, 1 + g] per band
    jitter_offset: float = 0.0  # offset drawn uniformly in [-o, o] per band (fraction of the range)
    jitter_gamma: float = 0.0  # gamma drawn log-uniformly in [exp(-v), exp(v)] per band
    scale_jitter: float = 0.0  # resize factor drawn log-uniformly in [1 / (1 + s), 1 + s] per step (0 = off)
    # Elevation for model.terrain_channels: one DEM (any CRS and grid), resampled once onto the grid of every
    # land-cover and image raster with the engine's own reader (lcgan_qgis.core.terrain.elevation).
    dem_raster: str = ""
    dem_metres_per_unit: float = 1.0  # metres per DEM unit when the raster states no unit (0.3048 = feet)


@dataclass
class OptimConfig:
    lr: float = 2e-4  # Adam learning rate (reference 2e-4)
    beta1: float = 0.5  # Adam beta1 (reference 0.5)
    beta2: float = 0.999  # Adam beta2
    batch_size: int = 1  # images per step and process (reference 1)
    steps_per_epoch: int = 1000  # random windows per epoch (the datasets are random windows, not a fixed list)
    epochs: int = 200  # total epochs (reference 200)
    epochs_decay: int = 100  # of which the last ones decay lr linearly to 0 (reference 100)


@dataclass
class RuntimeConfig:
    seed: int = 0  # seeds torch, the window sampler, the pools and the Gumbel noise
    device: str = "auto"  # auto (cuda when available) | cpu | cuda | cuda:N
    amp: str = "auto"  # auto (bf16 where supported) | bf16 | none
    channels_last: str = "auto"  # auto (on for CUDA, off for CPU: measured 6-8x slower on our CPU) | on | off
    compile: bool = False  # torch.compile the four networks
    threads: int = 0  # torch intra-op threads (0 = on CPU the cores idle at the start: trainer.idle_cores)
    checkpoint_every_steps: int = 500  # also checkpoint every N steps (plus each epoch end and on SIGINT/SIGTERM)
    checkpoint_every_s: float = 300.0  # also checkpoint when this many seconds passed since the last one (0 = off)
    samples_every_epochs: int = 1  # sample grid + loss plot every N epochs
    max_steps: int = 0  # stop after this global step (0 = run the whole schedule); resumable later
    progress: bool = True  # tqdm progress bar


SECTIONS: dict[str, type] = {
    "model": ModelConfig, "loss": LossConfig, "data": DataConfig, "optim": OptimConfig, "runtime": RuntimeConfig,
}


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    # -- derived --------------------------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.optim.epochs * self.optim.steps_per_epoch

    @property
    def decay_start_step(self) -> int:
        return (self.optim.epochs - self.optim.epochs_decay) * self.optim.steps_per_epoch

    def terrain_inputs(self) -> TerrainInputs | None:
        """The terrain inputs of G_lc2rgb (what its exported contract carries), or None for a map-only model."""
        m = self.model
        if not m.terrain_channels:
            return None
        return TerrainInputs(tuple(m.terrain_channels), m.sun_azimuth_deg, m.sun_elevation_deg, m.relief_radius_m,
                             m.relief_scale_m, self.data.dem_metres_per_unit)

    # -- (de)serialisation ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, dict[str, Any]]:
        return dataclasses.asdict(self)

    def digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the config's canonical JSON: what the ONNX contract records."""
        values = self.to_dict()
        for section, defaults in LATER_KEYS.items():
            for key, default in defaults.items():
                if values[section][key] == default:
                    del values[section][key]
        blob = json.dumps(values, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_toml(self) -> str:
        lines = []
        for section, values in self.to_dict().items():
            lines.append(f"[{section}]")
            lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
            lines.append("")
        return "\n".join(lines)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> TrainConfig:
        """Build and validate a config from nested ``{section: {key: value}}``; unknown keys raise ConfigError."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a table of sections {sorted(SECTIONS)}.")
        unknown = sorted(set(data) - set(SECTIONS))
        if unknown:
            raise ConfigError(f"{source}: unknown section(s) {unknown}; choose from {sorted(SECTIONS)}.")
        parts = {}
        for section, kind in SECTIONS.items():
            values = data.get(section, {})
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{section}] must be a table.")
            parts[section] = _build_section(kind, section, values, source)
        config = cls(**parts)
        config.validate(source)
        return config

    @classmethod
    def load(cls, path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
        """Read a TOML file (None: defaults only) and apply ``key=value`` overrides."""
        data: dict[str, Any] = {}
        source = "defaults"
        if path is not None:
            source = str(path)
            try:
                data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
            except FileNotFoundError:
                raise ConfigError(f"Config file not found: {path}") from None
            except IsADirectoryError:
                raise ConfigError(f"Config {path} is a folder; give a TOML file (e.g. configs/zion.toml).") from None
            except UnicodeDecodeError as exc:
                raise ConfigError(f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at position "
                                  f"{exc.start}); a TOML config must be saved as UTF-8.") from None
            except OSError as exc:
                raise ConfigError(f"Cannot read config {path}: {exc.strerror or exc}.") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: invalid TOML ({exc}).") from None
            except RecursionError:
                raise ConfigError(f"{path}: its arrays or tables are nested too deeply to be a training config.") \
                    from None
        for item in overrides:
            section, key, value = parse_override(item)
            data.setdefault(section, {})[key] = value
        return cls.from_dict(data, source)

    def validate(self, source: str = "config") -> None:
        """Check value ranges and choices; raises ConfigError naming the key."""
        m, d, o, r, loss = self.model, self.data, self.optim, self.runtime, self.loss
        for section, values in self.to_dict().items():
            for key, value in values.items():
                numbers = value if isinstance(value, list) else [value]
                if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
                    raise ConfigError(f"{source}: {section}.{key} must be a finite number, got {value!r}.")
        weights = [f.name for f in fields(LossConfig) if f.name.startswith("lambda_")]
        checks = [
            (m.generator in GENERATORS, "model.generator", f"one of {GENERATORS}"),
            (m.discriminator in DISCRIMINATORS, "model.discriminator", f"one of {DISCRIMINATORS}"),
            (m.rgb2lc_generator in RGB2LC_GENERATORS, "model.rgb2lc_generator", f"one of {RGB2LC_GENERATORS}"),
            (not ((m.d_sees_map or loss.lambda_feature_match > 0) and not d.paired_landcover),
             "model.d_sees_map/loss.lambda_feature_match", "off without data.paired_landcover (they read the map "
             "of each real image window)"),
            (loss.lambda_feature_match == 0 or m.discriminator == "multiscale", "loss.lambda_feature_match",
             "0 unless model.discriminator is multiscale (the PatchGAN returns no features)"),
            (all(getattr(loss, k) >= 0 for k in weights), "loss." + "/".join(weights), ">= 0 (0 switches a term off)"),
            (loss.pool_size >= 0, "loss.pool_size", ">= 0 (0 disables the replay buffer)"),
            (r.checkpoint_every_s >= 0, "runtime.checkpoint_every_s", ">= 0 (0 = off)"),
            (m.fake_lc_for_d in FAKE_LC_MODES, "model.fake_lc_for_d", f"one of {FAKE_LC_MODES}"),
            (m.patch in ("16", "30"), "model.patch", "'16' or '30'"),
            (m.ngf >= 1 and m.ndf >= 1 and m.n_blocks >= 0, "model.ngf/ndf/n_blocks", "positive"),
            (m.lc_temperature > 0, "model.lc_temperature", "> 0"),
            (0 <= m.real_lc_smoothing < 1, "model.real_lc_smoothing", "in [0, 1)"),
            (m.real_lc_noise >= 0, "model.real_lc_noise", ">= 0"),
            (m.upsample in UPSAMPLES, "model.upsample", f"one of {UPSAMPLES}"),
            (m.norm in NORMS, "model.norm", f"one of {NORMS}"),
            (m.output_filter in OUTPUT_FILTERS, "model.output_filter", f"one of {OUTPUT_FILTERS}"),
            (m.noise_channels >= 0, "model.noise_channels", ">= 0"),
            (self.loss.pixel_lowpass_px >= 1, "loss.pixel_lowpass_px", ">= 1"),
            (self.loss.cycle_image_noise >= 0, "loss.cycle_image_noise", ">= 0"),
            (0 <= d.jitter_gain < 1 and 0 <= d.jitter_offset < 1 and d.jitter_gamma >= 0,
             "data.jitter_gain/jitter_offset/jitter_gamma", "gain and offset in [0, 1), gamma >= 0"),
            (0 <= d.scale_jitter <= 1, "data.scale_jitter", "in [0, 1]"),
            (d.crop_size_px >= 32 and d.crop_size_px % 4 == 0, "data.crop_size_px", "a multiple of 4, >= 32"),
            (0 <= d.max_nodata_fraction <= 1, "data.max_nodata_fraction", "in [0, 1]"),
            (len(d.percentiles) == 2 and 0 <= d.percentiles[0] < d.percentiles[1] <= 100, "data.percentiles",
             "[low, high] with 0 <= low < high <= 100"),
            (bool(d.lc_rasters) and bool(d.image_rasters), "data.lc_rasters/image_rasters", "non-empty lists"),
            (bool(d.image_bands) and min(d.image_bands) >= 1, "data.image_bands", "1-based band numbers"),
            (d.num_workers >= 0, "data.num_workers", ">= 0"),
            (o.lr > 0 and 0 <= o.beta1 < 1 and 0 <= o.beta2 < 1, "optim.lr/beta1/beta2", "lr > 0, betas in [0, 1)"),
            (o.batch_size >= 1 and o.steps_per_epoch >= 1, "optim.batch_size/steps_per_epoch", ">= 1"),
            (o.epochs >= 1 and 0 <= o.epochs_decay <= o.epochs, "optim.epochs/epochs_decay",
             "epochs >= 1 and 0 <= epochs_decay <= epochs"),
            (r.amp in ("auto", "bf16", "none"), "runtime.amp", "auto, bf16 or none"),
            (r.channels_last in ("auto", "on", "off"), "runtime.channels_last", "auto, on or off"),
            (r.checkpoint_every_steps >= 1 and r.samples_every_epochs >= 1, "runtime.*_every_*", ">= 1"),
            (r.max_steps >= 0 and r.threads >= 0, "runtime.max_steps/threads", ">= 0"),
        ]
        for ok, key, want in checks + bound_checks(self):  # (sizes, counts, device and seed: config_bounds.py)
            if not ok:
                raise ConfigError(f"{source}: {key} must be {want}.")
        self._validate_terrain(source)

    def _validate_terrain(self, source: str) -> None:
        m, d = self.model, self.data
        if bool(m.terrain_channels) != bool(d.dem_raster):
            raise ConfigError(f"{source}: model.terrain_channels and data.dem_raster go together (channels "
                              f"{m.terrain_channels}, dem_raster {d.dem_raster!r}); set both for a terrain-aware "
                              "model, neither for a map-only one.")
        try:
            if m.terrain_channels:
                self.terrain_inputs()
        except ContractError as exc:
            detail = str(exc)
            for contract_key, config_key in (("terrain.channels", "model.terrain_channels"),
                                             ("terrain: sun_", "model.sun_"), ("terrain.relief_", "model.relief_"),
                                             ("terrain.dem_", "data.dem_")):
                detail = detail.replace(contract_key, config_key)
            raise ConfigError(f"{source}: {detail}") from None


def parse_override(item: str) -> tuple[str, str, Any]:
    """``section.key=value`` or unique ``key=value`` -> (section, key, parsed TOML value or string)."""
    if "=" not in item:
        raise ConfigError(f"Override {item!r} is not key=value.")
    name, raw = (s.strip() for s in item.split("=", 1))
    if "." in name:
        section, key = name.split(".", 1)
        if section not in SECTIONS:
            raise ConfigError(f"Override {item!r}: unknown section {section!r}; choose from {sorted(SECTIONS)}.")
    else:
        owners = [s for s, kind in SECTIONS.items() if name in {f.name for f in fields(kind)}]
        if len(owners) != 1:
            raise ConfigError(
                f"Override {item!r}: key {name!r} " + (f"is in several sections {owners}; write section.key."
                                                         if owners else f"is unknown; keys: {_all_keys()}.")
            )
        section, key = owners[0], name
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return section, key, value


def _all_keys() -> list[str]:
    return [f"{s}.{f.name}" for s, kind in SECTIONS.items() for f in fields(kind)]


def _build_section(kind: type, section: str, values: dict[str, Any], source: str) -> Any:
    hints = get_type_hints(kind)
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} in [{section}]; choose from {sorted(known)}.")
    out = {}
    for key, value in values.items():
        out[key] = _coerce(value, hints[key], f"{source}: {section}.{key}")
    return kind(**out)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin is list:
        (inner,) = get_args(hint)
        if not isinstance(value, list):
            value = [value]
        return [_coerce(v, inner, where) for v in value]
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be true or false, got {value!r}.")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where} must be an integer, got {value!r}.")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where} must be a number, got {value!r}.")
    if hint is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where} must be a string, got {value!r}.")
    raise ConfigError(f"{where}: unsupported type {hint!r}.")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))
