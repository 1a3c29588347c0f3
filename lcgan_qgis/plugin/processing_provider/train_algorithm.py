"""``lcgan:finetune`` (group "Training"): adapt the models to your region and class scheme.

The run is ``python -m training.finetune`` in a child process (:mod:`lcgan_qgis.plugin.training_process`): QGIS's
process never imports torch. Progress shows the step, the losses and the latest validation accuracy; Cancel stops
the child after its current step with a checkpoint, and running again with the same output folder resumes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from qgis.core import (
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
)

from ...core.errors import InputRasterError
from ..layers import raster_file
from ..training_process import TrainingRun, error_line, finetune_args, run_finetune, user_models_dir
from .base import LcganAlgorithm

DEVICES = ("cpu", "auto", "cuda")
HELP = (
    "Adapts lcgan's two models (the bundled ones, or a model folder you give) to your own region and class scheme: "
    "imagery of your area with land cover for part of it (any grid; it is warped) or training polygons with a class "
    "field. Pixels without a label are ignored. Without a validation area the run splits the region itself (the "
    "eastern quarter validates) and writes the split as GeoJSON.<br>"
    "The output folder becomes a model folder (both generators, their int8 copies, report.json and report.png: "
    "validation accuracy against the majority class and against the starting model). Models written into the "
    "user-models folder appear in lcgan's model lists.<br>"
    "Training runs in a separate Python process with PyTorch (install it from the lcgan dependency dialog). "
    "Cancel keeps the last checkpoint; run again with the same output folder to resume. About 10-15 minutes on a "
    "laptop CPU give a useful adaptation (docs/training.md, \"Fine-tuning\")."
)


class FineTuneAlgorithm(LcganAlgorithm):
    """``lcgan:finetune``."""

    IMAGERY, LANDCOVER, LABELS_LAYER, CLASS_FIELD = "IMAGERY", "LANDCOVER", "LABELS", "CLASS_FIELD"
    SCHEME, BASE, TRAIN_AREA, VAL_AREA = "SCHEME", "BASE", "TRAIN_AREA", "VAL_AREA"
    MINUTES, STEPS, THREADS, REPORT, ACCURACY = "MINUTES", "STEPS", "THREADS", "REPORT", "ACCURACY"
    CROP, CLASS_BALANCE, ELEVATION = "CROP", "CLASS_BALANCE", "ELEVATION"

    def name(self) -> str:
        return "finetune"

    def displayName(self) -> str:
        return self.tr("Adapt the models to your region (fine-tune)")

    def group(self) -> str:
        return self.tr("Training")

    def groupId(self) -> str:
        return "training"

    def shortHelpString(self) -> str:
        return self.tr(HELP)

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterMultipleLayers(self.IMAGERY, self.tr("Imagery of your region"),
                                                               QgsProcessing.SourceType.TypeRaster))
        self.addParameter(QgsProcessingParameterMultipleLayers(self.LANDCOVER, self.tr("Land cover (labels)"),
                                                               QgsProcessing.SourceType.TypeRaster, optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.LABELS_LAYER, self.tr("Training polygons (labels)"),
            [QgsProcessing.SourceType.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterField(self.CLASS_FIELD, self.tr("Class field of the polygons"),
                                                      parentLayerParameterName=self.LABELS_LAYER, optional=True))
        self.addParameter(QgsProcessingParameterFile(self.SCHEME, self.tr("Class scheme (JSON)"), extension="json",
                                                     optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.TRAIN_AREA, self.tr("Training area"), [QgsProcessing.SourceType.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.VAL_AREA, self.tr("Validation area"), [QgsProcessing.SourceType.TypeVectorPolygon], optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.MINUTES, self.tr("Training minutes"), QgsProcessingParameterNumber.Type.Double, 10.0, minValue=0.0))
        self.addParameter(self.flagged(QgsProcessingParameterNumber(
            self.STEPS, self.tr("Training steps instead (0: use minutes)"), QgsProcessingParameterNumber.Type.Integer,
            0, minValue=0)))
        self.addParameter(self.flagged(QgsProcessingParameterFile(
            self.BASE, self.tr("Start from model folder (default: bundled)"),
            QgsProcessingParameterFile.Behavior.Folder, optional=True)))
        self.addParameter(self.flagged(QgsProcessingParameterEnum(self.DEVICE, self.tr("Device"), options=list(DEVICES),
                                                                  defaultValue=0)))
        self.addParameter(self.flagged(QgsProcessingParameterNumber(
            self.THREADS, self.tr("CPU threads"), QgsProcessingParameterNumber.Type.Integer,
            max(1, (os.cpu_count() or 2) // 2), minValue=1, maxValue=256)))
        self.addParameter(self.flagged(QgsProcessingParameterNumber(
            self.CROP, self.tr("Training window (px)"), QgsProcessingParameterNumber.Type.Integer, 128, minValue=32,
            maxValue=1024)))
        self.addParameter(QgsProcessingParameterRasterLayer(
            self.ELEVATION, self.tr("Elevation (DEM): also make a terrain-aware model"), optional=True))
        self.addParameter(self.flagged(QgsProcessingParameterNumber(
            self.CLASS_BALANCE, self.tr("Class balance (0: none, 0.5: rare classes count more)"),
            QgsProcessingParameterNumber.Type.Double, 0.0, minValue=0.0, maxValue=1.0)))
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT, self.tr("Adapted model folder"), defaultValue=str(user_models_dir() / "adapted")))
        self.addOutput(QgsProcessingOutputFile(self.REPORT, self.tr("Report (JSON)")))
        self.addOutput(QgsProcessingOutputNumber(self.ACCURACY, self.tr("Validation accuracy")))

    def _vector_path(self, parameters: dict[str, Any], name: str, context: QgsProcessingContext,
                     feedback: QgsProcessingFeedback) -> str:
        if parameters.get(name) in (None, ""):
            return ""
        return self.parameterAsCompatibleSourceLayerPath(parameters, name, context, ["gpkg", "geojson", "shp"],
                                                         "gpkg", feedback) or ""

    def _raster_files(self, parameters: dict[str, Any], name: str, context: QgsProcessingContext,
                      what: str) -> list[str]:
        """The files behind the raster layers of ``name`` (the child reads them with GDAL): :func:`raster_file`."""
        try:
            return [raster_file(layer, what) for layer in self.parameterAsLayerList(parameters, name, context)]
        except InputRasterError as exc:
            raise QgsProcessingException(str(exc)) from None

    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        imagery = self._raster_files(parameters, self.IMAGERY, context, "Imagery")
        landcover = self._raster_files(parameters, self.LANDCOVER, context, "Land-cover")
        labels = self._vector_path(parameters, self.LABELS_LAYER, context, feedback)
        if not landcover and not labels:
            raise QgsProcessingException(self.tr("Give labels: a land-cover layer or training polygons."))
        out = self.parameterAsString(parameters, self.OUTPUT, context)
        steps = self.parameterAsInt(parameters, self.STEPS, context)
        minutes = self.parameterAsDouble(parameters, self.MINUTES, context)
        args = finetune_args(
            imagery, out, landcover, labels, self.parameterAsString(parameters, self.CLASS_FIELD, context),
            self.parameterAsFile(parameters, self.SCHEME, context),
            self._vector_path(parameters, self.TRAIN_AREA, context, feedback),
            self._vector_path(parameters, self.VAL_AREA, context, feedback), minutes, steps,
            self.parameterAsFile(parameters, self.BASE, context),
            DEVICES[self.parameterAsEnum(parameters, self.DEVICE, context)],
            self.parameterAsInt(parameters, self.THREADS, context),
            crop=self.parameterAsInt(parameters, self.CROP, context),
            class_balance=self.parameterAsDouble(parameters, self.CLASS_BALANCE, context),
            elevation=self.elevation_path(parameters, context) or "")
        run = TrainingRun(args, out)
        feedback.pushInfo(self.tr("Fine-tuning in a separate Python process; Cancel keeps the last checkpoint."))

        def progress(p: dict[str, Any]) -> None:
            feedback.setProgress(100.0 * float(p.get("fraction", 0.0)))
            if p["step"] <= 3 or p["step"] % 10 == 0:
                losses = ", ".join(f"{k} {v:.4f}" for k, v in p.get("losses", {}).items())
                feedback.pushInfo(f"step {p['step']} ({p['minutes']:.1f} min): {losses}; latest validation "
                                  f"accuracy {p['accuracy']:.4f}")

        try:
            run_finetune(run, feedback.isCanceled, progress, feedback.pushConsoleInfo)
        except Exception as exc:  # (TrainingUnavailableError and OSError alike become the algorithm's error)
            raise QgsProcessingException(str(exc)) from None
        if run.canceled:
            feedback.reportError(self.tr(f"Cancelled at step {run.last.get('step', 0)}; the checkpoint is kept. Run "
                                         f"again with the same output folder ({out}) to resume."))
            return {self.OUTPUT: out, self.REPORT: "", self.ACCURACY: float("nan")}
        if run.returncode != 0:
            raise QgsProcessingException(error_line(run))
        report = json.loads(run.report_path.read_text(encoding="utf-8"))
        verdict = report["verdict"]
        feedback.pushInfo(f"validation accuracy {verdict['accuracy']:.4f} (majority class "
                          f"{verdict['majority_accuracy']:.4f}, starting model {verdict['base_model_accuracy']:.4f}); "
                          f"model folder {out}")
        return {self.OUTPUT: out, self.REPORT: str(Path(out) / "report.json"), self.ACCURACY: verdict["accuracy"]}
