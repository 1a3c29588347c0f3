"""Provenance of what lcgan writes: every output says it is AI-generated, by which model, from which input, when.

Synthetic imagery must never pass for a real scene. The tags go into the GeoTIFF itself (dataset metadata, plus
``TIFFTAG_IMAGEDESCRIPTION`` and ``TIFFTAG_SOFTWARE``, which any TIFF reader shows), so they travel with the file;
the plugin also writes them into the layer's QGIS metadata (:func:`summary` is its abstract). The IPTC "digital
source type" code for media created by a trained model marks synthetic imagery
(http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia, IPTC NewsCodes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from ..model.contract import Direction, ModelContract
from ..resources import plugin_version

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
#: The tag keys (GeoTIFF dataset metadata, default domain).
AI_GENERATED = "LCGAN_AI_GENERATED"
KIND, MODEL, MODEL_VERSION, MODEL_DIGEST = "LCGAN_KIND", "LCGAN_MODEL", "LCGAN_MODEL_VERSION", "LCGAN_MODEL_DIGEST"
INPUT, CREATED, SOFTWARE, SOURCE_TYPE = "LCGAN_INPUT", "LCGAN_CREATED", "LCGAN_SOFTWARE", "DIGITAL_SOURCE_TYPE"
ELEVATION = "LCGAN_ELEVATION"  # the DEM a terrain-aware model read (absent for map-only runs)
SEED = "LCGAN_SEED"  # the user's seed of synthetic imagery's texture (absent when 0, the default)
#: How the engine laid its windows (core.run.tiling): every model input at phase 0. A render without it was made
#: by an lcgan whose windows started anywhere, so its overlaps hold other texture than this version paints there.
GRID, GRID_RULE = "LCGAN_GRID", "inputs at phase 0"
KINDS = {
    Direction.LANDCOVER_TO_RGB: "synthetic RGB imagery",
    Direction.RGB_TO_LANDCOVER: "predicted land cover",
}


def provenance_tags(contract: ModelContract, model_path: str | Path, input_name: str,
                    created: dt.datetime | None = None, elevation_name: str | None = None,
                    seed: int = 0) -> dict[str, str]:
    """The tags of an output made by ``contract``'s model from the raster ``input_name`` (and, for a terrain-aware
    model, the DEM ``elevation_name``; for synthetic imagery, the user's ``seed`` when not 0)."""
    created = (created or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    kind = KINDS[contract.direction]
    tags = {
        AI_GENERATED: "YES",
        KIND: kind,
        MODEL: Path(model_path).name,
        MODEL_VERSION: contract.model_version,
        MODEL_DIGEST: contract.config_digest,
        INPUT: input_name,
        **({ELEVATION: elevation_name} if elevation_name else {}),
        **({SEED: str(seed)} if seed and contract.direction is Direction.LANDCOVER_TO_RGB else {}),
        GRID: GRID_RULE,
        CREATED: created.isoformat(),
        SOFTWARE: f"lcgan {plugin_version()}",
        "TIFFTAG_SOFTWARE": f"lcgan {plugin_version()}",
        "TIFFTAG_DATETIME": created.strftime("%Y:%m:%d %H:%M:%S"),
    }
    if contract.direction is Direction.LANDCOVER_TO_RGB:
        tags[SOURCE_TYPE] = TRAINED_ALGORITHMIC_MEDIA
    tags["TIFFTAG_IMAGEDESCRIPTION"] = summary(tags)
    return tags


def summary(tags: Mapping[str, str]) -> str:
    """One paragraph saying what the file is (the TIFF description, the QGIS layer's abstract)."""
    kind = tags.get(KIND, "output")
    version = f" (version {tags[MODEL_VERSION]})" if tags.get(MODEL_VERSION) else ""
    elevation = f" and the elevation '{tags[ELEVATION]}'" if tags.get(ELEVATION) else ""
    text = (f"AI-generated {kind}: made by the lcgan model {tags.get(MODEL, '?')}{version} from the raster "
            f"'{tags.get(INPUT, '?')}'{elevation} on {tags.get(CREATED, '?')} with {tags.get(SOFTWARE, 'lcgan')}.")
    if kind == KINDS[Direction.LANDCOVER_TO_RGB]:
        text += " It is not a real satellite or aerial scene."
    return text
