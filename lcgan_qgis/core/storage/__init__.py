"""Files on disk: path rules, atomic writes with locks, scratch folders."""
