"""What a tree and its chains look like: lines, JSON and CSV (``formats``), and the HTML
report (``report``). Renderers consume a ``Source``; they read no run file themselves."""
