# The broadcast service: one process with API, public site, dispatcher and scheduler.
# docker build -t broadcast . && docker run -p 8000:8000 -v broadcast-data:/app/data broadcast
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY broadcast ./broadcast
COPY channels ./channels
RUN pip install . && useradd --system --uid 10001 --home /app broadcast
COPY config ./config
RUN mkdir -p /app/data && chown broadcast /app/data

USER broadcast
VOLUME ["/app/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"
CMD ["broadcast", "serve", "--host", "0.0.0.0", "--port", "8000"]
