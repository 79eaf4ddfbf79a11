"""The command of one Procfile process type, read the way honcho reads it.

    >>> command_of("Procfile", "web")
    "exec gunicorn -c web/gunicorn_conf.py 'web:create_app()'"

The scaler starts extra instances with exactly this command, so an instance it
adds is the same program, with the same settings, as the ones honcho started.
"""
from pathlib import Path

from honcho.environ import parse_procfile


def command_of(path, process_type):
    processes = parse_procfile(Path(path).read_text()).processes
    if process_type not in processes:
        raise ValueError(f"{path} has no {process_type!r} process type (it has {', '.join(processes) or 'none'})")
    return processes[process_type]
