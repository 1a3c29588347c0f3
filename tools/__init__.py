"""Developer tools run by make targets (bench, demo, zip, screenshots); not part of the plugin."""
