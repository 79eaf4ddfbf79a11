"""Live scaling: the Procfile's ``scaler`` and ``autoscale`` process types, and ``scripts/scale``.

    $ honcho start -c web=2                 # redis, 2 web, proxy, chaos (idle), scaler, autoscale (idle)
    $ scripts/scale web=5                   # the scaler starts web.3..web.5 from the Procfile's own command
    $ AUTOSCALE_MAX=6 honcho start -c web=2 # the autoscaler writes the count the scaler keeps

honcho fixes the formation at start and stops all of it when one direct child
exits, so the instances added at run time are the scaler's children, not
honcho's. Parts: ``config`` (settings), ``shared`` (what the three share in
Redis), ``procfile``, ``instances`` (one child instance), ``supervisor`` (the
scaler's loop), ``cli`` (``scripts/scale``), ``policy`` (the autoscaler's pure
decision) and ``autoscale`` (the process around it).
"""
