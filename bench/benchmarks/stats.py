"""The statistics every benchmark reports: one percentile (the proxy's own), medians, table cells.

    >>> percentile([1, 2, 3, 4], 0.5), median_of([{"rps": 10}, {"rps": 30}, {"rps": 20}])
    (2, {'rps': 20})
    >>> median_or_none([3.0, None, 1.0]), median_or_none([])   # a run with no kills has no recovery time
    (2.0, None)
    >>> cell(None), cell(0.1234, 3), cell(7)
    ('-', '0.123', '7')

``percentile`` is proxy.metrics', nearest-rank, so a benchmark's p99 and the
proxy's ``/_proxy/metrics`` p99 mean the same thing.
"""
import statistics

from proxy.metrics import percentile

__all__ = ["cell", "hit_latencies", "median_of", "median_or_none", "percentile"]


def median_of(runs):
    """{key: the median over runs} of a list of same-shaped dicts of numbers."""
    return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def median_or_none(values):
    """The median of the values that are not None; None when there are none."""
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def cell(value, digits=1):
    """A Markdown table cell: '-' for a missing value."""
    return "-" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def hit_latencies(journal):
    """Seconds from invoke to ok for every acknowledged hit, sorted."""
    invoked, latencies = {}, []
    for event in journal:
        if event["type"] == "invoke":
            invoked[event["key"]] = event["time"]
        elif event["type"] == "ok" and event["key"] in invoked:
            latencies.append(event["time"] - invoked[event["key"]])
    return sorted(latencies)
