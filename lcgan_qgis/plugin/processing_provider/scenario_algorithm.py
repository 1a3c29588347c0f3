"""``lcgan:render_scenario``: a land-cover change as imagery, re-rendering only what the change can reach
(:func:`lcgan_qgis.core.run.scenario.run_scenario`); before, after and the change mask go into one group named by
the scenario (:mod:`lcgan_qgis.plugin.scenario_layers`)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qgis.core import (
    QgsFeatureSink,
    QgsProcessing,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingOutputNumber,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingUtils,
    QgsVectorFileWriter,
)

from ...core.errors import LcganError
from ...core.model.contract import Direction
from ...core.run.settings import Execution, Rendering, Resolution, RunSettings, Terrain, Windowing
from ..scenario_layers import add_scenario_layers
from .base import LcganAlgorithm
from .landcover_to_rgb import MAX_DIALOG_SEED

if TYPE_CHECKING:  # (the scenario module loads onnxruntime: imported when a scenario runs, not with the plugin)
    from ...core.run.scenario import ScenarioRequest, ScenarioResult

HELP = (
    "Renders a land-cover scenario as imagery, changing only what changed. Give the base land cover and the change: "
    "a changed land-cover raster on the same grid, or polygons with the class they turn to (one code, or a field "
    "holding each polygon's code; optionally only some classes change, e.g. 41,42,43 for forest). Local mode (the "
    "default): the changed neighbourhood is re-rendered as one crop in the phase of a full render's windows, with "
    "its seed, and feathered into the base render; every pixel farther than the margin (32 px by default, at most "
    "256) from a change is copied from the base render bit for bit. Exact mode: every window the change can reach is "
    "re-rendered (the margin is then the model's measured receptive field, 88 px for the bundled generator), so "
    "the result equals a full render of the changed map; slower. Give the imagery already rendered from the base "
    "(Land cover -> RGB with the same model and seed); without it the whole base is rendered once and written too. "
    "The change mask marks changed pixels (1) and the re-rendered margin (2); the changed area is reported in "
    "hectares. Before, after and the mask are added to a group named by the scenario, ready for a swipe or a "
    "side-by-side view.")
MODES = ("local", "exact")
MAX_MARGIN_PX = 256  # (core.run.receptive_field.MAX_MARGIN_PX, not imported: it loads the runtime; a test checks it)


class RenderScenario(LcganAlgorithm):
    """``lcgan:render_scenario``."""

    BASE, CHANGED, POLYGONS, TO_CLASS = "BASE", "CHANGED", "POLYGONS", "TO_CLASS"
    CLASS_FIELD, FROM_CLASSES, BASE_RENDER, NAME = "CLASS_FIELD", "FROM_CLASSES", "BASE_RENDER", "NAME"
    CHANGE_MASK, BASE_RENDER_OUTPUT = "CHANGE_MASK", "BASE_RENDER_OUTPUT"
    CHANGED_HA, CHANGED_PX, MARGIN_PX, WINDOWS_RUN = "CHANGED_HA", "CHANGED_PX", "MARGIN_PX", "WINDOWS_RUN"
    MODE, MARGIN = "MODE", "MARGIN"

    def __init__(self) -> None:
        super().__init__()
        self._request: ScenarioRequest | None = None
        self._result: ScenarioResult | None = None
        self._name = ""

    def name(self) -> str:
        return "render_scenario"

    def displayName(self) -> str:
        return self.tr("Render a land-cover scenario (before / after)")

    def tags(self) -> list[str]:
        return self.tr("scenario,change,before,after,land cover,imagery,planning,what if").split(",")

    def shortHelpString(self) -> str:
        return self.tr(HELP)

    def initAlgorithm(self, config: dict[str, Any] | None = None) -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.BASE, self.tr("Base land cover")))
        self.addParameter(QgsProcessingParameterRasterLayer(self.CHANGED, self.tr("Changed land cover"),
                                                            optional=True))
        self.addParameter(QgsProcessingParameterFeatureSource(
            self.POLYGONS, self.tr("Or: change polygons"), [QgsProcessing.SourceType.TypeVectorPolygon],
            optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            self.TO_CLASS, self.tr("New class (code)"), type=QgsProcessingParameterNumber.Type.Integer,
            optional=True, minValue=0))
        self.addParameter(QgsProcessingParameterField(self.CLASS_FIELD, self.tr("Or: field with each polygon's code"),
                                                      parentLayerParameterName=self.POLYGONS, optional=True))
        self.addParameter(QgsProcessingParameterString(self.FROM_CLASSES, self.tr("Only these classes change"),
                                                       optional=True))
        self.addParameter(QgsProcessingParameterRasterLayer(self.BASE_RENDER, self.tr("Base render (before)"),
                                                            optional=True))
        self.add_model(Direction.LANDCOVER_TO_RGB)
        self.add_elevation()
        self.addParameter(QgsProcessingParameterNumber(
            self.SEED, self.tr(self.LABELS[self.SEED]), type=QgsProcessingParameterNumber.Type.Integer,
            defaultValue=0, minValue=0, maxValue=MAX_DIALOG_SEED))
        self.addParameter(QgsProcessingParameterString(self.NAME, self.tr("Scenario name"), optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.MODE, self.tr("Mode"), options=[self.tr("local: re-render the neighbourhood, feathered (fast)"),
                                                 self.tr("exact: equal to a full render of the changed map")],
            defaultValue=0))
        self.addParameter(self.flagged(QgsProcessingParameterNumber(
            self.MARGIN, self.tr("Margin, local mode (px; farther away: the base render)"),
            type=QgsProcessingParameterNumber.Type.Integer, optional=True, minValue=0, maxValue=MAX_MARGIN_PX)))
        self.add_overlap()
        self.add_execution()
        self.add_batch()
        self.addParameter(self.flagged(QgsProcessingParameterBoolean(
            self.CHECK_GSD, self.tr(self.LABELS[self.CHECK_GSD]), defaultValue=True)))
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, self.tr("Scenario imagery (after)")))
        self.addParameter(QgsProcessingParameterRasterDestination(self.CHANGE_MASK, self.tr("Change mask")))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.BASE_RENDER_OUTPUT, self.tr("Base render written here (when none is given)"), optional=True,
            createByDefault=False))
        for key, label in ((self.CHANGED_HA, "Changed area (ha)"), (self.CHANGED_PX, "Changed pixels"),
                           (self.MARGIN_PX, "Margin (px)"),
                           (self.WINDOWS_RUN, "Model runs (local mode: crops; exact: windows)"),
                           (self.SECONDS, "Seconds")):
            self.addOutput(QgsProcessingOutputNumber(key, self.tr(label)))

    # -- parameters -> request -----------------------------------------------------------------------------
    def _polygons(self, parameters: dict[str, Any], context: QgsProcessingContext) -> str | None:
        """The change polygons written to a GeoPackage in Processing's temporary folder (any source: a drawn
        memory layer, a selection, a database table)."""
        if parameters.get(self.POLYGONS) in (None, ""):
            return None
        source = self.parameterAsSource(parameters, self.POLYGONS, context)
        if source is None:
            raise QgsProcessingException(self.tr("The change polygons {0!r} cannot be read.").format(
                parameters.get(self.POLYGONS)))
        path = QgsProcessingUtils.generateTempFilename("scenario_change.gpkg")
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName = "GPKG"
        writer = QgsVectorFileWriter.create(path, source.fields(), source.wkbType(), source.sourceCrs(),
                                            context.transformContext(), options)
        for feature in source.getFeatures():
            writer.addFeature(feature, QgsFeatureSink.Flag.FastInsert)
        del writer
        return path

    def _build_request(self, parameters: dict[str, Any], context: QgsProcessingContext) -> ScenarioRequest:
        from ...core.run.scenario import ScenarioRequest

        execution = self.execution_options(parameters, context)
        terrain = self.elevation_options(parameters, context)
        text = self.parameterAsString(parameters, self.FROM_CLASSES, context).strip()
        try:
            from_classes = tuple(int(c) for c in text.replace(" ", "").split(",") if c)
        except ValueError:
            raise QgsProcessingException(self.tr("Only these classes change: {0!r} is not a list of codes like "
                                                 "41,42,43.").format(text)) from None
        base_render_output = None
        if parameters.get(self.BASE_RENDER_OUTPUT) not in (None, ""):
            base_render_output = self.parameterAsOutputLayer(parameters, self.BASE_RENDER_OUTPUT, context) or None
        settings = RunSettings(
            execution=Execution(**execution),
            windowing=Windowing(overlap_px=self.optional_int(parameters, self.OVERLAP, context),
                                batch_size=self.parameterAsInt(parameters, self.BATCH, context)),
            terrain=Terrain(**terrain),
            resolution=Resolution(check_gsd=self.parameterAsBoolean(parameters, self.CHECK_GSD, context)),
            rendering=Rendering(seed=self.parameterAsInt(parameters, self.SEED, context)))
        base = self.raster_path(parameters, self.BASE, context, "Land-cover")
        mode = MODES[self.parameterAsEnum(parameters, self.MODE, context)]
        return ScenarioRequest(
            output_path=self.parameterAsOutputLayer(parameters, self.OUTPUT, context),
            base_path=str(base), changed_path=self.raster_path(parameters, self.CHANGED, context, "Changed land-cover"),
            polygons_path=self._polygons(parameters, context),
            to_class=self.optional_int(parameters, self.TO_CLASS, context),
            class_field=self.parameterAsString(parameters, self.CLASS_FIELD, context) or None,
            from_classes=from_classes,
            base_render_path=self.raster_path(parameters, self.BASE_RENDER, context, "Base render"),
            base_render_output=base_render_output,
            change_mask_path=self.parameterAsOutputLayer(parameters, self.CHANGE_MASK, context),
            model_path=self.model_path(parameters, context), settings=settings,
            name=self.parameterAsString(parameters, self.NAME, context) or None, mode=mode,
            margin_px=self.optional_int(parameters, self.MARGIN, context) if mode == "local" else None)

    # -- run -----------------------------------------------------------------------------------------------
    def processAlgorithm(self, parameters: dict[str, Any], context: QgsProcessingContext,
                         feedback: QgsProcessingFeedback) -> dict[str, Any]:
        from ...core.run.scenario import run_scenario

        feedback = feedback or QgsProcessingFeedback()
        try:
            request = self._build_request(parameters, context)
            self._name = request.name or f"{Path(request.base_path).stem} scenario"
            self._request = replace(request, name=self._name)
            self._result = run_scenario(self._request, lambda f: feedback.setProgress(100.0 * f),
                                        feedback.isCanceled, feedback.pushInfo)
        except LcganError as exc:
            raise QgsProcessingException(str(exc)) from None
        result = self._result
        if result.canceled:
            raise QgsProcessingException(self.tr("Canceled: nothing was written."))
        outputs = {self.OUTPUT: result.output_path, self.CHANGE_MASK: result.change_mask_path,
                   self.CHANGED_HA: result.changed_ha, self.CHANGED_PX: result.changed_px,
                   self.MARGIN_PX: result.margin_px, self.WINDOWS_RUN: result.runs,
                   self.SECONDS: result.seconds}
        if result.base_rendered:
            outputs[self.BASE_RENDER_OUTPUT] = result.base_render_path
        return outputs

    def postProcessAlgorithm(self, context: QgsProcessingContext, feedback: QgsProcessingFeedback) -> dict[str, Any]:
        """Main thread: when the results are to be loaded, load them as one group named by the scenario (before,
        after, the change mask) instead of Processing's loose layers."""
        result = self._result
        if result is None or result.output_path is None:
            return {}
        to_load = context.layersToLoadOnCompletion()
        ours = {p for p in (result.output_path, result.change_mask_path, result.base_render_path) if p}
        wanted = any(path in to_load for path in ours)
        context.setLayersToLoadOnCompletion({k: v for k, v in to_load.items() if k not in ours})
        if wanted and context.project() is not None:
            try:
                add_scenario_layers(result, self._name, context.project())
            except LcganError as exc:
                feedback.reportError(str(exc), fatalError=False)
        return {}
