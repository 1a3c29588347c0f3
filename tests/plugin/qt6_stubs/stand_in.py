"""Permissive placeholders for qgis.core/gui classes: any attribute, any call, subclassable, int() 0."""

from __future__ import annotations


class _Meta(type):
    def __getattr__(cls, name: str) -> type:
        if name.startswith("__"):
            raise AttributeError(name)
        return make(name)

    def __or__(cls, other: object) -> type:
        return cls

    __ror__ = __or__

    def __int__(cls) -> int:
        return 0

    def __index__(cls) -> int:
        return 0


class Placeholder(metaclass=_Meta):
    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __getattr__(self, name: str) -> object:
        if name.startswith("__"):
            raise AttributeError(name)
        return make(name)()

    def __call__(self, *args: object, **kwargs: object) -> object:
        return Placeholder()


def make(name: str) -> type:
    return _Meta(name, (Placeholder,), {})


def module_getattr(name: str) -> type:
    if name.startswith("__"):
        raise AttributeError(name)
    return make(name)
