"""One translation run: windows, streaming, the engine, the job, preprocessing and noise."""
