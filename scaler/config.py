"""The scaler's and the autoscaler's settings, read from the environment in one place.

    >>> ScalerConfig.from_env({"SCALER_MAX": "12"}).max_instances
    12
    >>> AutoscaleConfig.from_env({"AUTOSCALE_MAX": "6", "PROXY_PORT": "9000"}).metrics_url
    'http://127.0.0.1:9000/_proxy/metrics'
    >>> AutoscaleConfig.from_env({}).enabled       # off unless AUTOSCALE_MAX is set
    False

=========================  ============  ===================================================
Variable                   Default       Meaning
=========================  ============  ===================================================
``SCALER_PROCFILE``        ``Procfile``  where the ``web`` command is read from
``SCALER_MAX``             ``16``        most web instances in all, the scaler's and others
``SCALER_SETTLE``          ``3``         seconds the count of instances the scaler did not
                                         start must hold still before it adds or removes any
``SCALER_DRAIN_TIMEOUT``   ``15``        seconds a removed instance may drain before SIGKILL
``SCALER_STOP_TIMEOUT``    ``4``         seconds its instances get to drain when the scaler
                                         stops (under honcho's 5 s before it SIGKILLs)
``AUTOSCALE_MIN``          ``1``         fewest web instances the autoscaler asks for
``AUTOSCALE_MAX``          (unset: off)  most; setting it turns the autoscaler on
``AUTOSCALE_TARGET``       ``8``         in-flight requests per instance to aim at
``AUTOSCALE_TOLERANCE``    ``0.2``       hysteresis: up above target*(1+t), down only to a
                                         count that stays under target*(1-t)
``AUTOSCALE_COOLDOWN``     ``5``         seconds after a change before scaling up again
``AUTOSCALE_DOWN_DELAY``   ``15``        seconds the load must stay low (and since the last
                                         change) before scaling down
``AUTOSCALE_WINDOW``       ``3``         seconds of in-flight samples averaged
``AUTOSCALE_P95_MS``       ``0`` (off)   also scale up, one at a time, while the proxy's p95
                                         is above this
``AUTOSCALE_INTERVAL``     ``0.5``       seconds between samples
``AUTOSCALE_LOG``          (none)        also append every decision to this JSON-lines file
``AUTOSCALE_METRICS_URL``  the proxy's   ``http://127.0.0.1:$PROXY_PORT/_proxy/metrics``
=========================  ============  ===================================================
"""
import os
from dataclasses import dataclass

from common.settings import numbers, redis_url


@dataclass(frozen=True)
class ScalerConfig:
    redis_url: str = "redis://127.0.0.1:6379/0"
    procfile: str = "Procfile"
    max_instances: int = 16
    settle_s: float = 3.0
    drain_timeout: float = 15.0
    stop_timeout: float = 4.0

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        values = numbers(env, {
            "max_instances": ("SCALER_MAX", int, 1), "settle_s": ("SCALER_SETTLE", float, 0),
            "drain_timeout": ("SCALER_DRAIN_TIMEOUT", float, 0), "stop_timeout": ("SCALER_STOP_TIMEOUT", float, 0),
        })
        return cls(redis_url=redis_url(env), procfile=env.get("SCALER_PROCFILE", "").strip() or cls.procfile,
                   **values)


@dataclass(frozen=True)
class AutoscaleConfig:
    redis_url: str = "redis://127.0.0.1:6379/0"
    metrics_url: str = "http://127.0.0.1:8000/_proxy/metrics"
    minimum: int = 1
    maximum: int = 0  # 0: off
    target: float = 8.0
    tolerance: float = 0.2
    cooldown: float = 5.0
    down_delay: float = 15.0
    window: float = 3.0
    p95_ms: float = 0.0
    interval: float = 0.5
    log_path: str = ""

    @property
    def enabled(self):
        return self.maximum > 0

    @classmethod
    def from_env(cls, env=None):
        env = os.environ if env is None else env
        values = numbers(env, {
            "minimum": ("AUTOSCALE_MIN", int, 1), "maximum": ("AUTOSCALE_MAX", int, 0),
            "target": ("AUTOSCALE_TARGET", float, 0.001), "tolerance": ("AUTOSCALE_TOLERANCE", float, 0),
            "cooldown": ("AUTOSCALE_COOLDOWN", float, 0), "down_delay": ("AUTOSCALE_DOWN_DELAY", float, 0),
            "window": ("AUTOSCALE_WINDOW", float, 0.001), "p95_ms": ("AUTOSCALE_P95_MS", float, 0),
            "interval": ("AUTOSCALE_INTERVAL", float, 0.01),
        })
        config = cls(
            redis_url=redis_url(env),
            metrics_url=env.get("AUTOSCALE_METRICS_URL", "").strip()
            or f"http://127.0.0.1:{env.get('PROXY_PORT', '').strip() or 8000}/_proxy/metrics",
            log_path=env.get("AUTOSCALE_LOG", "").strip(),
            **values,
        )
        if config.enabled and config.maximum < config.minimum:
            raise ValueError(f"AUTOSCALE_MAX ({config.maximum}) is below AUTOSCALE_MIN ({config.minimum})")
        if not 0 <= config.tolerance < 1:
            raise ValueError(f"AUTOSCALE_TOLERANCE must be in [0, 1), not {config.tolerance}")
        return config
