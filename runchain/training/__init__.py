"""The run side: what a training script imports, through ``import runchain``. ``tracking``
(``start``, ``log``), ``checkpoints`` (``save_checkpoint``, ``Checkpoint``), ``in_place``
(resuming a run in place) and ``state_check`` (``check_state``). None of it loads a reader,
the report or the command line."""
