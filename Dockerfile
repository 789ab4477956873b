# Q16 Curator production image: the web server and the Celery workers share it.
#
#   docker build -t q16-curator .
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t q16-curator:cpu .
#
# Without TORCH_INDEX_URL, pip takes torch from PyPI (the CUDA build on x86_64 Linux).
FROM python:3.11-slim

ARG TORCH_INDEX_URL=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    Q16_DATA_DIR=/data \
    MEDIA_ROOT=/data/media \
    HF_HOME=/models/huggingface

WORKDIR /app

# Dependencies first (the slow layer, torch included), from pyproject.toml alone, so
# code changes do not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && if [ -n "$TORCH_INDEX_URL" ]; then \
         grep -E '^(torch|torchvision)==' /tmp/requirements.txt \
           | xargs pip install --index-url "$TORCH_INDEX_URL"; \
       fi \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself (no dev extras), editable so settings find templates/ and static/.
COPY . .
RUN pip install --no-deps -e . \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/q16 q16 \
    && mkdir -p /data/media /data/staticfiles /models \
    && chown -R q16:q16 /data /models

USER q16
EXPOSE 8000

# The web server; docker-compose.yml runs the worker and the migrations from this image.
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", "--timeout", "120", "--access-logfile", "-"]
