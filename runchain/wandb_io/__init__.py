"""The W&B boundary: ``wandb.Api`` and its errors (``api``), an artifact's files
(``artifact_files``), and online or offline (``mode``). The training side, the readers and
the commands reach W&B through here."""
