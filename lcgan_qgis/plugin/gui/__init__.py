"""Widgets of the lcgan plugin: the dock panel, the model info box, the dependency installer."""
