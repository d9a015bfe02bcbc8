"""The ``runchain`` command line (``cli``, ``cache``) and what only it runs: ``watch``,
``sync`` and its plan (``sync_plan``), ``publish``. Library code raises named exceptions;
``cli`` alone turns them into messages and exit codes."""
