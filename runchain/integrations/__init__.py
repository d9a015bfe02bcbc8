"""Callbacks that make framework training scripts chain: one line added to a script
that already reports to W&B.

- ``runchain.integrations.transformers.RunchainCallback``: a Hugging Face ``TrainerCallback``
  (``pip install 'runchain[hf]'``).
- ``runchain.integrations.lightning.RunchainCallback``: a Lightning ``Callback``
  (``pip install 'runchain[lightning]'``).

Both use ``runchain.integrations.marker`` for what they share. See ``docs/frameworks.md``.
"""
