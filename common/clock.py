"""Wall-clock times as every factor6 log line and report shows them: local time to the millisecond.

    >>> import time
    >>> len(clock(time.time()))
    12
"""
import time


def clock(wall):
    """``HH:MM:SS.mmm`` of a ``time.time()`` value."""
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"
