# The Locust load generator (compose profile `loadtest`): bench/load/locustfile.py and the payloads in images/.
# Build from the repository root: docker build -f docker/locust.Dockerfile --target runtime -t serving-lab/locust .
# Same build arguments as the service images (docker/build.sh passes them); OFFLINE=1 installs from wheelhouse/ only.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS venv
ARG OFFLINE=0
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
COPY requirements/serving-common.txt requirements/locust.txt /tmp/requirements/
COPY wheelhouse/ /tmp/wheelhouse/
COPY docker/install-venv.sh /tmp/install-venv.sh
RUN sh /tmp/install-venv.sh /tmp/requirements/locust.txt /tmp/wheelhouse \
 && /opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools

FROM ${BASE_IMAGE} AS runtime
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin locust
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTHONPATH=/app
COPY --from=venv /opt/venv /opt/venv
WORKDIR /app
COPY images/ images/
COPY bench/__init__.py bench/registry.py bench/payloads.py bench/results.py bench/
COPY bench/load/ bench/load/
USER locust
EXPOSE 8089
ENTRYPOINT ["locust", "-f", "bench/load/locustfile.py"]
