"""The core: the contract's rules (``contract``, ``classify``) and the pure graph and chain
logic (``lineage``, ``parents``, ``stitch``, ``source``). Nothing here does I/O: readers
feed it plain data, renderers consume what it returns."""
