from stand_in import module_getattr as __getattr__  # noqa: F401
