"""``info``: a model's contract and the execution provider it would use."""

from __future__ import annotations

import argparse

from ..core.choices import DEVICES
from .common import add_path_options, printable

NAME = "info"


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(NAME, help="print a model's contract and the execution provider it would use")
    parser.add_argument("model")
    parser.add_argument("--device", choices=DEVICES, default="auto")
    add_path_options(parser)


def run(args: argparse.Namespace) -> int:
    from ..core.model.contract import Direction
    from ..core.model.runtime import load_model

    model = load_model(args.model, args.device, precision=args.precision, backend=args.backend)
    c = model.contract
    radio = c.radiometry
    lines = [
        f"model:        {model.path}",
        f"direction:    {c.direction.value}",
        f"version:      {c.model_version} (contract {c.contract_version}, config {c.config_digest or '-'})",
        f"precision:    {c.extra.get('precision', 'fp32')}",
        f"tile:         {c.tile_size_px} px, recommended overlap {c.overlap_px} px, multiple of {c.size_multiple_px}",
        f"gsd:          {c.gsd_m:g} m",
        f"image bands:  {c.image_bands} ({', '.join(c.band_names)})",
        f"radiometry:   {radio.mode}, percentiles {radio.percentiles[0]:g}-{radio.percentiles[1]:g}, "
        f"low {list(radio.low)}, high {list(radio.high)}",
        f"scheme:       {c.scheme.name} ({len(c.scheme)} classes, nodata code {c.scheme.nodata_code})",
    ]
    if c.direction is Direction.LANDCOVER_TO_RGB:
        parts = [f"{c.num_classes} classes"] + ([f"{c.terrain_channels} terrain"] if c.terrain else []) + (
            [f"{c.noise_channels} noise"] if c.noise_channels else [])
        lines.insert(-1, f"input:        {c.in_channels} channels ({' + '.join(parts)})")
        lines.insert(-1, "terrain:      " + (f"needs elevation (--elevation): {c.terrain.describe()}" if c.terrain
                                            else "none (map only; no elevation input)"))
    lines += [f"  {cls.code:>5}  {cls.hex}  {cls.name}" for cls in c.scheme.classes]
    lines.append(f"provider:     {model.provider_reason}")
    lines.append(f"runs with:    {model.summary}")
    if model.compile_seconds:
        lines.append(f"compile:      {model.compile_seconds:.2f} s (OpenVINO; its model cache makes the next one fast)")
    lines += [f"note:         {note}" for note in model.notes]
    if c.description:
        lines.append(f"description:  {c.description}")
    print("\n".join(printable(line.replace("\n", " ")) for line in lines))
    return 0
