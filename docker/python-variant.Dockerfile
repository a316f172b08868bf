# Every Python serving variant's image, one parametrized build (docker/build.sh passes the arguments from the
# registry, bench/variants.toml; compose.yaml's build sections name them too). From the repository root:
#   docker build -f docker/python-variant.Dockerfile --build-arg VARIANT=onnx --build-arg PACKAGE=onnx_serving \
#     --build-arg PORT=8002 --target runtime -t serving-lab/onnx-serving:slim .        (--target dev: the fat one)
# VARIANT is the registry name, PACKAGE the variant's folder (its requirements.txt is the only file the venv is
# installed from), PORT where it listens. What /app holds beside the package is the variant's `[variant.image]
# files` (the code it imports, the model it serves), copied by `python -m bench.registry stage-image`.
# Offline (no registry contacted): --build-arg OFFLINE=1 --build-arg BASE_IMAGE=serving-lab/python-base:bookworm
#   --build-arg DEV_BASE_IMAGE=serving-lab/python-dev:bookworm, with wheelhouse/ filled by docker/wheelhouse.sh.
# BASE_IMAGE and DEV_BASE_IMAGE must put Python 3.11 at the same path: the venv made in one runs in the other.
ARG BASE_IMAGE=python:3.11-slim
ARG DEV_BASE_IMAGE=python:3.11

# --- build: the virtual environment from <package>/requirements.txt only (torch, where wanted, the CPU build) ---
FROM ${BASE_IMAGE} AS venv
ARG OFFLINE=0
ARG PIP_INDEX_URL=https://pypi.org/simple
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG PACKAGE
COPY requirements/serving-common.txt /tmp/src/requirements/
COPY ${PACKAGE}/requirements.txt /tmp/src/${PACKAGE}/
COPY wheelhouse/ /tmp/wheelhouse/
COPY docker/install-venv.sh /tmp/install-venv.sh
RUN sh /tmp/install-venv.sh /tmp/src/${PACKAGE}/requirements.txt /tmp/wheelhouse

# The slim image needs no installer at run time.
FROM venv AS venv-slim
RUN /opt/venv/bin/python -m pip uninstall --yes --quiet pip setuptools

# --- the code and the model this variant serves, in one tree; both final stages copy it ---
# The registry says what goes in (this stage has pydantic, from the venv); the context is whitelisted by
# .dockerignore, and nothing of this stage but /app reaches an image.
FROM venv AS app
ARG VARIANT
COPY . /tmp/src/
WORKDIR /tmp/src
RUN /opt/venv/bin/python -m bench.registry stage-image "${VARIANT}" /app \
 && mkdir -p /app/docker && cp docker/healthcheck.py docker/serve.py /app/docker/ \
 && python3 -m compileall -q /app

# --- runtime (slim): venv + code + model, non-root, no compilers ---
FROM ${BASE_IMAGE} AS runtime
ARG PACKAGE
ARG PORT=8000
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin serving
# glibc malloc, read once when the interpreter starts (so here, not in the service's settings): one arena for
# every thread, heap blocks up to 64 MiB, free heap kept up to 128 MiB. Without them onnxruntime's per-request
# buffer (~34 MB for a 1800x1200 photo: above glibc's 32 MiB dynamic mmap ceiling) is a fresh mmap every request,
# 8,253 page faults and ~2x the CPU per request (bench/analysis/speed_phases.py). Neutral for torch (its frees
# raise glibc's thresholds anyway). tests/unit/test_allocator_setting.py keeps these lines.
ENV MALLOC_ARENA_MAX=1 \
    MALLOC_MMAP_THRESHOLD_=67108864 \
    MALLOC_TRIM_THRESHOLD_=134217728
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    SERVING_PACKAGE=${PACKAGE} \
    HOST=0.0.0.0 \
    PORT=${PORT} \
    WORKERS=1 \
    THREADS=1
COPY --from=venv-slim /opt/venv /opt/venv
COPY --from=app /app /app
WORKDIR /app
USER serving
EXPOSE ${PORT}
HEALTHCHECK --interval=5s --timeout=3s --start-period=120s --retries=3 CMD ["python", "docker/healthcheck.py"]
# Exec form; docker/serve.py execs `python -m $SERVING_PACKAGE`, so that is PID 1 and gets the signals itself.
CMD ["python", "docker/serve.py"]

# --- dev (fat): the same service on a base with shell and build tools, pip kept, root, for debugging ---
FROM ${DEV_BASE_IMAGE} AS dev
ARG PACKAGE
ARG PORT=8000
# The same allocator settings as the runtime stage (see there).
ENV MALLOC_ARENA_MAX=1 \
    MALLOC_MMAP_THRESHOLD_=67108864 \
    MALLOC_TRIM_THRESHOLD_=134217728
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    SERVING_PACKAGE=${PACKAGE} \
    HOST=0.0.0.0 \
    PORT=${PORT} \
    WORKERS=1 \
    THREADS=1
COPY --from=venv /opt/venv /opt/venv
COPY --from=app /app /app
WORKDIR /app
EXPOSE ${PORT}
HEALTHCHECK --interval=5s --timeout=3s --start-period=120s --retries=3 CMD ["python", "docker/healthcheck.py"]
CMD ["python", "docker/serve.py"]
