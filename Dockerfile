# The broadcast service: one process with API, public site, dispatcher and scheduler.
# docker build -t broadcast . && docker run -p 8000:8000 -v broadcast-data:/app/data broadcast
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, at the versions in constraints.txt: a layer that a code change leaves cached.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt -c constraints.txt \
 && useradd --system --uid 10001 --home /app broadcast

COPY README.md ./
COPY broadcast ./broadcast
COPY channels ./channels
RUN pip install --no-deps .
COPY config ./config
RUN mkdir -p /app/data && chown broadcast /app/data

USER broadcast
VOLUME ["/app/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["broadcast", "serve", "--host", "0.0.0.0", "--port", "8000"]
