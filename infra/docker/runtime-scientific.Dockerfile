# syntax=docker/dockerfile:1
# An execution runtime with numpy, pandas, matplotlib and scipy preinstalled (the same pinned, hashed file as the
# local runner's python-3.X-scientific); offer it through the runtime
# catalog (PODRUN_KUBERNETES_RUNTIMES, see infra/k8s/README.md). Build from the repository root:
#   docker build -f infra/docker/runtime-scientific.Dockerfile -t registry.example.com/podrun/runtime-scientific:0.1.0 .
FROM python:3.12.11-slim-bookworm
COPY infra/docker/runtime-scientific.requirements.txt /tmp/requirements.txt
# Exact versions with hashes; then pip, its bootstrap and the wheel caches go, and site-packages
# becomes read-only: nothing can be installed at run time (the pod's root filesystem is read-only too).
RUN python -m pip install --no-cache-dir --require-hashes --only-binary=:all: -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt \
    && python -m pip uninstall -y pip \
    && rm -rf /usr/local/lib/python3.12/ensurepip /usr/local/bin/pip* /root/.cache \
    && chmod -R a-w /usr/local/lib/python3.12/site-packages
ENV MPLBACKEND=Agg
# The execution pod runs as 65534 (PODRUN_KUBERNETES_RUN_AS_UID) whatever the image says; so does this.
USER 65534:65534
CMD ["python3"]
